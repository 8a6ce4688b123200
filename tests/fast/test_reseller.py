"""Reseller targets in-process against the fake server: the tree from config, logins locked
first, every account's stages side by side, one failing child on its own, provenance, tick,
and the reversal (websites first across the tree, logins last)."""

from __future__ import annotations

import pytest

from agent.errors import BadInput, ConfigError
from tests.fast.conftest import HOUR, START, World
from tests.fast.fake_steps import step_path
from tests.fast.fakes import is_

TREE = ("    resellers:\n"
        "      rita: {login: rita, accounts: [alice, bob], resellers: [sam]}\n"
        "      sam: {accounts: [carol]}\n")
ACCOUNTS = ("alice", "bob", "carol")


def with_tree(world: World, tree: str = TREE) -> None:
    """Declare rita's tree under web1 and give the fake server its accounts."""
    text = world.config_path.read_text().replace("    linux:\n", tree + "    linux:\n")
    world.config_path.write_text(text)
    for name in ("carol", "rita", "sam", "dave"):
        world.fake.accounts[name] = f"/home/{name}"


@pytest.fixture
def tree(world: World) -> World:
    with_tree(world)
    return world


def reloads(world: World) -> list[tuple[str, str]]:
    """Return (step, account) of each fake reload, in the order the server saw them; the
    landing page's is shared by the batch ("*")."""
    return [(a[1], a[2] if len(a) > 2 else "*") for a in world.fake.log if a[0] == "reload"]


def landing_writes(world: World) -> list[str]:
    """Return the accounts whose landing file was written or removed, in order."""
    prefix = "/etc/fake/landing_page/"
    return [a[-1][len(prefix):-5] for a in world.fake.log
            if a[0] in ("write", "rm") and a[-1].startswith(prefix)]


def test_logins_first_then_every_account_and_one_journal_entry_per_change(tree: World) -> None:
    o = tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", "11 invoices", False)
    assert o.ok and o.state == "suspended" and o.holds == ["billing"] and o.stage == 0, o
    done = reloads(tree)
    logins = [i for i, (step, _n) in enumerate(done) if step == "panel_lock"]
    assert sorted(n for s, n in done if s == "panel_lock") == ["rita", "sam"]
    assert max(logins) < min(i for i, (s, _n) in enumerate(done) if s == "landing_page")
    # Every account's landing page written, then one reload for the whole tree.
    assert [n for s, n in done if s == "landing_page"] == ["*"]
    assert sorted(landing_writes(tree)) == list(ACCOUNTS)
    kids = {c["account"]: c for c in o.children}
    assert set(kids) == {"alice", "bob", "carol", "rita", "sam"}
    assert kids["rita"]["role"] == "login" and kids["alice"]["role"] == "account"
    assert all(kids[a]["state"] == "suspended" and kids[a]["stage"] == 0 for a in ACCOUNTS)
    assert {(a["step"], a["accounts"]) for a in o.applied} == {
        ("backup", 3), ("landing_page", 3), ("panel_lock", 2)}
    rows = tree.rows("changes")
    assert sorted((r["name"], r["step"]) for r in rows) == sorted(
        [(a, s) for a in ACCOUNTS for s in ("backup", "landing_page")]
        + [("rita", "panel_lock"), ("sam", "panel_lock")])
    cases = tree.rows("cases")
    (parent,) = [c for c in cases if c["kind"] == "reseller"]
    assert {c["name"] for c in cases if c["parent"] == parent["id"]} == set(kids)
    # Run twice: the second call changes nothing.
    tree.fake.log.clear()
    again = tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    assert again.ok and not any(a["changed"] for a in again.applied)
    assert reloads(tree) == [] and tree.fake.changing() == []
    assert len(tree.rows("cases")) == len(cases)


def test_unsuspend_brings_every_site_back_before_any_lock_and_the_logins_last(tree: World
                                                                               ) -> None:
    pristine = tree.step_files()
    tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    tree.clock.t = START + 72 * HOUR
    (ticked,) = tree.engine().tick()
    assert ticked.stage == 2 and ticked.ok, ticked
    tree.fake.log.clear()
    o = tree.engine().unsuspend_reseller("web1", "rita", "billing", False)
    assert o.ok and o.state == "active" and o.holds == [], o
    order = [s for s, _n in reloads(tree)]
    assert order[0] == "landing_page" and order.count("landing_page") == 1  # one for all
    assert sorted(landing_writes(tree)) == list(ACCOUNTS)
    assert order[-2:] == ["panel_lock", "panel_lock"]
    assert {n for s, n in reloads(tree)[-2:]} == {"rita", "sam"}
    assert tree.step_files() == pristine
    assert {c["status"] for c in tree.rows("cases")} == {"lifted"}
    assert tree.engine().unsuspend_reseller("web1", "rita", "billing", False).message == (
        "nothing to lift")


def test_an_account_suspended_before_and_one_with_its_own_hold_stay_suspended(tree: World
                                                                              ) -> None:
    tree.engine().suspend("web1", "bob", "now", "abuse", "spam", False)
    bob_files = {p: v for p, v in tree.step_files().items() if "/bob." in p}
    o = tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    kids = {c["account"]: c for c in o.children}
    assert kids["bob"]["holds"] == ["abuse", "billing"]
    (bob_case,) = [c for c in tree.rows("cases") if c["name"] == "bob" and c["parent"]]
    assert '"hold": "abuse"' in bob_case["prior"]
    # The account's own unsuspend does not lift the reseller's case over it.
    mine = tree.engine().unsuspend("web1", "alice", "billing", False)
    assert mine.state == "suspended" and "reseller case" in mine.message
    o = tree.engine().unsuspend_reseller("web1", "rita", "billing", False)
    kids = {c["account"]: c for c in o.children}
    assert kids["alice"]["state"] == "active" and kids["bob"]["state"] == "suspended"
    assert kids["bob"]["holds"] == ["abuse"] and "still held by abuse" in kids["bob"]["message"]
    assert {p: v for p, v in tree.step_files().items() if "/bob." in p} == bob_files
    assert tree.engine().unsuspend("web1", "bob", "abuse", False).state == "active"


def test_one_failing_child_is_rolled_back_alone_and_named(tree: World) -> None:
    tree.fake.fail(is_("write", step_path("landing_page", "carol")), 1)
    o = tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    assert not o.ok and o.state == "suspended" and not o.partial
    (failed,) = [c for c in o.children if c["errors"]]
    assert failed["account"] == "carol" and failed["state"] == "active", failed
    assert failed["errors"][0]["step"] == "landing_page"
    assert [e["account"] for e in o.errors] == [failed["account"]]
    others = [c for c in o.children if c["account"] in ACCOUNTS and not c["errors"]]
    assert len(others) == 2 and all(c["state"] == "suspended" for c in others)
    assert not tree.fake.files.get(step_path("landing_page", failed["account"]))
    (parent,) = [c for c in tree.rows("cases") if c["kind"] == "reseller"]
    assert parent["failures"] == 1 and parent["next_due_at"] == START + 60
    # The next tick, once due, retries the child that is behind; the others stay as they are.
    tree.clock.t = START + 61
    (again,) = tree.engine().tick()
    assert again.ok and all(c["state"] == "suspended" for c in again.children
                            if c["account"] in ACCOUNTS), again


def test_a_child_whose_revert_fails_is_partial_exit_3_and_the_others_come_back(tree: World
                                                                                ) -> None:
    tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    tree.fake.fail(is_("rm", "-f", "--", step_path("landing_page", "bob")), 1, times=-1)
    code, reply, _ = tree.cli("unsuspend", "web1", "--reseller", "rita")
    assert code == 3 and reply["state"] == "partial", reply
    stuck = [c for c in reply["children"] if c["state"] == "partial"]
    assert len(stuck) == 1
    back = [c for c in reply["children"] if c["state"] == "active"]
    assert len(back) == 4


def test_an_account_a_lift_left_stuck_stays_in_the_tree_until_its_revert_is_done(tree: World
                                                                                  ) -> None:
    """The tree's cases are closed by the first lift, bob's stuck change is not: `status`
    and the next `unsuspend --reseller` must show it (exit 3), and that unsuspend retries it
    (never "nothing to lift", exit 0, while a change is still applied)."""
    tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    tree.fake.fail(is_("rm", "-f", "--", step_path("landing_page", "bob")), 1, times=-1)
    assert tree.cli("unsuspend", "web1", "--reseller", "rita")[0] == 3
    for verb in ("status", "unsuspend"):
        code, reply, _ = tree.cli(verb, "web1", "--reseller", "rita")
        assert code == 3 and reply["state"] == "partial", (verb, reply)
        (bob,) = reply["children"]
        assert bob["account"] == "bob" and bob["state"] == "partial", bob
        assert [s["step"] for s in bob["stuck"]] == ["landing_page"]
    code, _reply, text = tree.cli("status", "web1", "--reseller", "rita", as_json=False)
    assert code == 3 and "STUCK landing_page" in text, text
    tree.fake.heal()
    code, reply, _ = tree.cli("unsuspend", "web1", "--reseller", "rita")
    assert code == 0 and reply["state"] == "active", reply
    assert "retried" in reply["message"] and reply["children"][0]["reverted"]
    assert not tree.fake.files.get(step_path("landing_page", "bob"))
    assert [r for r in tree.rows("changes") if r["state"] != "reverted"] == []
    kids = [c for c in tree.rows("cases") if c["parent"]]
    assert {c["status"] for c in kids} == {"lifted"}  # the first lift's closing is kept
    code, reply, _ = tree.cli("unsuspend", "web1", "--reseller", "rita")
    assert code == 0 and reply["message"] == "nothing to lift" and reply["children"] == []


def test_tick_gives_a_new_child_the_stages_already_reached(tree: World) -> None:
    tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    tree.clock.t = START + 24 * HOUR
    (o,) = tree.engine().tick()
    assert sorted(n for s, n in reloads(tree) if s == "mail_block") == list(ACCOUNTS)
    text = tree.config_path.read_text().replace("accounts: [carol]", "accounts: [carol, dave]")
    tree.config_path.write_text(text)
    tree.clock.t = START + 25 * HOUR
    tree.fake.log.clear()
    (o,) = tree.engine().tick()
    assert {(s, n) for s, n in reloads(tree)} == {("landing_page", "*"),
                                                   ("mail_block", "dave")}
    assert landing_writes(tree) == ["dave"]
    dave = next(c for c in o.children if c["account"] == "dave")
    assert dave["stage"] == 1 and dave["state"] == "suspended"
    tree.fake.log.clear()
    assert tree.engine().tick() == [] and tree.fake.log == []  # nothing new, nothing due


@pytest.mark.parametrize("entry, why", [
    ("rita: {accounts: [alice], resellers: [sam]}\n      sam: {resellers: [rita]}",
     "cycle"),
    ("rita: {accounts: [alice]}\n      sam: {accounts: [alice]}", "already under"),
    ("rita: {accounts: [alice], resellers: [nosuch]}", "not declared"),
    ("rita: {accounts: ['a;rm -rf /']}", "not valid"),
    ("'../x': {accounts: [alice]}", "not valid"),
    ("rita: {login: 'r$(id)', accounts: [alice]}", "not valid"),
])
def test_bad_tree_entries_are_config_errors_naming_the_entry(world: World, entry: str,
                                                             why: str) -> None:
    with_tree(world, f"    resellers:\n      {entry}\n")
    code, reply, _ = world.cli("suspend", "web1", "--reseller", "rita")
    assert code == 78 and why in reply["errors"][0]["message"], reply
    assert "resellers" in reply["errors"][0]["message"]
    assert world.fake.log == [] and world.rows("cases") == []


def test_an_account_the_server_lacks_is_78_naming_the_entry_and_nothing_changes(tree: World
                                                                                ) -> None:
    del tree.fake.accounts["carol"]
    with pytest.raises(ConfigError, match=r"resellers\.sam\.accounts\[0\]: .*carol"):
        tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    assert tree.fake.changing() == [] and tree.rows("cases") == []


@pytest.mark.parametrize("name", ["r;id", "../rita", "-x", "nosuch", "root"])
def test_hostile_or_unknown_reseller_names_are_exit_2(tree: World, name: str) -> None:
    code, reply, _ = tree.cli("suspend", "web1", "--reseller", name)
    assert code == 2, reply
    assert tree.fake.changing() == [] and tree.rows("cases") == []


def test_a_tree_holding_a_protected_account_is_refused(world: World) -> None:
    with_tree(world, "    resellers:\n      rita: {accounts: [alice, backup]}\n")
    world.fake.accounts["backup"] = "/var/backups"
    with pytest.raises(BadInput, match="protected"):
        world.engine().suspend_reseller("web1", "rita", None, "billing", None, False)
    assert world.rows("cases") == []


def test_dry_run_plans_every_child_and_changes_nothing(tree: World) -> None:
    code, reply, _ = tree.cli("--dry-run", "suspend", "web1", "--reseller", "rita")
    assert code == 0, reply
    planned = {(p["account"], p["step"]) for p in reply["plan"]}
    assert ("rita", "panel_lock") in planned and ("carol", "landing_page") in planned
    assert tree.fake.changing() == [] and tree.rows("cases") == [] and tree.rows("changes") == []


def test_status_plan_and_history_of_a_reseller(tree: World) -> None:
    tree.cli("suspend", "web1", "--reseller", "rita", "--playbook", "ladder")
    code, reply, _ = tree.cli("status", "web1", "--reseller", "rita")
    assert code == 0 and reply["target"]["kind"] == "reseller"
    assert {c["account"] for c in reply["children"]} == {"alice", "bob", "carol", "rita", "sam"}
    code, reply, _ = tree.cli("plan", "web1", "--reseller", "rita", "--playbook", "ladder")
    assert code == 0 and reply["tree"]["logins"] == ["rita", "sam"]
    assert [c["account"] for c in reply["children"]] == list(ACCOUNTS)
    code, reply, _ = tree.cli("history", "web1", "--reseller", "rita")
    events = {(e["name"], e["event"]) for e in reply["events"]}
    assert ("rita", "case.opened") in events and ("carol", "step.applied") in events
    code, _reply, text = tree.cli("status", "web1", "--reseller", "rita", as_json=False)
    assert code == 0 and "carol" in text and "[login]" in text
    code, reply, _ = tree.cli("plan", "web1", "alice", "--reseller", "rita")
    assert code == 2


def test_the_batch_runs_no_more_side_by_side_than_the_connection_allows(
        tree: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    monkeypatch.setattr(tree.fake, "channels", lambda _sshd="": 2)
    busy, peak, guard = [0], [0], threading.Lock()
    real = tree.fake._exec

    def counted(argv: list[str], stdin: bytes | None, timeout: float):  # noqa: ANN202
        with guard:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        try:
            time.sleep(0.002)  # long enough for a third worker to show up, were there one
            return real(argv, stdin, timeout)
        finally:
            with guard:
                busy[0] -= 1

    monkeypatch.setattr(tree.fake, "_exec", counted)
    o = tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    assert o.ok and peak[0] == 2


def test_lost_link_mid_batch_is_75_and_the_next_call_converges(tree: World) -> None:
    from agent.errors import Unreachable

    tree.fake.fail(is_("reload", "landing_page"), Unreachable("link lost"))
    code, reply, _ = tree.cli("suspend", "web1", "--reseller", "rita", "--playbook", "ladder")
    assert code == 75, reply
    tree.fake.heal()
    code, reply, _ = tree.cli("suspend", "web1", "--reseller", "rita", "--playbook", "ladder")
    assert code == 0 and all(c["state"] == "suspended" for c in reply["children"]), reply
    code, reply, _ = tree.cli("unsuspend", "web1", "--reseller", "rita")
    assert code == 0 and reply["state"] == "active"


def test_a_failing_shared_reload_fails_every_account_of_it_and_puts_each_back(tree: World
                                                                               ) -> None:
    pristine = tree.step_files()
    tree.fake.fail(is_("reload", "landing_page"), 1)
    code, reply, _ = tree.cli("suspend", "web1", "--reseller", "rita", "--playbook", "ladder")
    assert code == 1, reply
    failed = {c["account"] for c in reply["children"] if c["errors"]}
    assert failed == set(ACCOUNTS)
    assert all(c["state"] == "active" for c in reply["children"] if c["account"] in ACCOUNTS)
    files = {p: v for p, v in tree.step_files().items() if "/panel_lock/" not in p}
    assert files == {p: v for p, v in pristine.items() if "/panel_lock/" not in p}
    # The tree never started: its logins are unlocked again and the case is closed.
    assert tree.step_files() == pristine
    (parent,) = [c for c in tree.rows("cases") if c["kind"] == "reseller"]
    assert parent["status"] == "failed"


def test_one_account_whose_probe_fails_after_the_shared_reload_is_rolled_back_alone(
        tree: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.drivers.linux import driver as linux_driver
    from agent.errors import VerifyFailed

    step = linux_driver.DRIVER.steps["landing_page"]
    real = step.verify

    def verify(ctx, undo, suspended):  # noqa: ANN001, ANN202
        if ctx.account == "bob" and suspended:
            raise VerifyFailed("bob.test answered 200")
        return real(ctx, undo, suspended)

    monkeypatch.setattr(step, "verify", verify)
    o = tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    kids = {c["account"]: c for c in o.children}
    assert kids["bob"]["state"] == "active" and kids["bob"]["errors"]
    assert kids["alice"]["state"] == "suspended" and kids["carol"]["state"] == "suspended"
    assert not tree.fake.files.get(step_path("landing_page", "bob"))
    assert [s for s, _n in reloads(tree)].count("landing_page") == 2  # the batch, bob's undo


def test_a_reseller_that_is_an_account_of_its_tree_gets_its_login_back_last(world: World
                                                                             ) -> None:
    with_tree(world, "    resellers:\n      rita: {login: rita, accounts: [rita, alice, bob]}\n")
    world.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    world.clock.t = START + 72 * HOUR
    world.engine().tick()
    world.fake.log.clear()
    o = world.engine().unsuspend_reseller("web1", "rita", "billing", False)
    assert o.ok, o
    done = reloads(world)
    assert done[-1] == ("panel_lock", "rita"), done
    assert [n for s, n in done].count("rita") >= 3  # rita's other locks came back before
    events = [(e["name"], e["step"]) for e in world.engine().journal.case_events(
        [c["id"] for c in world.rows("cases") if c["parent"]]) if e["event"] == "step.reverted"]
    assert events[-1] == ("rita", "panel_lock"), events


@pytest.mark.parametrize("fails", [False, True])
def test_the_batch_lets_a_step_read_for_every_plan_at_once(tree: World, fails: bool,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """`before_plans` (the reused backups' checks in one go) gets every account's context,
    sharing the batch's Memo, before any of them is planned; when it fails, each plan
    does its own work and the tree still goes through."""
    from agent.drivers.linux import driver as linux_driver
    from tests.fast.fake_steps import FakeBackup

    seen: list[tuple[list[str], int, int]] = []

    class Reading(FakeBackup):
        def before_plans(self, ctxs, workers):  # noqa: ANN001, ANN202
            seen.append(([c.account for c in ctxs], workers, len({id(c.shared) for c in ctxs})))
            if fails:
                raise BadInput("the batch read failed")

    monkeypatch.setitem(linux_driver.DRIVER.steps, "backup", Reading())
    o = tree.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    assert o.ok and o.state == "suspended", o
    assert [(sorted(a), n) for a, _w, n in seen] == [(list(ACCOUNTS), 1)]
    assert seen[0][1] >= 1
