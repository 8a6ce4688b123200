"""`webhooks:` in the config: the endpoints that billing listens on, and which events each
gets (agent/engine/webhooks.py sends them; Standard Webhooks v1).

    webhooks:
      billing:
        url: https://billing.example.com/modules/addons/suspension/hook.php
        secret_files: [/etc/suspension-agent/webhook.secret]   # a second one while rotating
        events: [case.opened, case.lifted]                     # default: every type

A secret file holds one `whsec_<base64>` line (24 to 64 random bytes), is a regular file and
readable by its owner only; it is read when a message is signed, never logged. Plain http is
refused unless the endpoint says `allow_http: true` (a receiver on a private network).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.config.validate import Problems, boolean, integer, join, mapping, string, string_list

# The event types (Standard Webhooks `type`, prefixed "suspension."), from the audit events
# that cause them (agent/journal/outbox.py).
TYPES = ("case.opened", "stage.applied", "step.failed", "case.partial", "hold.changed",
         "case.lifted", "drift.found", "audit.checkpoint")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


@dataclass(frozen=True)
class Endpoint:
    """One webhook receiver."""

    name: str
    url: str
    secret_files: tuple[str, ...]
    events: tuple[str, ...] = TYPES
    timeout: int = 15


def parse(doc: Any, problems: Problems) -> dict[str, Endpoint]:
    """Return the endpoints under `webhooks:`, recording every problem."""
    out: dict[str, Endpoint] = {}
    names = set(doc) if isinstance(doc, dict) else set()
    for name, entry in mapping(doc, "webhooks", problems, names).items():
        path = join("webhooks", str(name))
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.add("webhooks", "endpoint names are letters, digits, '_' or '-'")
            continue
        d = mapping(entry, path, problems, {"url", "secret_files", "events", "timeout",
                                            "allow_http"})
        url = string(d, "url", path, problems, required=True) or ""
        parts = urlsplit(url)
        allow_http = boolean(d, "allow_http", path, problems, False)
        if url and (parts.scheme not in ("https", "http") or not parts.hostname):
            problems.add(join(path, "url"), "must be an https:// URL")
        elif parts.scheme == "http" and not allow_http:
            problems.add(join(path, "url"), "plain http sends the events unencrypted; use "
                         "https, or say allow_http: true for a receiver on a private network")
        secrets = tuple(string_list(d, "secret_files", path, problems))
        if not secrets or len(secrets) > 2:
            problems.add(join(path, "secret_files"), "one file, or two while rotating")
        for secret in secrets:
            if not secret.startswith("/"):
                problems.add(join(path, "secret_files"), f"{secret!r} must be an absolute path")
        events = tuple(string_list(d, "events", path, problems)) or TYPES
        for event in events:
            if event not in TYPES:
                problems.add(join(path, "events"), f"unknown event {event!r} (known: "
                             f"{', '.join(TYPES)})")
        timeout = integer(d, "timeout", path, problems, 15, 1, 60)
        out[name] = Endpoint(name, url, secrets, events, timeout)
    return out
