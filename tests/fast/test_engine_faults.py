"""Engine in-process with failures on cue: rollback order, `stuck` reverts and cleanups,
runs that died after an intent or mid-revert, a server lost mid-call, tick's own faults."""

from __future__ import annotations

import pytest

from agent.engine.locks import target_lock
from agent.errors import Busy, Unreachable
from tests.fast.conftest import HOUR, ORIGINAL_LANDING, START, World
from tests.fast.fake_steps import step_path
from tests.fast.fakes import Crash, is_

LANDING = step_path("landing_page", "alice")
MAIL = step_path("mail_block", "alice")


def reloads(world: World) -> list[str]:
    return [a[1] for a in world.fake.log if a[0] == "reload"]


def states_of(world: World, step: str) -> list[str]:
    return [r["state"] for r in world.rows("changes") if r["step"] == step]


def suspend(world: World, playbook: str | None = "now"):  # noqa: ANN201 - an Outcome
    return world.engine().suspend("web1", "alice", playbook, "billing", None, False)


def unsuspend(world: World):  # noqa: ANN201 - an Outcome
    return world.engine().unsuspend("web1", "alice", "billing", False)


def test_a_failing_step_rolls_its_stage_back_newest_first(world: World) -> None:
    world.fake.fail(is_("reload", "ftp_lock"))
    o = suspend(world)
    assert not o.ok and o.rolled_back and not o.partial and o.state == "active"
    assert reloads(world) == ["landing_page", "mail_block", "ftp_lock",
                              "ftp_lock", "mail_block", "landing_page"]
    assert set(world.states().values()) == {"reverted"}
    assert world.fake.files[LANDING].data == ORIGINAL_LANDING and MAIL not in world.fake.files
    (case,) = world.rows("cases")
    assert case["status"] == "failed"  # the first stage failed: the case never started


def test_a_step_that_changed_nothing_is_failed_not_reverted(world: World) -> None:
    world.fake.fail(is_("write", step_path("ftp_lock", "alice")))
    o = suspend(world)
    assert o.errors[0]["step"] == "ftp_lock" and o.rolled_back
    assert world.states()["ftp_lock"] == "failed"
    assert reloads(world) == ["landing_page", "mail_block", "mail_block", "landing_page"]


def test_a_failed_rollback_is_stuck_and_the_next_call_retries_it(world: World) -> None:
    world.fake.fail(is_("reload", "ftp_lock"))
    world.fake.fail(is_("rm", "-f", "--", MAIL))  # the revert removes the file it added
    o = suspend(world)
    assert o.partial and o.state == "partial"
    assert any(e["message"].startswith("revert failed") for e in o.errors)
    assert [c["stuck"] for c in o.cases if "stuck" in c] == ["mail_block"]
    assert states_of(world, "mail_block") == ["stuck"]
    assert b"\nblock" in world.fake.files[MAIL].data
    o = suspend(world)
    assert o.ok and states_of(world, "mail_block") == ["reverted", "done"]
    assert set(world.states().values()) == {"done"}


def test_a_revert_that_keeps_failing_blocks_new_changes_until_it_works(world: World) -> None:
    world.fake.fail(is_("reload", "ftp_lock"))
    world.fake.fail(is_("rm", "-f", "--", MAIL), times=-1)
    suspend(world)
    o = suspend(world)
    assert o.partial and "still cannot; nothing new was applied" in o.message
    assert states_of(world, "landing_page") == ["reverted"]  # not applied again
    assert unsuspend(world).partial
    world.fake.heal()
    o = unsuspend(world)
    assert o.ok and o.state == "active" and MAIL not in world.fake.files


def test_a_backup_cleanup_that_fails_is_stuck_then_retried(world: World) -> None:
    world.fake.fail(is_("mv"), Crash("killed during the backup"))
    with pytest.raises(Crash):
        suspend(world)
    assert world.states() == {"backup": "intent"}
    partial = [p for p in world.fake.files if p.endswith(".partial")]
    assert partial
    world.fake.fail(is_("rm", "-rf"))
    o = suspend(world)
    assert o.partial and world.states() == {"backup": "stuck"}
    o = suspend(world)
    assert o.ok and states_of(world, "backup") == ["failed", "done"]
    assert not [p for p in world.fake.files if p.endswith(".partial")]
    (first, _second) = world.rows("changes")[:2]
    assert first["error"] == "interrupted; cleaned"


def test_an_intent_left_by_a_dead_run_is_put_back_then_applied(world: World) -> None:
    world.fake.fail(is_("reload", "landing_page"), Crash("kill -9"))
    with pytest.raises(Crash):
        suspend(world, "ladder")
    assert world.states() == {"backup": "done", "landing_page": "intent"}
    o = suspend(world, "ladder")
    assert o.ok and states_of(world, "landing_page") == ["reverted", "done"]
    assert reloads(world) == ["landing_page", "landing_page", "landing_page"]
    assert unsuspend(world).ok and world.fake.files[LANDING].data == ORIGINAL_LANDING


def test_a_revert_left_half_done_by_a_dead_run_is_finished(world: World) -> None:
    suspend(world)
    world.fake.fail(is_("write", LANDING), Crash("kill -9"))
    with pytest.raises(Crash):
        unsuspend(world)
    assert world.states()["landing_page"] == "reverting"
    assert [c["status"] for c in world.rows("cases")] == ["open"]
    o = unsuspend(world)
    assert o.ok and o.state == "active" and set(world.states().values()) == {"reverted"}
    assert world.fake.files[LANDING].data == ORIGINAL_LANDING


def test_a_server_lost_mid_suspend_keeps_the_intent_for_the_next_call(world: World) -> None:
    world.fake.fail(is_("reload", "mail_block"), Unreachable("web1: connection lost"))
    o = suspend(world)
    assert o.unreachable and "nothing was rolled back" in o.errors[0]["message"]
    assert world.states() == {"backup": "done", "landing_page": "done", "mail_block": "intent"}
    assert reloads(world) == ["landing_page", "mail_block"]
    o = suspend(world)
    assert o.ok and not o.unreachable and set(world.states().values()) == {"done"}
    assert states_of(world, "mail_block") == ["reverted", "done"]


@pytest.mark.parametrize("lost", ["landing_page", "db_lock"])
def test_a_server_lost_mid_unsuspend_keeps_reverting(world: World, lost: str) -> None:
    suspend(world, "ladder")
    world.clock.t = START + 72 * HOUR
    world.engine().tick()
    world.fake.fail(is_("reload", lost), Unreachable("web1: connection lost"))
    o = unsuspend(world)
    assert o.unreachable and o.holds == ["billing"]
    assert world.states()[lost] == "reverting"
    o = unsuspend(world)
    assert o.ok and o.state == "active" and set(world.states().values()) == {"reverted"}


def test_tick_skips_a_busy_target_and_reports_a_lost_server(world: World) -> None:
    suspend(world, "ladder")
    world.clock.t = START + 24 * HOUR
    with target_lock(str(world.state_db), "web1.account.alice", 0):
        assert world.engine().tick() == []
        with pytest.raises(Busy):
            suspend(world, "ladder")
    world.fake.fail(is_("reload", "mail_block"), Unreachable("web1: timed out"))
    (o,) = world.engine().tick()
    assert o.unreachable and world.states()["mail_block"] == "intent"
    (o,) = world.engine().tick()
    assert o.ok and world.states()["mail_block"] == "done"


def test_tick_reports_a_case_whose_server_left_the_config(world: World) -> None:
    suspend(world, "ladder")
    world.config_path.write_text(world.config_path.read_text().replace("  web1:", "  web2:"))
    world.clock.t = START + 24 * HOUR
    (o,) = world.engine().tick()
    assert o.state == "partial" and o.errors[0]["step"] == "tick" and "web1" in o.errors[0][
        "message"]
    assert world.rows("events")[-1]["event"] == "tick.failed"


def test_history_shows_a_failed_tick(world: World) -> None:
    suspend(world, "ladder")
    world.config_path.write_text(world.config_path.read_text().replace("  web1:", "  web2:"))
    world.clock.t = START + 24 * HOUR
    world.engine().tick()
    events = world.engine().journal.events("web1", "account", "alice")
    assert events[-1]["event"] == "tick.failed"


def test_a_verified_backup_whose_revert_was_interrupted_stays_reusable(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    suspend(world, "reuse")
    engine = world.engine()
    mark = engine.journal.mark

    def dies_after_reverting(seq: int, state: str, now: float, **kw: object) -> None:
        mark(seq, state, now, **kw)  # type: ignore[arg-type]
        if state == "reverting" and seq == 1:
            raise Crash("kill -9")

    monkeypatch.setattr(engine.journal, "mark", dies_after_reverting)
    with pytest.raises(Crash):
        engine.unsuspend("web1", "alice", "billing", False)
    assert world.states()["backup"] == "reverting"
    assert unsuspend(world).ok
    assert world.states()["backup"] == "reverted"
    assert world.engine().journal.latest_backup("web1", "alice", START - HOUR) is not None
