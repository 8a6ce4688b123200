"""The journal's SQLite database: opened safely, its tables and their migrations, one
connection shared by a run's threads.

A state database that cannot be read is a clear error (JournalError, exit 78), never a
traceback; a database that another run holds is Busy (exit 75). The schema version lives
in `PRAGMA user_version`; MIGRATIONS bring an older file up to date in order, each in its
own transaction, before anything reads it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.errors import Busy, JournalError


def _v2_stage_failures(conn: sqlite3.Connection) -> None:
    """Version 2: a case counts the failures of its next stage (for the retry backoff)."""
    conn.execute("ALTER TABLE cases ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE cases ADD COLUMN last_error TEXT")


def _v3_change_driver(conn: sqlite3.Connection) -> None:
    """Version 3: each change names the driver that made it (its revert goes to the same
    driver). Every earlier change was made by the linux driver, the only one with steps."""
    conn.execute("ALTER TABLE changes ADD COLUMN driver TEXT NOT NULL DEFAULT 'linux'")


def _v4_case_parent(conn: sqlite3.Connection) -> None:
    """Version 4: a case can be a child of a reseller's (or whole server's) case: `parent`
    names that case, `role` says what the child is for (`account`, `login` or both) and
    `prior` (JSON) what the batch found on that account before it opened the child."""
    conn.execute("ALTER TABLE cases ADD COLUMN parent TEXT")
    conn.execute("ALTER TABLE cases ADD COLUMN role TEXT")
    conn.execute("ALTER TABLE cases ADD COLUMN prior TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS cases_parent ON cases (parent, status)")


def _v5_idempotency(conn: sqlite3.Connection) -> None:
    """Version 5: idempotency keys and the replies kept for them (agent/journal/
    idempotency.py)."""
    from agent.journal.idempotency import SCHEMA

    # Statement by statement: executescript would commit the migration's transaction.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v6_billing(conn: sqlite3.Connection) -> None:
    """Version 6: a billing hold carries the invoices it stands for (JSON list) and the
    date before which billing allows no escalation (`--grace-until`)."""
    conn.execute("ALTER TABLE cases ADD COLUMN invoices TEXT")
    conn.execute("ALTER TABLE cases ADD COLUMN grace_until REAL")


def _v7_outbox(conn: sqlite3.Connection) -> None:
    """Version 7: the webhook outbox and every delivery attempt (agent/journal/outbox.py)."""
    from agent.journal.outbox import SCHEMA

    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v8_chain(conn: sqlite3.Connection) -> None:
    """Version 8: the audit events as a hash chain, append-only (agent/journal/chain.py)."""
    from agent.journal.chain import STATEMENTS

    for statement in STATEMENTS:
        conn.execute(statement)


# Version 1: cases, changes and events as first shipped (a file from before versioning
# reads user_version 0 and already has exactly these tables).
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY, server TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    hold TEXT NOT NULL, playbook TEXT NOT NULL, reason TEXT, caller TEXT,
    started_at REAL NOT NULL, stage INTEGER NOT NULL DEFAULT -1,
    next_due_at REAL, status TEXT NOT NULL DEFAULT 'open', closed_at REAL, closed_by TEXT);
CREATE INDEX IF NOT EXISTS cases_target ON cases (server, kind, name, status);
CREATE INDEX IF NOT EXISTS cases_due ON cases (status, next_due_at);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL, server TEXT NOT NULL,
    kind TEXT NOT NULL, name TEXT NOT NULL, step TEXT NOT NULL, stage INTEGER NOT NULL,
    state TEXT NOT NULL, undo TEXT NOT NULL, at REAL NOT NULL, updated_at REAL NOT NULL,
    error TEXT);
CREATE INDEX IF NOT EXISTS changes_target ON changes (server, kind, name, state);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, server TEXT, kind TEXT,
    name TEXT, case_id TEXT, hold TEXT, step TEXT, caller TEXT, event TEXT NOT NULL,
    outcome TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS events_target ON events (server, kind, name, seq);
"""

# MIGRATIONS[n] takes a version-n database to version n+1; a new file is made at version 1
# and migrated like any other, so every file takes the same path.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v2_stage_failures,
                                                             2: _v3_change_driver,
                                                             3: _v4_case_parent,
                                                             4: _v5_idempotency,
                                                             5: _v6_billing,
                                                             6: _v7_outbox,
                                                             7: _v8_chain}
LATEST = 1 + len(MIGRATIONS)


def open_db(path: str) -> _Serialised:
    """Return the state database at `path`, created or migrated to LATEST, mode 0600."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Undo data holds prior password hashes: the database is for its owner only.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        _refuse_newer(conn, path)  # before anything writes to the file, WAL mode included
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        _migrate(conn, path)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise Busy(f"state database {path} is locked by another run; retry later") from exc
        raise _unreadable(path, exc) from exc
    except sqlite3.DatabaseError as exc:
        raise _unreadable(path, exc) from exc
    return _Serialised(conn, path)


def _refuse_newer(conn: sqlite3.Connection, path: str) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > LATEST:
        conn.close()
        raise JournalError(f"state database {path} has schema version {version}, newer than "
                           f"this agent's {LATEST}: run the newer agent (nothing was changed)")


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file up to LATEST, one version per transaction. Each step re-reads the
    version inside its BEGIN IMMEDIATE: several agents opening a new or older file at once
    (a billing system's parallel calls) must each find what the others already did, never
    run a migration twice or set an older version back."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= LATEST:
                conn.execute("COMMIT")
                return
            tables = {r[0] for r in
                      conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if version == 0:
                # A new file, or one from before versioning (which holds the version-1
                # tables). Statement by statement: executescript would commit.
                for statement in SCHEMA_V1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            elif not {"cases", "changes", "events"} <= tables:
                raise JournalError(f"state database {path} says schema version {version} "
                                   "but lacks its tables; nothing was changed")
            else:
                MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _unreadable(path: str, exc: Exception) -> JournalError:
    return JournalError(f"state database {path} cannot be read ({exc}); nothing was changed. "
                        "Move it aside, then run `suspension-agent recover SERVER` for each "
                        "server: the servers' own case records rebuild what is suspended")


class _Rows:
    """A statement's whole result, fetched while the connection was held."""

    def __init__(self, rows: list[sqlite3.Row], lastrowid: int | None) -> None:
        self.rows, self.lastrowid = rows, lastrowid

    def fetchall(self) -> list[sqlite3.Row]:
        return self.rows

    def fetchone(self) -> sqlite3.Row | None:
        return self.rows[0] if self.rows else None


class _Serialised:
    """One SQLite connection shared by the threads of a run (reverts run side by side):
    each statement runs and is fetched whole under one lock; SQLite's errors become the
    agent's typed errors."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self._path = path
        self._lock = threading.Lock()

    def execute(self, sql: str, params: tuple = ()) -> _Rows:
        with self._lock:
            try:
                cur = self._conn.execute(sql, params)
                return _Rows(cur.fetchall(), cur.lastrowid)
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise Busy(f"state database {self._path} is busy; retry later") from exc
                raise _unreadable(self._path, exc) from exc
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.IntegrityError):
                    raise
                raise _unreadable(self._path, exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[_Serialised]:
        """Run the statements of the block as one transaction (BEGIN IMMEDIATE ... COMMIT,
        rolled back on any error), no other thread's statement between them. Inside, use
        the yielded object's `execute`, never this one's (the lock is held)."""
        with self._lock:
            tx = _Serialised(self._conn, self._path)
            tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
                tx.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()
