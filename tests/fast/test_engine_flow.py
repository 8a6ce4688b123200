"""Engine in-process against the fake server: the ladder, unsuspend order, holds, dry run,
retry backoff. Every journal state change here is the real journal's."""

from __future__ import annotations

import pytest

from agent.cli.render import outcome_text
from agent.engine.engine import RETRY_MAX, retry_delay
from agent.errors import BadInput
from tests.fast.conftest import HOUR, ORIGINAL_LANDING, START, World
from tests.fast.fake_steps import step_path
from tests.fast.fakes import is_

LANDING = step_path("landing_page", "alice")


def reloads(world: World) -> list[str]:
    return [a[1] for a in world.fake.log if a[0] == "reload"]


def test_suspend_applies_the_due_stage_once(world: World) -> None:
    o = world.engine().suspend("web1", "alice", None, "billing", "inv 1042", False)
    assert o.ok and o.state == "suspended" and o.holds == ["billing"] and o.stage == 0
    assert [(a["step"], a["changed"]) for a in o.applied] == [("backup", True),
                                                               ("landing_page", True)]
    assert o.pending[0] == {"step": "mail_block", "due": "2023-11-15T22:13:20Z",
                            "hold": "billing"}
    assert world.states() == {"backup": "done", "landing_page": "done"}
    assert b"\nblock alice" in world.fake.files[LANDING].data
    world.fake.log.clear()
    again = world.engine().suspend("web1", "alice", None, "billing", None, False)
    assert again.ok and not any(a["changed"] for a in again.applied)
    assert reloads(world) == [] and not [a for a in world.fake.log if a[0] == "tar"]
    assert len(world.rows("cases")) == 1


def test_tick_applies_each_stage_when_it_falls_due(world: World) -> None:
    world.engine().suspend("web1", "alice", None, "billing", None, False)
    world.clock.t = START + 23 * HOUR
    world.fake.log.clear()
    assert world.engine().tick() == [] and world.fake.log == []
    world.clock.t = START + 24 * HOUR
    (o,) = world.engine().tick()
    assert o.ok and o.stage == 1 and world.states()["mail_block"] == "done"
    world.clock.t = START + 72 * HOUR
    (o,) = world.engine().tick()
    assert o.stage == 2 and o.pending == []
    assert reloads(world) == ["mail_block", "ftp_lock", "db_lock", "panel_lock"]
    (case,) = world.rows("cases")
    assert case["stage"] == 2 and case["next_due_at"] is None
    assert world.engine().tick() == []


def test_unsuspend_puts_the_landing_page_back_first_then_newest_first(world: World) -> None:
    world.engine().suspend("web1", "alice", None, "billing", None, False)
    world.clock.t = START + 72 * HOUR
    world.engine().tick()
    world.fake.log.clear()
    o = world.engine().unsuspend("web1", "alice", "billing", False)
    assert o.ok and o.state == "active" and o.holds == []
    assert [r["step"] for r in o.reverted] == ["landing_page", "panel_lock", "db_lock",
                                               "ftp_lock", "mail_block", "backup"]
    assert reloads(world)[0] == "landing_page"
    assert set(world.states().values()) == {"reverted"}
    landing = world.fake.files[LANDING]
    assert (landing.data, landing.mode, landing.uid) == (ORIGINAL_LANDING, 0o640, 33)
    assert not [p for p in world.fake.files if p.startswith("/etc/fake/") and p != LANDING]
    assert [p for p in world.fake.files if p.startswith("/backups/")]  # the backup is kept
    (case,) = world.rows("cases")
    assert case["status"] == "lifted" and case["closed_by"] == "admin:test"
    again = world.engine().unsuspend("web1", "alice", "billing", False)
    assert again.ok and again.message == "nothing to lift"


def test_lifting_one_hold_keeps_services_suspended(world: World) -> None:
    world.engine().suspend("web1", "alice", None, "billing", None, False)
    o = world.engine().suspend("web1", "alice", "now", "abuse", "spam", False)
    assert o.holds == ["abuse", "billing"]
    assert reloads(world) == ["landing_page", "mail_block", "ftp_lock"]  # nothing twice
    o = world.engine().unsuspend("web1", "alice", "billing", False)
    assert "still held by abuse" in o.message and o.holds == ["abuse"]
    assert o.state == "suspended" and set(world.states().values()) == {"done"}
    assert b"\nblock" in world.fake.files[LANDING].data
    o = world.engine().unsuspend("web1", "alice", "manual", False)
    assert o.message == "no manual hold; still held by abuse"
    o = world.engine().unsuspend("web1", "alice", "abuse", False)
    assert o.state == "active" and world.fake.files[LANDING].data == ORIGINAL_LANDING


def test_an_open_case_keeps_its_playbook(world: World) -> None:
    world.engine().suspend("web1", "alice", "ladder", "billing", None, False)
    o = world.engine().suspend("web1", "alice", "now", "billing", None, False)
    assert "follows playbook 'ladder'; it was kept" in o.message
    assert "mail_block" not in world.states()


def test_dry_run_writes_nothing_anywhere(world: World) -> None:
    def journal() -> tuple:
        return tuple(tuple(world.rows(t)) for t in ("cases", "changes", "events"))

    files, rows = world.fake.snapshot(), journal()
    o = world.engine().suspend("web1", "alice", None, "billing", None, True)
    assert o.ok and [p["step"] for p in o.plans] == ["backup", "landing_page"]
    assert f"write {LANDING} (mode 0600, owner 0:0)" in o.plans[1]["actions"]
    assert "would:" in outcome_text(o, dry_run=True)
    assert world.fake.changing() == [] and world.fake.snapshot() == files and journal() == rows
    world.engine().suspend("web1", "alice", None, "billing", None, False)
    world.fake.log.clear()
    files, rows = world.fake.snapshot(), journal()
    o = world.engine().unsuspend("web1", "alice", "billing", True)
    assert [(p["step"], p.get("revert")) for p in o.plans] == [("landing_page", True),
                                                               ("backup", True)]
    world.clock.t = START + 24 * HOUR
    (t,) = world.engine().tick(dry_run=True)
    assert [p["step"] for p in t.plans] == ["mail_block"]
    assert world.fake.changing() == [] and world.fake.snapshot() == files and journal() == rows


def test_a_failed_stage_is_retried_after_a_growing_pause(world: World) -> None:
    world.engine().suspend("web1", "alice", None, "billing", None, False)
    # The apply's reload fails twice; the reverts between (also a reload) go through.
    world.fake.fail(is_("reload", "mail_block"), 1)
    world.fake.fail(is_("reload", "mail_block"), 1, skip=2)
    world.clock.t = START + 24 * HOUR
    (o,) = world.engine().tick()
    assert not o.ok and o.rolled_back and world.states()["mail_block"] == "reverted"
    (case,) = world.rows("cases")
    assert case["failures"] == 1 and case["next_due_at"] == world.clock.t + 60
    assert "RETRY    the next stage failed 1 time(s)" in outcome_text(world.engine().report(
        ("web1", "account", "alice")))
    world.clock.t += 30
    world.fake.log.clear()
    assert world.engine().tick() == [] and world.fake.log == []
    world.clock.t += 30
    world.engine().tick()
    (case,) = world.rows("cases")
    assert case["failures"] == 2 and case["next_due_at"] == world.clock.t + 120
    world.clock.t += 120
    (o,) = world.engine().tick()
    (case,) = world.rows("cases")
    assert o.ok and case["stage"] == 1 and case["failures"] == 0 and case["last_error"] is None
    assert [retry_delay(n) for n in (1, 2, 3, 7, 50)] == [60, 120, 240, RETRY_MAX, RETRY_MAX]


def test_a_recent_verified_backup_is_reused(world: World) -> None:
    world.engine().suspend("web1", "alice", "reuse", "billing", None, False)
    world.engine().unsuspend("web1", "alice", "billing", False)
    world.fake.log.clear()
    world.clock.t += 0.5 * HOUR
    world.engine().suspend("web1", "alice", "reuse", "billing", None, False)
    assert not [a for a in world.fake.log if a[0] == "tar"]
    world.engine().unsuspend("web1", "alice", "billing", False)
    world.clock.t += 2 * HOUR
    world.engine().suspend("web1", "alice", "reuse", "billing", None, False)
    assert [a for a in world.fake.log if a[0] == "tar"]


@pytest.mark.parametrize(("call", "error", "text"), [
    (lambda e: e.suspend("web1", "alice", None, "police", None, False), BadInput, "hold"),
    (lambda e: e.unsuspend("web1", "alice", "police", False), BadInput, "hold"),
    (lambda e: e.suspend("web9", "alice", None, "billing", None, False), BadInput, "web9"),
    (lambda e: e.suspend("web1", "root", None, "billing", None, False), BadInput, "protected"),
    (lambda e: e.suspend("web1", "backup", None, "billing", None, False), BadInput, "protected"),
    (lambda e: e.suspend("web1", "eve", None, "billing", None, False), BadInput, "not exist"),
    (lambda e: e.suspend("web1", "alice", "firewall", "billing", None, False), BadInput,
     "firewall_block"),
    (lambda e: e.suspend("web1", "alice", "nope", "billing", None, False), BadInput, "nope"),
])
def test_bad_requests_change_nothing(world: World, call, error, text) -> None:  # noqa: ANN001
    with pytest.raises(error, match=text):
        call(world.engine())
    assert world.rows("cases") == [] and world.rows("changes") == []
    assert world.fake.changing() == []


def test_history_names_the_caller_of_each_event(world: World) -> None:
    world.engine(caller="ssh:whmcs").suspend("web1", "alice", None, "billing", "inv", False)
    events = world.engine().history("web1", "alice")
    names = [e["event"] for e in events]
    assert names[0] == "case.opened" and "step.applied" in names
    assert {e["caller"] for e in events} == {"ssh:whmcs"}
