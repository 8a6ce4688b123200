"""Idempotency keys (reference/billing-evidence.md 3, 7.1): a billing system that retries a
`suspend` or `unsuspend` (a timeout, WHMCS's Module Queue, a human's Retry days later) with
the same key gets the first reply again instead of a second action.

Keys are scoped per caller (`ssh:billing`, `admin:root`), stored in the journal's database
with a SHA-256 of the canonical parsed request (verb, server, target and the options that
change what is done; never the key or output flags). A key is claimed by one INSERT before
anything is done; the row names its owner (pid and process start time). Outcomes:

- first use: the call runs; a reply after which running again would be wrong (exit 0, done;
  exit 3, partial: a human must look) is kept with its exit code for `retention` seconds; any
  other (exit 1, failed and rolled back; 2; 75; 78) releases the key, so a retry runs again
  (with keys derived from the intent, a kept failure would make every retry useless);
- same key, same request, kept: the reply is replayed, marked `replayed: true`;
- same key, another request: exit 2 (`idempotency_key_mismatch`), nothing is done;
- same key while its first call still runs: exit 75 (`idempotency_in_flight`);
- same key whose owner died (kill -9, a crash): the new call takes the key over and runs the
  request again; the engine's recovery settles what the dead call left under way, and a
  request run twice converges (every step is idempotent), so the reply is that of one call.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from agent.errors import BadInput, Busy

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,254}")
# Replies kept: done (0) and partial, needs a human (3).
KEPT = (0, 3)
DEFAULT_RETENTION = 35 * 86400

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    caller TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
    state TEXT NOT NULL, owner TEXT, exit_code INTEGER, reply TEXT, text TEXT,
    created_at REAL NOT NULL, expires_at REAL,
    PRIMARY KEY (caller, key));
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (state, expires_at);
"""


class KeyMismatch(BadInput):
    """The key was first used for another request: exit 2, nothing done."""

    code = "idempotency_key_mismatch"


class KeyInFlight(Busy):
    """The key's first call still runs: exit 75, retry later."""

    code = "idempotency_in_flight"


def check_key(key: str) -> str:
    """Return `key` when it is a usable idempotency key; BadInput otherwise."""
    if not KEY.fullmatch(key):
        raise BadInput("--idempotency-key must be 1-255 characters: letters, digits, '.', "
                       "'_', ':' or '-', starting with a letter or digit")
    return key


def request_hash(verb: str, request: dict[str, Any]) -> str:
    """Return the SHA-256 of the canonical request (keys sorted, JSON)."""
    canonical = json.dumps({"verb": verb, **request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def owner_id(pid: int | None = None) -> str:
    """Return `pid:start-time` of this process (or `pid`), which a reused pid cannot fake."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return "?"
    # The command name (field 2) may hold spaces and parentheses: fields after its last ')'.
    return stat.rsplit(")", 1)[-1].split()[19]


def alive(owner: str | None) -> bool:
    """Return True when the process that owns a key still runs (the same one, not a reused
    pid)."""
    if not owner or ":" not in owner:
        return False
    pid, start = owner.split(":", 1)
    if not pid.isdigit():
        return False
    now = _start_time(int(pid))
    return now != "?" and now == start


@dataclass(frozen=True)
class Kept:
    """A reply kept for a key: what to replay."""

    exit_code: int
    reply: dict[str, Any]
    text: str
    first_at: float


class Store:
    """The keys of one journal database."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def claim(self, caller: str, key: str, digest: str, now: float) -> Kept | None:
        """Claim `key` for this process and return None (run the request), or the kept
        reply to replay; KeyMismatch / KeyInFlight as the module says."""
        me = owner_id()
        self.db.execute("DELETE FROM idempotency WHERE caller=? AND key=? AND state='done' "
                        "AND expires_at<=?", (caller, key, now))
        self.db.execute("INSERT INTO idempotency (caller, key, request_hash, state, owner, "
                        "created_at) VALUES (?, ?, ?, 'in_flight', ?, ?) "
                        "ON CONFLICT (caller, key) DO NOTHING", (caller, key, digest, me, now))
        row = self.db.execute("SELECT * FROM idempotency WHERE caller=? AND key=?",
                              (caller, key)).fetchone()
        if row["request_hash"] != digest:
            raise KeyMismatch(f"idempotency key {key!r} was first used for another request "
                              "(other verb, target or options); nothing was done")
        if row["state"] == "done":
            return Kept(row["exit_code"], json.loads(row["reply"]), row["text"] or "",
                        row["created_at"])
        if row["owner"] == me:
            return None
        if alive(row["owner"]):
            raise KeyInFlight(f"idempotency key {key!r}: its first call is still running; "
                              "retry in a few seconds")
        # Its owner died: take the key over (one process wins), and run the request again.
        taken = self.db.execute("UPDATE idempotency SET owner=? WHERE caller=? AND key=? AND "
                                "state='in_flight' AND owner IS ? RETURNING key",
                                (me, caller, key, row["owner"])).fetchone()
        if taken is None:
            raise KeyInFlight(f"idempotency key {key!r} was just taken over by another call; "
                              "retry in a few seconds")
        return None

    def first_at(self, caller: str, key: str) -> float:
        row = self.db.execute("SELECT created_at FROM idempotency WHERE caller=? AND key=?",
                              (caller, key)).fetchone()
        return row["created_at"] if row else 0.0

    def settle(self, caller: str, key: str, exit_code: int, reply: dict[str, Any], text: str,
               now: float, retention: int) -> None:
        """Keep the reply of a call this process ran (KEPT exit codes), else release the
        key so that a retry runs again."""
        if exit_code in KEPT:
            self.db.execute("UPDATE idempotency SET state='done', owner=NULL, exit_code=?, "
                            "reply=?, text=?, expires_at=? WHERE caller=? AND key=? AND "
                            "owner=?", (exit_code, json.dumps(reply), text, now + retention,
                                        caller, key, owner_id()))
        else:
            self.release(caller, key)

    def release(self, caller: str, key: str) -> None:
        """Forget a key this process claimed and did not keep a reply for."""
        self.db.execute("DELETE FROM idempotency WHERE caller=? AND key=? AND "
                        "state='in_flight' AND owner=?", (caller, key, owner_id()))

    def purge(self, now: float) -> int:
        """Delete kept replies past their retention; return how many."""
        rows = self.db.execute("DELETE FROM idempotency WHERE state='done' AND expires_at<=? "
                               "RETURNING key", (now,)).fetchall()
        return len(rows)
