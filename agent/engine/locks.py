"""Per-target locks: one run at a time per target; a second caller waits, then gives up."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.errors import Busy


@contextmanager
def target_lock(state_db: str, key: str, wait: float) -> Iterator[None]:
    """Hold the lock of `key` for the block; raise Busy after `wait` seconds of waiting."""
    folder = Path(state_db).parent / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(f"{key} is busy: another run holds its lock; retry later") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
