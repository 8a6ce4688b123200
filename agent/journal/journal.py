"""The journal: cases (one per target and hold), changes with undo data, and audit events.

SQLite in WAL mode. A change row is written as `intent` before the server is touched and
becomes `done` after; a revert goes `reverting` then `reverted`; a revert that failed is
`stuck` (needs a human: `resolve` retries it, or records as `resolved` that an admin undid
it by hand). An `intent` or `reverting` row found later means a run died there.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from agent import failpoints
from agent.journal import database
from agent.journal.events import EventLog

ACTIVE = ("intent", "done", "reverting", "stuck")
_ACTIVE_SQL = "('intent', 'done', 'reverting', 'stuck')"  # the same states, for SQL




@dataclass(frozen=True)
class Case:
    id: str
    server: str
    kind: str
    name: str
    hold: str
    playbook: str
    reason: str | None
    caller: str | None
    started_at: float
    stage: int
    next_due_at: float | None
    status: str
    failures: int = 0
    last_error: str | None = None
    # A child of a reseller's case: that case's id, what the child is for (`account`,
    # `login`, `login+account`), and what the batch found on the account before (JSON).
    parent: str | None = None
    role: str | None = None
    prior: dict[str, Any] | None = None
    # A billing hold: the invoices it stands for, and until when billing allows no
    # escalation to a further stage (epoch seconds).
    invoices: tuple[str, ...] = ()
    grace_until: float | None = None


@dataclass(frozen=True)
class Change:
    seq: int
    case_id: str
    step: str
    stage: int
    state: str
    undo: dict[str, Any]
    at: float
    error: str | None
    driver: str = "linux"


class Journal(EventLog):
    """Access to the state database (one connection per run); its audit events are
    agent/journal/events.py's."""

    def __init__(self, path: str) -> None:
        self.db = database.open_db(path)

    def close(self) -> None:
        self.db.close()

    # -- cases ----------------------------------------------------------------------------
    def open_cases(self, server: str, kind: str, name: str) -> list[Case]:
        rows = self.db.execute(
            "SELECT * FROM cases WHERE server=? AND kind=? AND name=? AND status='open' "
            "ORDER BY started_at", (server, kind, name)).fetchall()
        return [_case(r) for r in rows]

    def new_case(self, server: str, kind: str, name: str, hold: str, playbook: str,
                 reason: str | None, caller: str | None, now: float,
                 parent: Case | None = None, role: str | None = None,
                 prior: dict[str, Any] | None = None) -> Case:
        """Open a case; a child (`parent` given) starts when its parent did, so the stages
        its parent reached are due for it at once, and is never due on its own (the
        parent's batch advances it)."""
        case_id = time.strftime("%Y%m%d", time.gmtime(now)) + "-" + secrets.token_hex(4)
        started = parent.started_at if parent is not None else now
        self.db.execute(
            "INSERT INTO cases (id, server, kind, name, hold, playbook, reason, caller, "
            "started_at, next_due_at, parent, role, prior) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (case_id, server, kind, name, hold, playbook, reason, caller, started,
             None if parent is not None else now, parent.id if parent is not None else None,
             role, json.dumps(prior) if prior is not None else None))
        return self.case(case_id)

    def children(self, parent_id: str, status: str | None = "open") -> list[Case]:
        """Return the child cases of `parent_id` (only those with `status`, unless None)."""
        if status is None:
            rows = self.db.execute("SELECT * FROM cases WHERE parent=? ORDER BY name",
                                   (parent_id,)).fetchall()
        else:
            rows = self.db.execute("SELECT * FROM cases WHERE parent=? AND status=? "
                                   "ORDER BY name", (parent_id, status)).fetchall()
        return [_case(r) for r in rows]

    def set_progress(self, case_id: str, stage: int, next_due_at: float | None,
                     failures: int, error: str | None) -> None:
        """Record a batch case's stage and next due time, with how many passes in a row
        left some child behind (the retry backoff) and why."""
        self.db.execute("UPDATE cases SET stage=?, next_due_at=?, failures=?, last_error=? "
                        "WHERE id=?", (stage, next_due_at, failures, error, case_id))

    def cases_of(self, server: str, kind: str, name: str) -> list[Case]:
        """Return every case of a target, open or closed, oldest first."""
        rows = self.db.execute("SELECT * FROM cases WHERE server=? AND kind=? AND name=? "
                               "ORDER BY started_at", (server, kind, name)).fetchall()
        return [_case(r) for r in rows]

    def set_billing(self, case_id: str, invoices: tuple[str, ...],
                    grace_until: float | None) -> None:
        """Record the invoices a hold stands for and its grace date (None: none)."""
        self.db.execute("UPDATE cases SET invoices=?, grace_until=? WHERE id=?",
                        (json.dumps(sorted(invoices)) if invoices else None, grace_until,
                         case_id))

    def set_role(self, case_id: str, role: str) -> None:
        self.db.execute("UPDATE cases SET role=? WHERE id=?", (role, case_id))

    def case(self, case_id: str) -> Case:
        return _case(self.db.execute("SELECT * FROM cases WHERE id=?", (case_id,)).fetchone())

    def has_case(self, case_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM cases WHERE id=?", (case_id,)).fetchone() is not None

    def import_case(self, target: tuple[str, str, str], case: dict[str, Any],
                    status: str = "open") -> None:
        """Add a case read back from the server's own record, under its original id."""
        self.db.execute(
            "INSERT INTO cases (id, server, kind, name, hold, playbook, reason, caller, "
            "started_at, stage, next_due_at, status, failures, last_error, parent, role, "
            "prior, invoices, grace_until) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (case["id"], *target, case["hold"], case["playbook"], case.get("reason"),
             case.get("caller"), case["started_at"], case["stage"], case.get("next_due_at"),
             status, case.get("failures", 0), case.get("last_error"), case.get("parent"),
             case.get("role"),
             json.dumps(case["prior"]) if case.get("prior") is not None else None,
             json.dumps(sorted(case["invoices"])) if case.get("invoices") else None,
             case.get("grace_until")))

    def import_change(self, target: tuple[str, str, str], change: dict[str, Any]) -> int:
        """Add a change read back from the server's own record, in its recorded state."""
        cur = self.db.execute(
            "INSERT INTO changes (case_id, server, kind, name, step, stage, state, undo, at, "
            "updated_at, driver) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (change["case_id"], *target, change["step"], change["stage"], change["state"],
             json.dumps(change["undo"]), change["at"], change["at"],
             change.get("driver", "linux")))
        return int(cur.lastrowid)

    def set_stage(self, case_id: str, stage: int, next_due_at: float | None) -> None:
        self.db.execute("UPDATE cases SET stage=?, next_due_at=?, failures=0, last_error=NULL "
                        "WHERE id=?", (stage, next_due_at, case_id))

    def stage_failed(self, case_id: str, error: str, retry_at: float) -> int:
        """Count one more failure of the case's next stage; return the count."""
        self.db.execute("UPDATE cases SET failures=failures+1, last_error=?, next_due_at=? "
                        "WHERE id=?", (error, retry_at, case_id))
        return self.case(case_id).failures

    def close_case(self, case_id: str, status: str, by: str | None, now: float) -> None:
        self.db.execute("UPDATE cases SET status=?, closed_at=?, closed_by=?, next_due_at=NULL "
                        "WHERE id=?", (status, now, by, case_id))

    def left_over(self, server: str, kind: str, name: str) -> list[Case]:
        """Return the closed child cases of the tree target's cases that still own a change
        in effect (a revert that went `stuck`, a run cut off) on an account no open case
        holds: the tree's lift is not finished for them. The newest per account."""
        rows = self.db.execute(
            "SELECT DISTINCT c.* FROM cases c JOIN cases p ON c.parent = p.id "  # noqa: S608
            "JOIN changes ch ON ch.server=c.server AND ch.kind=c.kind AND ch.name=c.name "
            "AND ch.case_id = c.id WHERE p.server=? AND p.kind=? AND p.name=? "
            "AND c.status != 'open' AND ch.state IN " + _ACTIVE_SQL + " AND NOT EXISTS ("
            "SELECT 1 FROM cases o WHERE o.server=c.server AND o.kind=c.kind "
            "AND o.name=c.name AND o.status='open') ORDER BY c.started_at",
            (server, kind, name)).fetchall()
        return list({r["name"]: _case(r) for r in rows}.values())

    def due_cases(self, now: float) -> list[Case]:
        # Children have no due time of their own: their parent's batch advances them.
        rows = self.db.execute("SELECT * FROM cases WHERE status='open' AND next_due_at<=? "
                               "AND parent IS NULL ORDER BY next_due_at", (now,)).fetchall()
        return [_case(r) for r in rows]

    def open_account_cases(self) -> list[Case]:
        """Return every open case of an account of its own (not a tree's child): `tick`
        checks their changes in effect (agent/engine/drift.py), due or not."""
        rows = self.db.execute("SELECT * FROM cases WHERE status='open' AND kind='account' "
                               "AND parent IS NULL ORDER BY started_at").fetchall()
        return [_case(r) for r in rows]

    def open_tree_cases(self) -> list[Case]:
        """Return every open tree case (a reseller's, a whole server's): `tick` looks at
        each one (a child added to the tree gets the stages already reached), whether a
        stage is due or not."""
        rows = self.db.execute("SELECT * FROM cases WHERE status='open' "
                               "AND kind IN ('reseller', 'server') "
                               "ORDER BY started_at").fetchall()
        return [_case(r) for r in rows]

    def targets(self, server: str | None = None) -> list[tuple[str, str, str]]:
        """Return every target with an open case or a change still in effect."""
        sql = ("SELECT server, kind, name FROM cases WHERE status='open' UNION "  # noqa: S608
               "SELECT server, kind, name FROM changes WHERE state IN " + _ACTIVE_SQL)
        rows = self.db.execute(sql).fetchall()
        return sorted({tuple(r) for r in rows if server is None or r[0] == server})

    # -- changes --------------------------------------------------------------------------
    def intent(self, case: Case, step: str, stage: int, undo: dict, now: float,
               driver: str = "linux") -> int:
        cur = self.db.execute(
            "INSERT INTO changes (case_id, server, kind, name, step, stage, state, undo, at, "
            "updated_at, driver) VALUES (?,?,?,?,?,?,'intent',?,?,?,?)",
            (case.id, case.server, case.kind, case.name, step, stage, json.dumps(undo), now, now,
             driver))
        failpoints.hit("journal")
        return int(cur.lastrowid)

    def mark(self, seq: int, state: str, now: float, undo: dict | None = None,
             error: str | None = None) -> None:
        if undo is None:
            self.db.execute("UPDATE changes SET state=?, updated_at=?, error=? WHERE seq=?",
                            (state, now, error, seq))
        else:
            self.db.execute("UPDATE changes SET state=?, updated_at=?, error=?, undo=? "
                            "WHERE seq=?", (state, now, error, json.dumps(undo), seq))
        failpoints.hit("journal")

    def mark_many(self, seqs: list[int], state: str, now: float) -> None:
        """Mark several changes at once, in one transaction (one sync to disk for a batch)."""
        for at in range(0, len(seqs), 500):  # SQLite's host-parameter limit
            chunk = seqs[at:at + 500]
            self.db.execute("UPDATE changes SET state=?, updated_at=?, error=NULL WHERE seq IN ("  # noqa: S608
                            + ",".join("?" * len(chunk)) + ")", (state, now, *chunk))
        failpoints.hit("journal")

    def active_changes(self, server: str, kind: str, name: str) -> list[Change]:
        rows = self.db.execute(
            "SELECT * FROM changes WHERE server=? AND kind=? AND name=? AND state IN "  # noqa: S608
            + _ACTIVE_SQL + " ORDER BY seq", (server, kind, name)).fetchall()
        return [_change(r) for r in rows]

    def latest_backup(self, server: str, name: str, newer_than: float) -> dict | None:
        """Return the undo data of the newest verified backup of an account, if recent."""
        rows = self.db.execute(
            "SELECT undo FROM changes WHERE server=? AND kind='account' AND name=? AND "
            "step='backup' AND state IN ('done','reverted') AND at>=? ORDER BY seq DESC",
            (server, name, newer_than)).fetchall()
        for row in rows:
            undo = json.loads(row["undo"])
            if undo.get("sha256"):
                return {k: undo[k] for k in ("archive", "sha256", "size", "home", "databases",
                                             "taken_at", "entries", "staging") if k in undo}
        return None

    # -- events ---------------------------------------------------------------------------


def _case(row: sqlite3.Row) -> Case:
    return Case(row["id"], row["server"], row["kind"], row["name"], row["hold"],
                row["playbook"], row["reason"], row["caller"], row["started_at"], row["stage"],
                row["next_due_at"], row["status"], row["failures"], row["last_error"],
                row["parent"], row["role"], json.loads(row["prior"]) if row["prior"] else None,
                tuple(json.loads(row["invoices"])) if row["invoices"] else (),
                row["grace_until"])


def _change(row: sqlite3.Row) -> Change:
    return Change(row["seq"], row["case_id"], row["step"], row["stage"], row["state"],
                  json.loads(row["undo"]), row["at"], row["error"], row["driver"])
