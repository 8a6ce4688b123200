"""When a stage that failed is tried again (after 1, 2, 4 ... minutes, at most an hour),
and how billing's grace date holds back the stages after the first."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

RETRY_FIRST, RETRY_MAX = 60.0, 3600.0


def retry_delay(failures: int) -> float:
    """Return the pause before the next try of a stage that failed `failures` times."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, failures - 1))


def within_grace(pb: Any, case: Any, now: float) -> Any:
    """Return the playbook a case may advance along now: while billing's grace date
    (`--grace-until`) is ahead, no stage past the one reached (past the first, for a case
    that reached none yet) is applied, whatever its delay says."""
    grace = getattr(case, "grace_until", None)
    if grace is None or now >= grace:
        return pb
    reached = max(case.stage, 0)
    return replace(pb, stages=tuple(s for s in pb.stages if s.index <= reached))


def next_due(due: float | None, case: Any) -> float | None:
    """Return when a case's next stage is due, not before its grace date."""
    grace = getattr(case, "grace_until", None)
    return max(due, grace) if due is not None and grace is not None else due
