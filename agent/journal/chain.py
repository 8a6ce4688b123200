"""The audit events as a hash chain (issue 19 item 5; reference/billing-evidence.md 5.2):
each event row carries the SHA-256 of the previous row's hash and its own content, so a row
changed, removed or moved afterwards breaks the chain at that row, and `audit verify` names
it. SQLite triggers refuse UPDATE and DELETE on the table (append-only); the chain is what
still tells when someone bypassed them (another tool, the triggers dropped).

The hash is taken and the row inserted in one BEGIN IMMEDIATE transaction, so concurrent
agents on one state database extend one chain. Events written before schema version 8 have
no hash: `verify` says how many come before the chain. What the chain alone cannot show is
a removal of the newest rows; a copy of the head kept elsewhere (a webhook to billing, the
reply of `audit verify`) can.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
COLUMNS = ("at", "event", "server", "kind", "name", "case_id", "hold", "step", "caller",
           "outcome", "detail")
# Schema version 8: the two columns and the triggers that make the table append-only.
STATEMENTS = (
    "ALTER TABLE events ADD COLUMN prev_hash TEXT",
    "ALTER TABLE events ADD COLUMN hash TEXT",
    "CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
)


def detail_digest(detail: str | None) -> str:
    """Return the SHA-256 of a row's detail text (what the chain covers of it), so that a
    dossier can hold the digest and leave out what the detail shows of files."""
    return hashlib.sha256((detail or "").encode()).hexdigest()


def row_hash(prev: str, values: dict[str, Any], digest: str | None = None) -> str:
    """Return the hash of a row: SHA-256 over the previous hash, the row's columns and its
    detail's digest (`digest`, else computed from values["detail"]) as canonical JSON
    (floats as their repr, so a time read back hashes the same)."""
    digest = digest if digest is not None else detail_digest(values.get("detail"))
    content = json.dumps([prev, *[values.get(c) for c in COLUMNS if c != "detail"], digest],
                         separators=(",", ":"), default=str)
    return hashlib.sha256(content.encode()).hexdigest()


def append(tx: Any, values: dict[str, Any]) -> int:
    """Insert one event row at the end of the chain inside transaction `tx`; return its
    seq."""
    last = tx.execute("SELECT hash FROM events WHERE hash IS NOT NULL ORDER BY seq DESC "
                      "LIMIT 1").fetchone()
    prev = last["hash"] if last else GENESIS
    names = ", ".join(COLUMNS)
    cur = tx.execute(f"INSERT INTO events ({names}, prev_hash, hash) VALUES "  # noqa: S608
                     f"({', '.join('?' * len(COLUMNS))}, ?, ?)",
                     (*[values.get(c) for c in COLUMNS], prev, row_hash(prev, values)))
    return int(cur.lastrowid)


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: the events checked, those before the chain, the head, and
    the first row that breaks it (None: none)."""

    checked: int
    unchained: int
    head: str
    head_seq: int | None
    bad_seq: int | None = None
    problem: str = ""


def verify(db: Any) -> Verdict:
    """Walk the events in seq order and return the first break of the chain."""
    rows = db.execute("SELECT * FROM events ORDER BY seq").fetchall()
    unchained, checked, prev, head_seq = 0, 0, None, None
    for row in rows:
        if row["hash"] is None:
            if prev is not None:
                return Verdict(checked, unchained, prev, head_seq, row["seq"],
                               "has no hash, after chained events (a row put in afterwards)")
            unchained += 1
            continue
        expected_prev = GENESIS if prev is None else prev
        if row["prev_hash"] != expected_prev:
            return Verdict(checked, unchained, prev or GENESIS, head_seq, row["seq"],
                           "does not follow the event before it (an event before it was "
                           "removed, or events were moved)")
        if row_hash(row["prev_hash"], dict(row)) != row["hash"]:
            return Verdict(checked, unchained, prev or GENESIS, head_seq, row["seq"],
                           "was changed after it was written")
        prev, head_seq, checked = row["hash"], row["seq"], checked + 1
    return Verdict(checked, unchained, prev or GENESIS, head_seq)
