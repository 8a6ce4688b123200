"""The verbs on one account: suspend and unsuspend, each under the account's lock.

Each checks its input (the target, the hold, the playbook) before any lock or connection,
then works under the target's lock: what an earlier run left is taken over and finished
first (agent/engine/recovery.py), the stages due are applied by Engine.advance (shared with
tick), and the journal and the server's record are brought in step at the end. A
reseller's tree has its own verbs (agent/engine/tree_verbs.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent import ids
from agent.engine import billing, recovery
from agent.engine.billing import HoldTerms
from agent.engine.outcome import hold_label
from agent.engine.runner import RunLog, Runner
from agent.errors import BadInput, Unreachable
from agent.journal.journal import Case

if TYPE_CHECKING:
    from agent.config.playbooks import Playbook
    from agent.config.servers import Server
    from agent.engine.engine import Engine
    from agent.engine.outcome import Outcome


def suspend(engine: Engine, server_name: str, account: str, playbook: str | None, hold: str,
            reason: str | None, dry_run: bool, terms: HoldTerms | None = None) -> Outcome:
    """Ensure the account is under `hold` with the due stages of the playbook applied."""
    server, target = engine.account_target(server_name, account)
    if hold not in ids.HOLDS:
        raise BadInput(f"unknown hold {hold!r} (use {', '.join(ids.HOLDS)})")
    reason = ids.reason(reason)
    pb = engine.playbook(server, playbook)
    with engine._lock(target):
        log = RunLog()
        try:
            message = _suspend_locked(engine, server, target, pb, hold, reason, dry_run, log,
                                      terms)
        except Unreachable as exc:
            return engine._unreachable(target, log, exc)
        return engine.report(target, log, message)


def _suspend_locked(engine: Engine, server: Server, target: tuple, pb: Playbook, hold: str,
                    reason: str | None, dry_run: bool, log: RunLog,
                    terms: HoldTerms | None) -> str:
    runner = Runner(engine, server, engine._conn(server), target)
    taken = recovery.begin(engine, runner, dry_run)
    try:
        message = _suspend_steps(engine, runner, server, target, pb, hold, reason, dry_run, log,
                                 terms)
    finally:
        recovery.settle(runner, log, dry_run)
    return "; ".join(m for m in (taken, message) if m)


def _suspend_steps(engine: Engine, runner: Runner, server: Server, target: tuple,
                   pb: Playbook, hold: str, reason: str | None, dry_run: bool,
                   log: RunLog, terms: HoldTerms | None) -> str:
    if not dry_run and not runner.recover(log):
        return "a change could not be undone earlier and still cannot; nothing new was applied"
    # The account's own case: one it carries as a child of a tree's case is not it.
    case = next((c for c in engine.journal.open_cases(*target)
                 if c.hold == hold and c.parent is None), None)
    message = ""
    if case is None:
        engine.ensure_suspendable(server, target[2])
        if dry_run:
            case = Case("dry-run", *target, hold, pb.name, reason, engine.caller,
                        engine.now(), -1, engine.now(), "open")
        else:
            case = engine.journal.new_case(*target, hold, pb.name, reason, engine.caller,
                                           engine.now())
            engine.audit("case.opened", server=target[0], kind=target[1],
                         name=target[2], case_id=case.id, hold=hold, playbook=pb.name,
                         reason=reason)
    else:
        if case.playbook != pb.name:
            message = (f"case {case.id} under hold {hold} follows playbook "
                       f"{case.playbook!r}; it was kept")
        pb = engine.book(case.playbook)
    case = billing.place(engine, case, terms, dry_run)  # before any stage: the grace date
    engine.advance(runner, case, pb, log, dry_run)
    return message


def unsuspend(engine: Engine, server_name: str, account: str, hold: str,
              dry_run: bool) -> Outcome:
    """Lift `hold`; when no hold is left, undo every change in reverse order."""
    server, target = engine.account_target(server_name, account)
    if hold not in ids.HOLDS:
        raise BadInput(f"unknown hold {hold!r} (use {', '.join(ids.HOLDS)})")
    with engine._lock(target):
        log = RunLog()
        try:
            message = _unsuspend_locked(engine, server, target, hold, dry_run, log)
        except Unreachable as exc:
            return engine._unreachable(target, log, exc)
        return engine.report(target, log, message)


def _unsuspend_locked(engine: Engine, server: Server, target: tuple, hold: str,
                      dry_run: bool, log: RunLog) -> str:
    runner = Runner(engine, server, engine._conn(server), target)
    if not dry_run:
        runner.prefetch_first()  # the record and the landing page's files in one read
    taken = recovery.begin(engine, runner, dry_run)
    try:
        message = _lift(engine, runner, target, hold, dry_run, log)
    finally:
        recovery.settle(runner, log, dry_run)
    return "; ".join(m for m in (taken, message) if m)


def _lift(engine: Engine, runner: Runner, target: tuple, hold: str, dry_run: bool,
          log: RunLog) -> str:
    if not dry_run:
        runner.recover(log, retry_stuck=False)  # revert_all below retries those
    cases = engine.journal.open_cases(*target)
    # Only the account's own cases: a tree's case over it is lifted with the tree.
    lifted = [c for c in cases if c.hold == hold and c.parent is None]
    remaining = sorted({hold_label(engine.journal, c) for c in cases if c not in lifted})
    if remaining:
        message = (f"hold {hold} lifted; still held by {', '.join(remaining)}, "
                   "services stay suspended" if lifted else
                   f"no {hold} hold; still held by {', '.join(remaining)}")
    else:
        runner.revert_all(log, dry_run)
        message = "" if lifted or log.reverted else "nothing to lift"
    if not dry_run:
        for case in lifted:
            engine.journal.close_case(case.id, "lifted", engine.caller, engine.now())
            engine.audit("case.lifted", server=target[0], kind=target[1],
                         name=target[2], case_id=case.id, hold=hold)
    return message
