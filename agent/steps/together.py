"""Several accounts' plans of one step carried out as one: the actions of all of them in as
few round trips as one plan's (one batch of commands for every account's folders, one
`write_many` for every account's files), each plan's own actions still in their order.

Only for steps that say so (`together = True`: their `apply` is `carry_out(plan.actions)`
returning `plan.undo`, and so is their revert; the plans of different accounts touch
different files, or shared folders only with `install -d`). A failure half way is mapped
back to the plans: each plan's actions carried out before it count as done, and every
plan not finished carries out the rest of its own actions alone, so that one account's
failure is that account's alone, with its own error and `completed` count.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from agent.connector import Connector
from agent.errors import AgentError, AuthFailed, HostKeyRefused, Unreachable
from agent.steps.actions import CARRIED, Action, Run, carry_out, kind

# The most plans merged into one call: commands and file lists stay well inside the
# server's argument limits, and a big batch runs as a few calls side by side.
PER_CALL = 32
# The order in which kinds of action are taken when plans are at different kinds.
_ORDER = ("batch", "write", "other")
if TYPE_CHECKING:
    from agent.steps.protocol import Plan

_LOST = (Unreachable, AuthFailed, HostKeyRefused)

Outcome = tuple[list[str], AgentError | None]


def carry_out_many(conn: Connector, plans: list[list[Action]],
                   workers: int = 1) -> list[Outcome]:
    """Carry out every plan's actions; return, per plan, the lines of what was carried out
    (its audit) and its error (None when all its actions are done). An error carries
    `completed`, the number of that plan's actions done. A lost link is every unfinished
    plan's error, and nothing more is tried."""
    results: list[Outcome | None] = [None] * len(plans)
    calls = max(1, min(workers, -(-len(plans) // PER_CALL)))
    size = max(1, -(-len(plans) // calls))
    chunks = [list(range(i, min(len(plans), i + size))) for i in range(0, len(plans), size)]

    def one(chunk: list[int]) -> None:
        for i, outcome in zip(chunk, _together(conn, [plans[i] for i in chunk]), strict=True):
            results[i] = outcome

    if len(chunks) <= 1:
        for chunk in chunks:
            one(chunk)
    else:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            list(pool.map(one, chunks))
    return [r if r is not None else ([], None) for r in results]


def merge(plans: list[list[Action]]) -> tuple[list[Action], list[int]]:
    """Return the plans' actions as one list, and the plan each came from: round by round,
    of the first kind (in _ORDER) that any plan is at next, the whole leading run of that
    kind of every plan at it; so each plan's actions keep their order."""
    kinds = [[kind(a) for a in p] for p in plans]
    at = [0] * len(plans)
    merged: list[Action] = []
    owner: list[int] = []
    while True:
        next_kinds = {kinds[i][at[i]] for i in range(len(plans)) if at[i] < len(plans[i])}
        if not next_kinds:
            return merged, owner
        take = next(k for k in _ORDER if k in next_kinds)
        for i, actions in enumerate(plans):
            while at[i] < len(actions) and kinds[i][at[i]] == take:
                merged.append(actions[at[i]])
                owner.append(i)
                at[i] += 1


def _together(conn: Connector, plans: list[list[Action]]) -> list[Outcome]:
    """Carry out the plans merged; after a failure, each unfinished plan's rest alone."""
    merged, owner = merge(plans)
    failure: AgentError | None = None
    token = CARRIED.set(None)  # the lines are given to each plan below
    try:
        carry_out(conn, merged)
        completed = len(merged)
    except AgentError as exc:
        failure, completed = exc, getattr(exc, "completed", 0)
    finally:
        CARRIED.reset(token)
    done = [0] * len(plans)
    for j in range(completed):
        done[owner[j]] += 1
    outcomes: list[Outcome] = []
    for i, actions in enumerate(plans):
        lines = [line for a in actions[:done[i]] for line in a.describe()]
        if failure is None or done[i] == len(actions):
            outcomes.append((lines, None))
        elif isinstance(failure, _LOST):
            outcomes.append((lines, failure))
        else:
            outcomes.append(_alone(conn, actions, done[i], lines))
    return outcomes


def _alone(conn: Connector, actions: list[Action], done: int, lines: list[str]) -> Outcome:
    """Carry out a plan's actions after its first `done` ones on their own."""
    token = CARRIED.set(lines)
    try:
        carry_out(conn, actions[done:])
        return lines, None
    except AgentError as exc:
        exc.completed = done + getattr(exc, "completed", 0)  # type: ignore[attr-defined]
        return lines, exc
    finally:
        CARRIED.reset(token)


def merge_finish(plans: list[Plan]) -> list[Action]:
    """Return the finish actions of several accounts' plans as one list to carry out once:
    equal commands once, in their first order, and edits of one file (EditLines, MapEdit:
    anything with `merge_key` and `merged_with`) merged into one edit (one read, one write)."""
    merged: dict[tuple, Any] = {}
    for plan in plans:
        for action in plan.finish:
            key = getattr(action, "merge_key", None)
            if key is not None:
                have = merged.get(key)
                merged[key] = action if have is None else have.merged_with(action)
                continue
            if isinstance(action, Run):
                key = ("run", tuple(action.argv), action.stdin)
            else:
                key = ("other", tuple(action.describe()))
            merged[key] = action
    return list(merged.values())
