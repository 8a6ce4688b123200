"""Changes in effect that something undid behind the agent's back, found and put back.

A step that can tell whether its change is still in effect has `repair_plan(ctx, undo)`:
None while it is, else the plan that puts it back from its journaled undo data (the same
change, never a new one). Server steps have it (a firewall table flushed), and so do
account steps whose lock another tool can lift: on cPanel an admin's `unsuspendacct`
strips every leading `!` of the account's hash (scripts/unsuspendacct:242-243), which is
panel_lock's and ftp_lock's lock, and takes the account out of the SSH deny group.

`drifted` only reads (status); `repair` carries the plan out, verifies and audits it
(tick: `tick_accounts` for accounts with a case of their own, the tree's own pass for a
whole server's steps). A change that cannot be put back is the target's error, so `tick`
exits non-zero. The accounts of a tree case (a reseller's children) are not checked by
`tick` yet: one connection and a few reads per account per tick is too dear for a tree of
88 at every run.
"""

from __future__ import annotations

from typing import Any

from agent import drivers
from agent.errors import AgentError, AuthFailed, Busy, HostKeyRefused, Unreachable
from agent.steps.actions import carry_out


def _repairable(engine: Any, server: Any, target: tuple) -> list[Any]:
    return [c for c in engine.journal.active_changes(*target) if c.state == "done"
            and hasattr(drivers.step(server.panel, c.step), "repair_plan")]


def has_repairable(engine: Any, server: Any, target: tuple) -> bool:
    """True when a change in effect on `target` can be checked (read from the journal only)."""
    return bool(_repairable(engine, server, target))


def repair(engine: Any, own: Any, hold: str | None, log: Any, dry_run: bool) -> list[str]:
    """Ensure every checkable change in effect on `own`'s target still is: one found undone
    is carried out again from its undo data, verified and audited. Returns the steps put
    back; one that cannot be is an error in `log`."""
    repaired = []
    for change in _repairable(engine, own.server, own.target):
        step = drivers.step(own.server.panel, change.step)
        ctx = own.context(change.case_id, hold=hold)
        try:
            plan = step.repair_plan(ctx, change.undo)
            if plan is None:
                continue
            if dry_run:
                log.plans.append({"step": change.step, "repair": True,
                                  "actions": plan.describe()})
                continue
            carry_out(ctx.conn, plan.actions)
            step.verify(ctx, change.undo, True)
        except AgentError as exc:
            if isinstance(exc, Unreachable):
                raise
            log.errors.append({"step": change.step,
                               "message": f"found undone and not put back: {exc}"})
            engine.audit("step.drift", server=own.target[0], kind=own.target[1],
                         name=own.target[2], case_id=change.case_id, step=change.step,
                         outcome="failed", error=str(exc))
            continue
        repaired.append(change.step)
        engine.audit("step.drift", server=own.target[0], kind=own.target[1],
                     name=own.target[2], case_id=change.case_id, step=change.step,
                     outcome="repaired", note=plan.note)
    return repaired


def drifted(engine: Any, server: Any, target: tuple) -> list[str]:
    """Return a warning for each checkable change in effect on `target` that the server no
    longer shows as planned (read-only: `tick` puts it back); one when it cannot be read."""
    from agent.engine.runner import Runner

    changes = _repairable(engine, server, target)
    if not changes:
        return []
    own = Runner(engine, server, engine._conn(server), target)
    found = []
    for change in changes:
        step = drivers.step(server.panel, change.step)
        try:
            plan = step.repair_plan(own.context(change.case_id), change.undo)
        except AgentError as exc:
            found.append(f"{change.step}: cannot tell whether it is still in effect ({exc})")
            continue
        if plan is not None:
            found.append(f"{change.step}: not in effect as planned ({plan.note}); the next "
                         "tick puts it back")
    return found


def tick_accounts(engine: Any, skip: set[str], dry_run: bool) -> list[Any]:
    """`tick`'s pass over accounts with an open case of their own (not in `skip`, the ones
    this tick already ran): each change that can be checked and is found undone is put
    back (`repair`). Returns an Outcome for each account where something was found."""
    from agent.engine.runner import RunLog, Runner

    outcomes = []
    seen: set[tuple] = set()
    for case in engine.journal.open_account_cases():
        target = (case.server, case.kind, case.name)
        if case.id in skip or target in seen:
            continue
        seen.add(target)
        try:
            server = engine.server(case.server)
        except AgentError:
            continue  # a server no longer configured: its due stages say so
        if not _repairable(engine, server, target):
            continue
        log = RunLog()
        try:
            with engine._lock(target, wait=0):
                runner = Runner(engine, server, engine._conn(server), target)
                repaired = repair(engine, runner, case.hold, log, dry_run)
        except Busy:
            continue  # a verb has this account now; the next tick looks again
        except Unreachable as exc:
            outcomes.append(engine._unreachable(target, log, exc))
            continue
        except (HostKeyRefused, AuthFailed) as exc:
            outcomes.append(engine._refused(target, log, exc))
            continue
        if repaired or log.errors or log.plans:
            said = f"put back: {', '.join(repaired)}" if repaired else ""
            outcomes.append(engine.report(target, log, said))
    return outcomes
