"""The journal's audit events (mixed into agent/journal/journal.py's Journal): each one a
link of the hash chain (agent/journal/chain.py), written in one transaction with the webhook
messages it causes (agent/journal/outbox.py), and read back per target or per case."""

from __future__ import annotations

import json
from typing import Any

from agent.journal import chain, outbox

_EVENT_COLUMNS = ("server", "kind", "name", "case_id", "hold", "step", "caller", "outcome")


class EventLog:
    """The events part of the Journal (it holds `db`)."""

    db: Any

    def event(self, at: float, event: str, endpoints: dict[str, Any] | None = None,
              **fields: Any) -> None:
        """Record an audit event; with `endpoints` that want it (webhooks), their messages
        are written in the same transaction (agent/journal/outbox.py)."""
        wanted = outbox.wanted(endpoints or {}, event)
        if wanted and fields.get("case_id") and self._is_child(fields["case_id"]):
            wanted = []  # a tree's child: its tree's own events tell billing
        full = dict(fields)
        row = {c: fields.pop(c, None) for c in _EVENT_COLUMNS}
        row |= {"at": at, "event": event,
                "detail": json.dumps(fields, default=str) if fields else None}
        # One transaction: the chain's last hash is read and extended atomically, and the
        # webhooks' messages are written with their event.
        with self.db.transaction() as tx:
            seq = chain.append(tx, row)
            if wanted:
                outbox.enqueue(tx, wanted, at, event, seq, full)

    def _is_child(self, case_id: str) -> bool:
        row = self.db.execute("SELECT parent FROM cases WHERE id=?", (case_id,)).fetchone()
        return row is not None and row["parent"] is not None

    def case_rows(self, table: str, case_ids: list[str]) -> list[dict]:
        """Return the rows of `table` (events or changes) of the given cases, by seq."""
        if table not in ("events", "changes"):
            raise ValueError(f"no case rows in {table!r}")
        out: list[dict] = []
        for at in range(0, len(case_ids), 500):  # SQLite's host-parameter limit
            chunk = case_ids[at:at + 500]
            out += [dict(r) for r in self.db.execute(
                f"SELECT * FROM {table} WHERE case_id IN ("  # noqa: S608 - a fixed name
                + ",".join("?" * len(chunk)) + ")", tuple(chunk)).fetchall()]
        return sorted(out, key=lambda r: r["seq"])

    def case_events(self, case_ids: list[str]) -> list[dict]:
        """Return the events of the given cases (a reseller's children), in order."""
        return [r | {"detail": json.loads(r["detail"]) if r["detail"] else {}}
                for r in self.case_rows("events", case_ids)]

    def events(self, server: str, kind: str, name: str) -> list[dict]:
        rows = self.db.execute("SELECT * FROM events WHERE server=? AND kind=? AND name=? "
                               "ORDER BY seq", (server, kind, name)).fetchall()
        return [dict(r) | {"detail": json.loads(r["detail"]) if r["detail"] else {}}
                for r in rows]
