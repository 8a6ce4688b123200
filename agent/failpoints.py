"""Crash points for tests: kill the agent right after its N-th journal transition or N-th
remote command, the way a power cut or `kill -9` would (etcd's failpoints, SQLite's crash
tests).

Set SUSPENSION_AGENT_FAILPOINT=journal:N or command:N (N from 1) in the agent's environment.
This variable is read here and nowhere else, once, at import; when it is unset (always, in
production) `hit` only counts. Never set it on a host that serves customers.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "SUSPENSION_AGENT_FAILPOINT"


def _parse(value: str) -> tuple[str, int] | None:
    kind, _, number = value.partition(":")
    if kind in ("journal", "command") and number.isdigit() and int(number) > 0:
        return kind, int(number)
    return None


_TARGET = _parse(os.environ.get(ENV, ""))
_COUNTS = {"journal": 0, "command": 0}
_LOCK = threading.Lock()


def hit(kind: str) -> None:
    """Count one `kind` event; SIGKILL this process when it is the configured one."""
    if _TARGET is None:
        return
    with _LOCK:
        _COUNTS[kind] += 1
        if (kind, _COUNTS[kind]) == _TARGET:
            os.kill(os.getpid(), signal.SIGKILL)
