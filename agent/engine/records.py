"""The server's own record of each case: the journal is not the only copy of what to undo.

For every target with an open case or a change in effect, the server holds an owner-only
file `<records_dir>/<kind>-<name>.json` carrying the case ids, holds and playbooks, and for
each change its step, state and the undo data a revert needs (prior shell and hash, which
mailboxes and users the agent locked, prior file contents). It is written before a change
touches the server (right after the journal's intent) and brought in step with the journal
at the end of every call; it is removed once nothing is left to undo.

A record that names a case this journal does not know (the state database was lost,
truncated or restored from an old backup) is taken over: the case and its changes are
imported into the journal before anything else happens on that target, so a later
`unsuspend` puts back exactly what was changed. `status` reports such records; `recover`
imports them for every account of a server at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.connector import Connector
from agent.errors import CommandFailed, StepError
from agent.journal.journal import ACTIVE, Journal

FORMAT = "suspension-agent case record"
VERSION = 1
_CASE_KEYS = ("id", "hold", "playbook", "reason", "caller", "started_at", "stage",
              "next_due_at", "failures", "last_error")
# Written since the reseller target (a child names its parent case); optional when read,
# so a record written by an earlier release is still taken over.
_CHILD_KEYS = ("parent", "role", "prior")
# Written since invoices on holds; optional when read, as above.
_BILLING_KEYS = ("invoices", "grace_until")
_CHANGE_KEYS = ("seq", "case_id", "step", "stage", "state", "undo", "at")
# Constant scripts; the directory arrives as $1. Making it notes in `.created` the folders
# that did not exist before (top first), so that removing the last record removes exactly
# those and a host with nothing suspended carries nothing of the agent's.
_MAKE_DIR = (
    'set -e; made=; p=$1; while [ ! -d "$p" ]; do made="$p\n$made"; p=$(dirname -- "$p"); '
    'done; mkdir -p -- "$1"; chmod 0700 -- "$1"; '
    'if [ -n "$made" ]; then printf "$made" > "$1/.created"; chmod 0600 "$1/.created"; fi'
)
# Removal of one or more records ($2...), then of the folders once no record is left.
_REMOVE = (
    'd=$1; shift; rm -f -- "$@" || exit 1; for f in "$d"/*.json; do [ -e "$f" ] && exit 0; '
    'done; [ -f "$d/.created" ] || exit 0; list=$(tac -- "$d/.created"); '
    'rm -f -- "$d/.created"; '
    'printf "%s\n" "$list" | while IFS= read -r p; do [ -n "$p" ] || continue; '
    'rmdir -- "$p" 2>/dev/null || break; done; exit 0'
)


def path_for(records_dir: str, target: tuple[str, str, str]) -> str:
    """Return where the server keeps the record of `target` (names were validated)."""
    return f"{records_dir}/{target[1]}-{target[2]}.json"


def render(journal: Journal, target: tuple[str, str, str]) -> bytes | None:
    """Return the record the journal's view of `target` calls for, or None when empty."""
    cases = journal.open_cases(*target)
    changes = journal.active_changes(*target)
    if not cases and not changes:
        return None
    doc = {
        "format": FORMAT, "version": VERSION,
        "target": {"server": target[0], "kind": target[1], "name": target[2]},
        "cases": [{k: getattr(c, k) for k in _CASE_KEYS}
                  | {k: getattr(c, k) for k in _CHILD_KEYS if getattr(c, k) is not None}
                  | {k: (list(v) if isinstance(v, tuple) else v) for k in _BILLING_KEYS
                     if (v := getattr(c, k))}
                  for c in cases],
        # A change whose case was closed (lifted while a revert is stuck) keeps its case id;
        # the case itself is listed from the changes so the record stays self-contained.
        "changes": [{"seq": c.seq, "case_id": c.case_id, "step": c.step, "stage": c.stage,
                     "state": c.state, "undo": c.undo, "at": c.at, "driver": c.driver}
                    for c in changes],
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class Record:
    """A record read back from a server: its cases and changes, checked for shape."""

    path: str
    cases: list[dict[str, Any]]
    changes: list[dict[str, Any]]

    @property
    def case_ids(self) -> set[str]:
        return {c["id"] for c in self.cases} | {c["case_id"] for c in self.changes}


def parse(path: str, data: bytes, target: tuple[str, str, str]) -> Record:
    """Return the record in `data`; raise StepError when it is not one this agent wrote."""
    try:
        doc = json.loads(data)
        ok = (doc["format"] == FORMAT and doc["version"] == VERSION
              and doc["target"]["kind"] == target[1] and doc["target"]["name"] == target[2])
        cases = [{k: c[k] for k in _CASE_KEYS}
                 | {k: c[k] for k in _CHILD_KEYS + _BILLING_KEYS if k in c}
                 for c in doc["cases"]]
        changes = [{k: c[k] for k in _CHANGE_KEYS} | {"driver": str(c.get("driver", "linux"))}
                   for c in doc["changes"]]
        ok = ok and all(c["state"] in ACTIVE and isinstance(c["undo"], dict) for c in changes)
    except (ValueError, KeyError, TypeError) as exc:
        raise StepError(f"{path} is not a case record this agent can read ({exc})") from exc
    if not ok:
        raise StepError(f"{path} is not a version-{VERSION} case record of {target[2]}")
    return Record(path, cases, changes)


class Records:
    """Keeps one target's record on the server in step with the journal, for one call."""

    def __init__(self, conn: Connector, records_dir: str, journal: Journal,
                 target: tuple[str, str, str]) -> None:
        self.conn = conn
        self.dir = records_dir
        self.journal = journal
        self.target = target
        self.path = path_for(records_dir, target)
        self._on_server: bytes | None = None
        self._known = False
        # What a batch read for many targets at once (path -> FileData): `load` uses it
        # instead of its own round trip, once.
        self.prefetched: dict | None = None

    @property
    def found(self) -> bool:
        """True when `load` found a record on the server."""
        return bool(self._on_server)

    def load(self) -> Record | None:
        """Read the server's record of the target (None when there is none)."""
        marker = f"{self.dir}/.created"
        found, self.prefetched = self.prefetched, None
        if found is None or self.path not in found or marker not in found:
            found = self.conn.read_many([self.path, marker])
        data = found[self.path].data if found[self.path].exists else None
        if found[self.path].exists and data is None:
            raise StepError(f"{self.path} on {self.conn.name} is a {found[self.path].kind}, "
                            "not a case record; move it away")
        self._on_server, self._known = data, True
        # Folders made for a record that was never written (a run killed in between): an
        # empty record stands for "maybe something to clean", so the next sync tidies up.
        if data is None and found[marker].exists:
            self._on_server = b""
        return parse(self.path, data, self.target) if data is not None else None

    def unknown_cases(self, record: Record | None) -> list[str]:
        """Return the record's case ids that the journal has never seen."""
        if record is None:
            return []
        return sorted(cid for cid in record.case_ids if not self.journal.has_case(cid))

    def take_over(self, record: Record | None) -> list[str]:
        """Import the record's unknown cases and their changes; return their ids."""
        unknown = self.unknown_cases(record)
        if not unknown or record is None:
            return []
        for case in record.cases:
            if case["id"] in unknown:
                self.journal.import_case(self.target, case)
        for change in sorted(record.changes, key=lambda c: c["seq"]):
            if change["case_id"] in unknown:
                if not self.journal.has_case(change["case_id"]):
                    # Its case was lifted before the loss: bring it back closed.
                    self.journal.import_case(self.target, {
                        "id": change["case_id"], "hold": "billing", "playbook": "unknown",
                        "started_at": change["at"], "stage": change["stage"]}, "lifted")
                self.journal.import_change(self.target, change)
        return unknown

    def pending(self) -> tuple[bool, bytes | None]:
        """Return (whether the server's record differs from the journal's view, that view:
        the record's bytes, or None when it must go)."""
        data = render(self.journal, self.target)
        return not (self._known and data == self._on_server), data

    def synced(self, data: bytes | None) -> None:
        """Note that the server now holds `data` (None: no record)."""
        self._on_server, self._known = data, True

    def sync(self) -> None:
        """Make the server's record say what the journal says (remove it when empty)."""
        sync_many(self.conn, [self])



def sync_many(conn: Connector, recs: list[Records]) -> None:
    """Make every record in `recs` (all in one records folder) say what the journal says,
    in one command for those to write and one for those to remove, whatever their number.

    Raises StepError when either fails; the records not known to be written are then
    written again by the next sync (writing a record twice changes nothing).
    """
    todo = [(r, data) for r in recs for changed, data in [r.pending()] if changed]
    if not todo:
        return
    writes = [(r, data) for r, data in todo if data is not None]
    removes = [r for r, data in todo if data is None]
    where = todo[0][0].dir
    try:
        if writes:
            _write_all(conn, where, [(r.path, d or b"", 0o600, "0:0") for r, d in writes])
            for r, data in writes:
                r.synced(data)
        if removes:
            # The folders made for the records go with the last one (a concurrent first
            # write that finds them gone makes them again, see _write_all).
            conn.run(["sh", "-c", _REMOVE, "sh", where, *[r.path for r in removes]])
            for r in removes:
                r.synced(None)
    except CommandFailed as exc:
        names = ", ".join(r.path for r, _d in todo[:3]) + (" ..." if len(todo) > 3 else "")
        raise StepError(f"cannot keep the case record(s) {names} on {conn.name}: "
                        f"{exc}") from exc


def _write_all(conn: Connector, where: str, files: list[tuple[str, bytes, int, str]]) -> None:
    try:
        conn.write_many(files)
    except CommandFailed:
        # First record on this server: make the owner-only directory, then try again.
        conn.run(["sh", "-c", _MAKE_DIR, "sh", where])
        conn.write_many(files)

def list_targets(conn: Connector, records_dir: str) -> list[tuple[str, str]]:
    """Return (kind, name) of every record on the server."""
    out = conn.run(["find", records_dir, "-maxdepth", "1", "-type", "f", "-name", "*.json",
                    "-printf", "%f\\n"], ok_codes=(0, 1)).text
    found = []
    for line in out.splitlines():
        kind, _, name = line.removesuffix(".json").partition("-")
        if kind == "account" and name:
            found.append((kind, name))
    return sorted(found)
