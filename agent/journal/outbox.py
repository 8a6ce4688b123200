"""The webhook outbox (reference/billing-evidence.md 4.3, 7.2): for each audit event of a type
an endpoint wants, one message, written in the same transaction as the event itself, so a
journal that says something happened always holds the message that tells billing.

A message's id is derived from the event (`msg_` + 26 base32 characters of SHA-256 of the
case id and the event's sequence number): the same on every retry, so the receiver can
drop duplicates. Only a case of its own counts (an account's, a reseller's, a whole
server's); the child cases of a tree are told through their tree's events. Every attempt
to deliver is recorded in `deliveries` (agent/engine/webhooks.py): evidence that billing
was told, and when.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, msg_id TEXT NOT NULL,
    type TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL, next_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'pending',
    last_status INTEGER, last_error TEXT, UNIQUE (endpoint, msg_id));
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (endpoint, state, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, outbox_seq INTEGER NOT NULL, at REAL NOT NULL,
    status INTEGER, error TEXT, seconds REAL);
"""

# The audit events that are webhooks, and the type each becomes.
AUDIT_TYPES = {"case.opened": "case.opened", "stage.applied": "stage.applied",
               "step.failed": "step.failed", "step.revert_failed": "case.partial",
               "hold.terms": "hold.changed", "hold.reconciled": "hold.changed",
               "case.lifted": "case.lifted", "step.drift": "drift.found",
               "audit.checkpoint": "audit.checkpoint"}
PREFIX = "suspension."


def message_id(case_id: str | None, event_seq: int) -> str:
    """Return the message id of an event: stable across retries, no full stop in it."""
    digest = hashlib.sha256(f"{case_id or '-'}|{event_seq}".encode()).digest()
    return "msg_" + base64.b32encode(digest).decode().lower()[:26]


def body(kind: str, at: float, event: str, event_seq: int, fields: dict[str, Any]) -> str:
    """Return the message body (Standard Webhooks' recommended shape, compact JSON)."""
    detail = {k: v for k, v in fields.items() if k not in (
        "server", "kind", "name", "case_id", "hold", "caller", "step", "outcome")}
    data = {"case_id": fields.get("case_id"), "server": fields.get("server"),
            "target": {"kind": fields.get("kind"), "name": fields.get("name")},
            "hold": fields.get("hold"), "event": event, "audit_seq": event_seq,
            "step": fields.get("step"), "outcome": fields.get("outcome"),
            "caller": fields.get("caller"), "detail": detail}
    return json.dumps({"type": PREFIX + kind,
                       "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                       "data": data}, separators=(",", ":"), sort_keys=True, default=str)


def wanted(endpoints: dict[str, Any], event: str) -> list[Any]:
    """Return the endpoints that get a message for audit event `event`."""
    kind = AUDIT_TYPES.get(event)
    return [e for e in endpoints.values() if kind is not None and kind in e.events]


def enqueue(tx: Any, endpoints: list[Any], at: float, event: str, event_seq: int,
            fields: dict[str, Any]) -> None:
    """Write one message per endpoint inside the transaction `tx` of the event."""
    kind = AUDIT_TYPES[event]
    text = body(kind, at, event, event_seq, fields)
    msg = message_id(fields.get("case_id"), event_seq)
    for endpoint in endpoints:
        tx.execute("INSERT INTO outbox (endpoint, msg_id, type, body, created_at, next_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (endpoint.name, msg, PREFIX + kind, text, at, at))
