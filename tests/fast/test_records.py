"""The server's own case records in the fast tier: recover, resolve and a record that is not
one (agent/engine/records.py, agent/engine/recovery.py)."""

from __future__ import annotations

from agent.cli import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from tests.fast.conftest import World
from tests.fast.fakes import is_

RECORD = "/var/lib/suspension-agent-cases/account-alice.json"


def _lose_journal(world: World) -> None:
    for suffix in ("", "-wal", "-shm"):
        world.state_db.with_name("state.db" + suffix).unlink(missing_ok=True)


def test_recover_takes_the_cases_back_and_a_dry_run_only_says_so(world: World) -> None:
    rc, reply, out = world.cli("suspend", "web1", "alice", "--playbook", "now")
    case_id = reply["cases"][0]["id"]
    assert RECORD in world.fake.files and world.fake.files[RECORD].mode == 0o600
    _lose_journal(world)
    rc, reply, out = world.cli("--dry-run", "recover", "web1", "alice")
    assert rc == EXIT_OK and reply["recovered"][0]["state"] == "active", out
    assert case_id in reply["recovered"][0]["message"]
    assert world.rows("cases") == []  # the dry run wrote nothing
    rc, reply, out = world.cli("recover", "web1", "alice")
    got = reply["recovered"][0]
    assert rc == EXIT_OK and got["state"] == "suspended" and got["cases"][0]["id"] == case_id
    rc, reply, out = world.cli("recover", "web1", "alice")  # twice: nothing more to take
    assert "already knew" in reply["recovered"][0]["message"], out
    assert [e["event"] for e in world.rows("events")].count("case.recovered") == 1
    rc, reply, out = world.cli("unsuspend", "web1", "alice")
    assert rc == EXIT_OK and reply["state"] == "active", out


def test_a_record_that_is_not_one_stops_the_call(world: World) -> None:
    world.fake.put(RECORD, b'{"format": "something else"}', 0o600)
    rc, reply, out = world.cli("suspend", "web1", "alice", "--playbook", "now")
    assert rc == EXIT_FAILED and RECORD in out, out
    assert world.rows("changes") == []
    rc, reply, out = world.cli("status", "web1", "alice")
    assert rc == EXIT_FAILED and "cannot be read" in out, out


def test_resolve_retries_then_records_a_fix_by_hand(world: World) -> None:
    world.cli("suspend", "web1", "alice", "--playbook", "now")
    world.fake.fail(is_("reload", "ftp_lock"), 1, times=100)
    rc, reply, out = world.cli("unsuspend", "web1", "alice")
    assert rc == EXIT_PARTIAL, out
    rc, reply, out = world.cli("--dry-run", "resolve", "web1", "alice")
    assert rc == EXIT_PARTIAL and "would retry: ftp_lock" in reply["message"], out
    rc, reply, out = world.cli("resolve", "web1", "alice")
    assert rc == EXIT_PARTIAL, out  # still failing: still stuck
    rc, reply, out = world.cli("resolve", "web1", "alice", "--handled", "ftp_lock")
    assert rc == EXIT_USAGE and "--reason" in out
    rc, reply, out = world.cli("resolve", "web1", "alice", "--handled", "db_lock",
                               "--reason", "x")
    assert rc == EXIT_USAGE and "no stuck db_lock" in out
    rc, reply, out = world.cli("resolve", "web1", "alice", "--handled", "ftp_lock",
                               "--reason", "reloaded by hand")
    assert rc == EXIT_OK and reply["state"] == "active", out
    assert [r["state"] for r in world.rows("changes") if r["step"] == "ftp_lock"] == [
        "resolved"]
    assert any(e["event"] == "change.resolved" for e in world.rows("events"))
    world.fake.heal()
    world.cli("suspend", "web1", "alice", "--playbook", "now")
    world.fake.fail(is_("reload", "ftp_lock"), 1, times=1)
    rc, reply, out = world.cli("unsuspend", "web1", "alice")
    assert rc == EXIT_PARTIAL, out
    rc, reply, out = world.cli("resolve", "web1", "alice")  # the fault has passed
    assert rc == EXIT_OK and reply["state"] == "active", out
    rc, reply, out = world.cli("resolve", "web1", "alice")
    assert rc == EXIT_OK and reply["message"] == "nothing is stuck", out
