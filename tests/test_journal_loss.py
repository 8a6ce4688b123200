"""The journal is not a single point of failure: the server's own case records rebuild it.

alice is suspended at the last stage of `immediate`; the control host's state database is
then deleted, truncated or corrupted. `status` says so (naming `recover`), `recover` takes
the cases back from the server, and `unsuspend` restores the host exactly (agent/engine/records.py).
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.test_crash_points import _all_locked, _all_open
from tests.test_ladder import snapshot

pytestmark = pytest.mark.testhost

RECORDS = "/var/lib/suspension-agent-cases"


def _suspend_then_lose(agent_env, host, how: str) -> str:
    """Suspend alice under `immediate`, check the server's record, then damage the journal."""
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate",
                               "--reason", "invoice 42")
    assert rc == 0, out
    case_id = reply["cases"][0]["id"]
    record = host.path(f"{RECORDS}/account-alice.json")
    st = record.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    assert stat.S_IMODE(host.path(RECORDS).stat().st_mode) == 0o700
    doc = json.loads(record.read_bytes())
    assert [c["id"] for c in doc["cases"]] == [case_id]
    assert sorted(c["step"] for c in doc["changes"]) == sorted(
        ["backup", "landing_page", "mail_block", "ftp_lock", "db_lock", "panel_lock"])
    assert all(c["state"] == "done" for c in doc["changes"])
    db = agent_env.config.parent / "state.db"
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    if how == "deleted":
        db.unlink()
    elif how == "truncated":
        os.truncate(db, 0)
    else:
        db.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    return case_id


def test_journal_deleted_status_warns_recover_then_unsuspend_restores(agent_env, host):
    before = snapshot(host)
    case_id = _suspend_then_lose(agent_env, host, "deleted")
    # What the journal alone would say ("active") is contradicted by the server's record.
    rc, reply, out = agent_env("status", host.name, "alice")
    assert rc == 1, out
    assert case_id in reply["errors"][0]["message"] and "recover" in reply["errors"][0]["message"]
    rc, reply, out = agent_env("status", host.name)
    assert rc == 1 and [t["target"]["name"] for t in reply["targets"]] == ["alice"], out
    rc, reply, out = agent_env("--dry-run", "recover", host.name)
    assert rc == 0 and reply["recovered"][0]["state"] == "active", out  # nothing taken yet
    rc, reply, out = agent_env("recover", host.name)
    assert rc == 0, out
    got = reply["recovered"][0]
    assert got["state"] == "suspended" and got["cases"][0]["id"] == case_id, out
    assert sorted(a["step"] for a in got["applied"]) == sorted(
        ["backup", "landing_page", "mail_block", "ftp_lock", "db_lock", "panel_lock"])
    _all_locked(host)  # recover changed nothing on the account
    rc, reply, out = agent_env("status", host.name, "alice")
    assert rc == 0 and reply["state"] == "suspended", out
    rc, _reply, out = agent_env("history", host.name, "alice")
    assert "case.recovered" in out
    rc, reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    _all_open(host, before)
    assert not host.path(RECORDS).exists()


def test_journal_truncated_the_next_unsuspend_takes_over_by_itself(agent_env, host):
    before = snapshot(host)
    case_id = _suspend_then_lose(agent_env, host, "truncated")
    # The billing system knows nothing of the loss: its unsuspend still restores everything.
    rc, reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert case_id in reply["message"]
    _all_open(host, before)
    assert not host.path(RECORDS).exists()


def test_journal_corrupted_is_a_clear_error_then_recovered(agent_env, host):
    before = snapshot(host)
    _suspend_then_lose(agent_env, host, "corrupted")
    db = agent_env.config.parent / "state.db"
    for verb in (("status", host.name, "alice"), ("unsuspend", host.name, "alice")):
        rc, reply, out = agent_env(*verb)
        assert rc == 78 and reply["ok"] is False, out
        message = reply["errors"][0]["message"]
        assert str(db) in message and "recover" in message, message
    _all_locked(host)  # the refusal changed nothing
    db.rename(db.with_name("state.db.corrupt"))
    rc, reply, out = agent_env("recover", host.name, "alice")
    assert rc == 0 and reply["recovered"][0]["state"] == "suspended", out
    rc, reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0, out
    _all_open(host, before)


def test_suspend_while_the_journal_was_lost_keeps_the_first_case(agent_env, host):
    """A new suspend on a target whose journal was lost takes the old case over first, so
    the locks the old case made are not mistaken for locks from before any case."""
    before = snapshot(host)
    case_id = _suspend_then_lose(agent_env, host, "deleted")
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate",
                               "--hold", "abuse")
    assert rc == 0, out
    assert sorted(c["hold"] for c in reply["cases"]) == ["abuse", "billing"]
    assert case_id in {c["id"] for c in reply["cases"]}
    rc, reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 4 and reply["state"] == "suspended", out  # abuse still holds
    rc, reply, out = agent_env("unsuspend", host.name, "alice", "--hold", "abuse")
    assert rc == 0 and reply["state"] == "active", out
    _all_open(host, before)
