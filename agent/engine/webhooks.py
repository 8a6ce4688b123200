"""Delivering the webhook outbox (agent/journal/outbox.py) to billing: Standard Webhooks v1
(reference/billing-evidence.md 4.1, 7.2), sent by `tick`.

Each message is POSTed with `webhook-id` (the message's, the same on every retry),
`webhook-timestamp` (the attempt's, Unix seconds) and `webhook-signature`: `v1,<base64
HMAC-SHA256 of "id.timestamp.body">` for each of the endpoint's secrets (two while
rotating). A 2xx answer delivers it. Anything else, or no answer, schedules the next attempt
(5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h after the previous one; a
`Retry-After` that asks for more is honoured) and stops that endpoint's pass, so a receiver
that was down gets every message later, in order. After the last attempt, or a 410 Gone,
the message is given up (`webhook.failed` in the audit log). Every attempt is recorded with
its time, status and duration. Redirects are not followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import requests

from agent.errors import ConfigError
from agent.files import read_private

# Seconds before attempt n+1 after attempt n failed (attempt 1 is at the first tick).
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(SCHEDULE) + 1
USER_AGENT = "suspension-agent-webhooks/1"


def read_secret(path: str) -> bytes:
    """Return the key in a `whsec_<base64>` secret file: a regular file only its owner can
    read; ConfigError (naming the file, never its content) otherwise."""
    data, why = read_private(path, 512)
    if data is None:
        raise ConfigError(path, [f"webhook secret: {why}"])
    text = data.decode("ascii", "replace").strip()
    text = text.removeprefix("whsec_")
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise ConfigError(path, ["webhook secret is not whsec_<base64>"]) from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(path, ["webhook secret must be 24 to 64 random bytes"])
    return key


def signature(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header: one `v1,<base64>` per key, space-separated."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(k, content, hashlib.sha256).digest())
                    .decode() for k in keys)


def deliver(engine: Any, wall: Callable[[], float] = time.time,
            post: Callable[..., Any] = requests.post) -> dict[str, int]:
    """Send every due message of every endpoint, in order; return counts of what
    happened (delivered, retry, failed)."""
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    db = engine.journal.db
    for endpoint in engine.config.webhooks.values():
        rows = db.execute("SELECT * FROM outbox WHERE endpoint=? AND state='pending' "
                          "ORDER BY seq", (endpoint.name,)).fetchall()
        if not rows or rows[0]["next_at"] > engine.now():
            continue  # nothing due: the secrets are not read, nothing is logged
        try:
            keys = [read_secret(p) for p in endpoint.secret_files]
        except ConfigError as exc:
            engine.audit("webhook.failed", endpoint=endpoint.name, outcome="failed",
                         error=str(exc))
            counts["failed"] += 1
            continue
        for row in rows:
            if row["next_at"] > engine.now():
                break  # in order: the later ones wait for this one
            outcome = _attempt(engine, endpoint, keys, row, wall, post)
            counts[outcome] += 1
            if outcome != "delivered":
                break
    return counts


def _attempt(engine: Any, endpoint: Any, keys: list[bytes], row: Any,
             wall: Callable[[], float], post: Callable[..., Any]) -> str:
    """Try one message once, record the attempt, and schedule what follows."""
    db = engine.journal.db
    body = row["body"].encode()
    stamp = int(wall())
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               "webhook-id": row["msg_id"], "webhook-timestamp": str(stamp),
               "webhook-signature": signature(keys, row["msg_id"], stamp, body)}
    started = time.monotonic()
    status, error, retry_after = None, None, 0.0
    try:
        resp = post(endpoint.url, data=body, headers=headers, timeout=endpoint.timeout,
                    allow_redirects=False)
        status = resp.status_code
        retry_after = _retry_after(resp.headers.get("retry-after"))
    except requests.RequestException as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:300]
    seconds = time.monotonic() - started
    now = engine.now()
    db.execute("INSERT INTO deliveries (outbox_seq, at, status, error, seconds) "
               "VALUES (?, ?, ?, ?, ?)", (row["seq"], now, status, error, seconds))
    attempts = row["attempts"] + 1
    if status is not None and 200 <= status < 300:
        db.execute("UPDATE outbox SET state='delivered', attempts=?, last_status=?, "
                   "last_error=NULL WHERE seq=?", (attempts, status, row["seq"]))
        return "delivered"
    why = error or f"HTTP {status}"
    if status == 410 or attempts >= MAX_ATTEMPTS:
        db.execute("UPDATE outbox SET state='failed', attempts=?, last_status=?, last_error=? "
                   "WHERE seq=?", (attempts, status, why, row["seq"]))
        engine.audit("webhook.failed", endpoint=endpoint.name, msg_id=row["msg_id"],
                     attempts=attempts, outcome="failed", error=why)
        return "failed"
    delay = max(SCHEDULE[attempts - 1], retry_after)
    db.execute("UPDATE outbox SET attempts=?, next_at=?, last_status=?, last_error=? "
               "WHERE seq=?", (attempts, now + delay, status, why, row["seq"]))
    return "retry"


def _retry_after(value: str | None) -> float:
    """Return the seconds a `Retry-After: N` asks for (0 when absent or a date)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
