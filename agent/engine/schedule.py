"""When a stage that failed is tried again: after 1, 2, 4 ... minutes, at most an hour."""

from __future__ import annotations

RETRY_FIRST, RETRY_MAX = 60.0, 3600.0


def retry_delay(failures: int) -> float:
    """Return the pause before the next try of a stage that failed `failures` times."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, failures - 1))
