"""The reply about a tree target: the reseller's case, and one entry per child account.

The contract's fields keep their meaning: `state` is the tree's (partial when any child
needs a human), `applied` sums the children's changes per step, `errors` names the
child (`account`) of every error, and `children` lists `{account, role, state, stage,
holds, errors}` for each account of the tree (and `stuck` for a change whose revert failed,
also of an account an earlier lift closed with its revert unfinished).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.engine import outcome
from agent.engine.outcome import Outcome, iso, target_dict
from agent.engine.runner import RunLog
from agent.errors import AgentError

if TYPE_CHECKING:
    from agent.engine.engine import Engine


def build(engine: Engine, target: tuple, logs: dict[str, RunLog], message: str,
          messages: dict[str, str] | None = None, own: RunLog | None = None) -> Outcome:
    """Return the current state of the tree `target`, with what this call did per child."""
    journal = engine.journal
    rcases = journal.open_cases(*target)
    kids = {c.name: c for rc in rcases for c in journal.children(rc.id)}
    # Accounts an earlier lift left unfinished are the tree's until their reverts are done.
    kids.update({c.name: c for c in journal.left_over(*target) if c.name not in kids})
    names = sorted(set(kids) | set(logs))
    own = own or RunLog()
    children, errors, plans, applied = [], list(own.errors), [], {}
    partial, unreachable, refused = own.partial, own.unreachable, own.refused
    # The tree target's own changes (a whole server's firewall_block): listed with
    # `scope: server` and no accounts; a stuck one makes the tree partial.
    mine = outcome.build(journal, engine.book, target, own, "")
    for a in mine.applied:
        applied[(a["step"], a["stage"])] = {**a, "accounts": 0, "scope": "server"}
    plans += [{**p, "scope": "server"} for p in own.plans]
    partial = partial or mine.partial
    for name in names:
        child_target = (target[0], "account", name)
        o = outcome.build(journal, engine.book, child_target, logs.get(name, RunLog()), "")
        case = kids.get(name)
        entry = {"account": name, "role": case.role if case else None, "state": o.state,
                 "stage": case.stage if case else None, "holds": o.holds,
                 "errors": o.errors}
        if note := (messages or {}).get(name):
            entry["message"] = note
        if o.reverted:
            entry["reverted"] = o.reverted
        if stuck := [{"step": c["stuck"], "error": c["error"]} for c in o.cases
                     if "stuck" in c]:
            entry["stuck"] = stuck  # still applied: `resolve` or the next unsuspend retries
        children.append(entry)
        errors += [{**e, "account": name} for e in o.errors]
        plans += [{**p, "account": name} for p in o.plans]
        for a in o.applied:
            agg = applied.setdefault((a["step"], a["stage"]), {
                "step": a["step"], "stage": a["stage"], "at": a["at"], "changed": False,
                "accounts": 0})
            agg["accounts"] += 1
            agg["changed"] = agg["changed"] or a["changed"]
            agg["at"] = min(agg["at"], a["at"])
        partial = partial or o.partial
        unreachable = unreachable or o.unreachable
        refused = refused or o.refused
    return Outcome(target_dict(target), _state(rcases, children, partial),
                   sorted({c.hold for c in rcases}),
                   max((c.stage for c in rcases), default=None) if rcases else None,
                   sorted(applied.values(), key=lambda a: (a["stage"], a["step"])),
                   _pending(engine, rcases), errors, message, plans, [], False, partial,
                   [outcome._case_dict(c) for c in rcases], unreachable, refused=refused,
                   children=children, invoices=outcome.invoices_of(rcases))


def _state(rcases: list, children: list[dict], partial: bool) -> str:
    if partial:
        return "partial"
    if not rcases:
        return "active"  # a child still suspended by a case of its own says so itself
    if "suspended" in {c["state"] for c in children}:
        return "suspended"
    return "scheduled"


def _pending(engine: Engine, rcases: list) -> list[dict]:
    out = []
    for case in rcases:
        try:
            pb = engine.book(case.playbook)
        except AgentError:  # a playbook removed since: nothing to say pending
            continue
        for stage in pb.stages:
            if stage.index > case.stage:
                out += [{"step": s.name, "due": iso(case.started_at + stage.after),
                         "hold": case.hold} for s in stage.steps]
    return out
