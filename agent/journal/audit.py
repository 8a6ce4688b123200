"""Audit trail: every change is a JSON line in the audit log and a row in the journal."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import structlog

_SECRET_KEYS = ("token", "password", "secret", "key_data")


def _drop_secrets(_logger: Any, _name: str, event: dict) -> dict:
    # Secrets never reach a log line, whatever a caller passes by mistake.
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "***"
    return event


def _to_stderr(_logger: Any, method: str, event: dict) -> dict:
    """-v: every event also as one line on stderr; debug events (each command sent to a
    server) only there, never in the audit log."""
    fields = " ".join(f"{k}={v}" for k, v in event.items()
                      if k not in ("event", "timestamp", "level"))
    print(f"{method}: {event.get('event')} {fields}", file=sys.stderr, flush=True)
    if method == "debug":
        raise structlog.DropEvent
    return event


_STREAM: list[TextIO] = []  # the log file opened by the last configure (closed by the next)


def configure(audit_log: str | None, verbose: bool = False) -> None:
    """Send structlog events as JSON lines to `audit_log` (stderr when it cannot be opened)."""
    while _STREAM:
        _STREAM.pop().close()
    stream: TextIO = sys.stderr
    if audit_log:
        try:
            Path(audit_log).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(audit_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            stream = os.fdopen(fd, "a", buffering=1, encoding="utf-8")
            _STREAM.append(stream)
        except OSError:
            stream = sys.stderr
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            *([_to_stderr] if verbose else []),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if verbose else logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


class Auditor:
    """Writes one event to both the structured log and the journal's events table."""

    def __init__(self, journal: Any, caller: str,
                 now: Callable[[], float] = time.time,
                 endpoints: dict[str, Any] | None = None) -> None:
        self.journal = journal
        # The webhook endpoints: an event one of them wants is queued for it with the event.
        self.endpoints = endpoints or {}
        self.caller = caller
        # The engine's clock: an event's time agrees with the changes it describes (and a
        # test that injects the clock sees the same time in both).
        self.now = now
        self.log = structlog.get_logger("agent.audit")
        # Set for a dry run: nothing is written anywhere, not even "step.failed".
        self.muted = False

    def __call__(self, event: str, **fields: Any) -> None:
        if self.muted:
            return
        fields.setdefault("caller", self.caller)
        self.log.info(event, **fields)
        self.journal.event(self.now(), event, self.endpoints, **dict(fields))
