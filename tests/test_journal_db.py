"""Fast tier: the state database is versioned, and an unreadable one is a clear error (78)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from agent import PROJECT_ROOT
from agent.errors import JournalError
from agent.journal import database
from agent.journal.journal import Journal


def _config(tmp_path) -> str:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"state_db: {tmp_path / 'state.db'}\naudit_log: {tmp_path / 'audit.jsonl'}\n"
                   "servers:\n  here:\n    panel: linux\n    transport: local\n")
    return str(cfg)


def _cli(cfg: str, *args: str) -> tuple[int, dict | None, str]:
    proc = subprocess.run([sys.executable, "-m", "agent", "--json", "--config", cfg, *args],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except json.JSONDecodeError:
        return proc.returncode, None, proc.stdout + proc.stderr


def test_new_database_is_at_the_latest_version_and_owner_only(tmp_path):
    Journal(str(tmp_path / "s.db")).close()
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == database.LATEST
    assert os.stat(tmp_path / "s.db").st_mode & 0o777 == 0o600


def test_a_newer_database_is_refused_untouched(tmp_path):
    newer = sqlite3.connect(tmp_path / "s.db")
    newer.execute(f"PRAGMA user_version = {database.LATEST + 1}")
    newer.close()
    before = (tmp_path / "s.db").read_bytes()
    with pytest.raises(JournalError, match="newer"):
        Journal(str(tmp_path / "s.db"))
    assert (tmp_path / "s.db").read_bytes() == before


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_an_unreadable_database_is_json_and_exit_78_for_every_verb(tmp_path, damage):
    cfg = _config(tmp_path)
    rc, _reply, out = _cli(cfg, "status")
    assert rc == 0, out
    db = tmp_path / "state.db"
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"state.db{suffix}").unlink(missing_ok=True)
    data = db.read_bytes()
    db.write_bytes(b"this is not sqlite" * 300 if damage == "garbage" else data[:100])
    for verb in (["status"], ["tick"], ["suspend", "here", "alice"], ["unsuspend", "here", "alice"],
                 ["history", "here", "alice"]):
        rc, reply, out = _cli(cfg, *verb)
        assert rc == 78, (verb, out)
        assert reply["ok"] is False and str(db) in reply["errors"][0]["message"], out
        assert "Traceback" not in out


@pytest.mark.parametrize("version", list(range(database.LATEST)))
def test_every_earlier_version_is_migrated_with_its_rows(tmp_path, version):
    old = sqlite3.connect(tmp_path / "s.db")
    # The version-1 tables (version 0: the same, unversioned).
    old.executescript(database.SCHEMA_V1)
    for step in range(1, max(version, 1)):  # then the migrations that version had
        database.MIGRATIONS[step](old)
    old.execute(f"PRAGMA user_version = {version}")
    old.execute("INSERT INTO cases (id, server, kind, name, hold, playbook, started_at) "
                "VALUES ('c1', 'web1', 'account', 'alice', 'billing', 'standard', 1.0)")
    old.execute("INSERT INTO changes (case_id, server, kind, name, step, stage, state, undo, "
                "at, updated_at) VALUES ('c1', 'web1', 'account', 'alice', 'backup', 0, "
                "'done', '{}', 1.0, 1.0)")
    old.commit()
    old.close()
    journal = Journal(str(tmp_path / "s.db"))
    (case,) = journal.open_cases("web1", "account", "alice")
    assert case.id == "c1" and case.failures == 0 and case.last_error is None
    (change,) = journal.active_changes("web1", "account", "alice")
    assert change.step == "backup" and change.driver == "linux"  # v3: made by linux
    assert journal.stage_failed("c1", "db down", 99.0) == 1
    journal.close()
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == database.LATEST


def test_migrations_run_in_order_and_keep_the_rows(tmp_path, monkeypatch):
    journal = Journal(str(tmp_path / "s.db"))
    journal.new_case("web1", "account", "alice", "billing", "standard", None, "t", 1.0)
    journal.close()
    ran = []
    latest = database.LATEST

    def add_column(conn):
        ran.append("add")
        conn.execute("ALTER TABLE changes ADD COLUMN later TEXT")

    def fill_column(conn):
        ran.append("fill")
        conn.execute("UPDATE changes SET later = 'filled'")

    monkeypatch.setattr(database, "MIGRATIONS", {**database.MIGRATIONS,
                                                 latest: add_column, latest + 1: fill_column})
    monkeypatch.setattr(database, "LATEST", latest + 2)
    journal = Journal(str(tmp_path / "s.db"))
    assert ran == ["add", "fill"]
    assert len(journal.open_cases("web1", "account", "alice")) == 1
    journal.close()
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == latest + 2
    assert "later" in [r[1] for r in db.execute("PRAGMA table_info(changes)")]


@pytest.mark.parametrize("start", [0, 1])
def test_agents_opening_a_new_or_old_file_at_once_each_migrate_it_once(tmp_path, start):
    """A billing system's parallel calls against a fresh (or an older) state database:
    every one opens it, none runs a migration twice or sets the version back."""
    path = tmp_path / "s.db"
    if start:
        old = sqlite3.connect(path)
        old.executescript(database.SCHEMA_V1)
        old.execute("PRAGMA user_version = 1")
        old.close()
    code = ("import sys; from agent.journal import database; "
            "database.open_db(sys.argv[1]).close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=PROJECT_ROOT,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == database.LATEST
    columns = {r[1] for r in db.execute("PRAGMA table_info(cases)")}
    assert {"failures", "parent", "role", "prior"} <= columns
    assert db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0] == 0
    db.close()
