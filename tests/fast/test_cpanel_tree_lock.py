"""The cpanel driver's login step for reseller trees, reseller_lock, against the fake panel:
suspendreseller reseller-only=1 disallow=1 and its reversal with reseller-only semantics,
provenance (a reseller suspended before the case stays so), what unsuspendacct lifts put
back, and the panel re-read rather than trusted (reference/lockouts.md 6.4, panels.md
A8, A9)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.config import config as config_mod
from agent.drivers import driver
from agent.errors import BadInput, VerifyFailed
from agent.steps.actions import carry_out
from agent.steps.protocol import Context
from tests.fast.test_cpanel_fakes import SUSPENDACCT, FakeCpanel
from tests.fast.test_cpanel_ladder import write_config
from tests.fast.test_cpanel_tree import OWNERS, RESELLERS, TreeModel


class OwnLock:
    """A journal in which the agent's panel_lock holds `user`'s hash locked."""

    def __init__(self, user: str) -> None:
        self.user = user

    def active_changes(self, server: str, kind: str, name: str) -> list:
        return [SimpleNamespace(step="panel_lock", undo={"locked_here": True})] if (
            kind, name) == ("account", self.user) else []


@pytest.fixture
def fake(tmp_path: Path) -> FakeCpanel:
    write_config(tmp_path)
    return FakeCpanel(TreeModel(OWNERS, RESELLERS))


def ctx_for(tmp: Path, fake: FakeCpanel, user: str = "r1", journal: object = None) -> Context:
    cfg = config_mod.load(str(tmp / "config.yaml"))
    return Context(cfg, cfg.servers["cp1"], fake, user, "case-7", 0.0, journal=journal,
                   hold="billing")


STEP = driver("cpanel").steps["reseller_lock"]


def apply(ctx: Context) -> dict:
    plan = STEP.plan(ctx)
    undo = STEP.apply(ctx, plan)
    STEP.verify(ctx, undo, True)
    return undo


def revert(ctx: Context, undo: dict) -> list[str]:
    plan = STEP.revert_plan(ctx, undo)
    carry_out(ctx.conn, plan.actions)
    STEP.verify(ctx, undo, False)
    return plan.describe()


def test_it_is_the_login_step_and_no_playbook_step() -> None:
    from agent.config import playbooks

    cpanel = driver("cpanel")
    assert cpanel.login_step == "reseller_lock" and cpanel.login_step in cpanel.steps
    assert "reseller_lock" not in playbooks.STEP_PARAMS


def test_lock_and_back_touch_the_reseller_only(tmp_path: Path, fake: FakeCpanel) -> None:
    m = fake.model
    r1 = m.accounts["r1"]
    r1.mailboxes = {"info@r1.test": {"login": False, "incoming": False},
                    "old@r1.test": {"login": True, "incoming": False}}
    r1.out_hold = True
    before = (r1.hash, r1.shell)
    ctx = ctx_for(tmp_path, fake)
    plan = STEP.plan(ctx)
    shown = "\n".join(plan.describe())
    assert ("api   whmapi1 suspendreseller user=r1 'reason=suspension-agent case case-7 "
            "(billing hold, reseller login lock)' disallow=1 reseller-only=1") in shown
    undo = STEP.apply(ctx, plan)
    STEP.verify(ctx, undo, True)
    assert r1.suspended and r1.locked and r1.hash.startswith("!!")
    assert not any(m.accounts[u].suspended for u in ("c1", "s1", "s2", "c2", "ss1"))
    lines = revert(ctx, undo)
    assert any("unsuspendreseller user=r1 reseller-only=1" in line for line in lines)
    assert (r1.hash, r1.shell) == before and not r1.suspended and not r1.locked
    # unsuspendacct lifted the mailbox lock of before the case (A8); it is back.
    assert r1.mailboxes["old@r1.test"]["login"] and not r1.mailboxes["info@r1.test"]["login"]
    assert r1.out_hold
    reseller_calls = [(f, p) for _a, f, p in m.calls if "reseller" in f and f != "listresellers"]
    assert [f for f, _p in reseller_calls] == ["suspendreseller", "unsuspendreseller"]
    assert all(p["reseller-only"] == "1" for _f, p in reseller_calls)


def test_a_second_plan_changes_nothing(tmp_path: Path, fake: FakeCpanel) -> None:
    ctx = ctx_for(tmp_path, fake)
    apply(ctx)
    again = STEP.plan(ctx)
    assert again.actions == [] and "already locked by this case" in again.note
    assert again.undo == {"suspended_here": False}


def test_a_reseller_suspended_before_stays_suspended(tmp_path: Path, fake: FakeCpanel) -> None:
    fake.model.whm("suspendacct", {"user": "s1", "reason": "abuse ticket 12"})
    ctx = ctx_for(tmp_path, fake, "s1")
    undo = apply(ctx)
    assert undo["suspended_here"] is False
    assert revert(ctx, undo) == [
        "nothing to do: the reseller was suspended before the case; left so"]
    s1 = fake.model.accounts["s1"]
    assert s1.suspended and s1.reason == "abuse ticket 12"
    assert not [f for _a, f, _p in fake.model.calls if f.endswith("reseller")]


def test_suspended_again_by_someone_else_is_left_so(tmp_path: Path, fake: FakeCpanel) -> None:
    ctx = ctx_for(tmp_path, fake)
    undo = apply(ctx)
    fake.model.whm("unsuspendacct", {"user": "r1"})
    fake.model.whm("suspendacct", {"user": "r1", "reason": "admin"})
    plan = STEP.revert_plan(ctx, undo)
    assert "suspended again by someone else (admin)" in plan.note
    carry_out(fake, plan.actions)
    assert fake.model.accounts["r1"].reason == "admin"


def test_an_answer_of_success_that_did_nothing_fails_verify(tmp_path: Path,
                                                             fake: FakeCpanel) -> None:
    fake.model.noop.add("suspendreseller")
    ctx = ctx_for(tmp_path, fake)
    plan = STEP.plan(ctx)
    undo = STEP.apply(ctx, plan)
    with pytest.raises(VerifyFailed, match="did not take effect"):
        STEP.verify(ctx, undo, True)


def test_an_account_that_is_no_reseller_is_refused(tmp_path: Path, fake: FakeCpanel) -> None:
    with pytest.raises(BadInput, match="not a reseller"):
        STEP.plan(ctx_for(tmp_path, fake, "c1"))
    with pytest.raises(BadInput):
        STEP.plan(ctx_for(tmp_path, fake, "c1;id"))


def test_the_agents_own_panel_lock_is_no_suspension(tmp_path: Path, fake: FakeCpanel) -> None:
    r1 = fake.model.accounts["r1"]
    r1.hash = "!" + r1.hash  # panel_lock of another case on r1's own account
    locked = r1.hash
    ctx = ctx_for(tmp_path, fake, journal=OwnLock("r1"))
    plan = STEP.plan(ctx)
    assert plan.actions[0].argv[0] == SUSPENDACCT and "--force" in plan.actions[0].argv
    undo = STEP.apply(ctx, plan)
    STEP.verify(ctx, undo, True)
    assert r1.suspended and r1.locked
    lines = revert(ctx, undo)
    # unsuspendacct strips every leading `!` (A8): panel_lock's own is put back.
    assert r1.hash == locked and not r1.suspended
    assert any("password hash locked" in line for line in lines)


def test_a_reseller_demoted_meanwhile_is_unsuspended_as_an_account(
        tmp_path: Path, fake: FakeCpanel) -> None:
    ctx = ctx_for(tmp_path, fake, "s2")
    undo = apply(ctx)
    fake.model.resellers.discard("s2")
    lines = revert(ctx, undo)
    assert any("unsuspendacct user=s2" in line for line in lines)
    assert not fake.model.accounts["s2"].suspended


def test_a_playbook_naming_it_is_refused(tmp_path: Path) -> None:
    from agent.config import playbooks
    from agent.errors import ConfigError

    (tmp_path / "r.yaml").write_text("stages:\n  - after: 0s\n    steps: [backup, "
                                     "reseller_lock]\n")
    with pytest.raises(ConfigError, match="unknown step 'reseller_lock'"):
        playbooks.load(str(tmp_path), "r")
