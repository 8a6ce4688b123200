"""The verbs on a tree target: suspend, unsuspend, a tick's pass, plan and history.

A reseller's case is (server, "reseller", NAME), a whole server's (server, "server",
SERVER), with one child case per account of the tree (agent/engine/batch.py). Every verb
validates its input and builds the tree (refusing bad config entries, protected or missing
accounts) before any case opens or anything on the server changes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from agent import drivers, ids
from agent.engine import batch, batch_lift, billing, recovery, schedule, server_steps
from agent.engine.ladder import ladder, server_plan
from agent.engine.outcome import Outcome
from agent.engine.runner import Runner
from agent.engine.schedule import retry_delay
from agent.errors import AgentError, AuthFailed, BadInput, Busy, HostKeyRefused, Unreachable
from agent.journal.journal import Case

if TYPE_CHECKING:
    from agent.config.servers import Server
    from agent.engine.engine import Engine


def target(engine: Engine, server_name: str, name: str, kind: str = "reseller"
           ) -> tuple[Server, tuple]:
    """Return the server and the tree target (a reseller, or the whole server: `name` is
    then the server's); BadInput for a bad name."""
    server = engine.server(server_name)
    if kind == "server":
        return server, (server.name, "server", server.name)
    ids.account(name, server.panel)
    return server, (server.name, "reseller", name)


def suspend(engine: Engine, server_name: str, name: str, playbook: str | None, hold: str,
            reason: str | None, dry_run: bool, kind: str = "reseller",
            terms: billing.HoldTerms | None = None) -> Outcome:
    """Ensure the tree is under `hold`: logins locked, due stages applied."""
    server, tgt = target(engine, server_name, name, kind)
    if hold not in ids.HOLDS:
        raise BadInput(f"unknown hold {hold!r} (use {', '.join(ids.HOLDS)})")
    reason = ids.reason(reason)
    pb = engine.playbook(server, playbook, kind)
    with engine._lock(tgt):
        work = batch.Batch(engine, server, dry_run, tgt)
        try:
            tree = batch.tree_of(engine, server, tgt)
            runner, taken = _begin(engine, server, tgt, dry_run)
            message = ""
            rcase = next((c for c in engine.journal.open_cases(*tgt) if c.hold == hold), None)
            if rcase is None:
                rcase = _open(engine, tgt, hold, pb.name, reason, dry_run)
            else:
                if rcase.playbook != pb.name:
                    message = (f"case {rcase.id} under hold {hold} follows playbook "
                               f"{rcase.playbook!r}; it was kept")
                pb = engine.book(rcase.playbook)
            if not dry_run:
                runner.recover(work.own)  # a server step a killed run left under way
            rcase = billing.place(engine, rcase, terms, dry_run)
            batch.run_tree(work, rcase, schedule.within_grace(pb, rcase, engine.now()), tree,
                           own=runner)
            if not dry_run:
                _progress(engine, work, rcase, tree)
            recovery.settle(runner, work.own, dry_run)
        except Unreachable as exc:
            return _lost(engine, tgt, work, exc)
        return batch.report(engine, tgt, work, "; ".join(m for m in (taken, message) if m))


def _open(engine: Engine, tgt: tuple, hold: str, playbook: str, reason: str | None,
          dry_run: bool) -> Case:
    if dry_run:
        now = engine.now()
        return Case("dry-run", *tgt, hold, playbook, reason, engine.caller, now, -1, now, "open")
    case = engine.journal.new_case(*tgt, hold, playbook, reason, engine.caller, engine.now())
    engine.audit("case.opened", server=tgt[0], kind=tgt[1], name=tgt[2], case_id=case.id,
                 hold=hold, playbook=playbook, reason=reason)
    return case


def _begin(engine: Engine, server: Server, tgt: tuple, dry_run: bool,
           ahead: tuple[batch.Batch, list[Case]] | None = None) -> tuple[Runner, str]:
    """Take over the reseller's own record (its case ids) when the journal lost them.

    sshd's MaxSessions (how many workers the batch gets) is asked in the same round trip
    time, on a second channel: the batch needs it right after. With `ahead` (an unsuspend:
    the batch and the children its journal knows), those children are locked and their
    records read in the same round trip as the reseller's own.
    """
    conn = engine._conn(server)
    runner = Runner(engine, server, conn, tgt)
    with ThreadPoolExecutor(max_workers=1) as pool:
        sized = pool.submit(conn.channels, server.linux.sshd)
        if ahead is not None:
            work, children = ahead
            runner.records.prefetched = batch_lift.lock_ahead(
                work, children, [runner.records.path, f"{server.records_dir}/.created"])
        taken = recovery.begin(engine, runner, dry_run)
        sized.result()
    return runner, taken


def _progress(engine: Engine, work: batch.Batch, rcase: Case, tree: Any) -> None:
    """Record the stage the tree reached and when it is due next: the next stage, or,
    when some account is behind (its stage failed and was rolled back), a retry with a
    growing pause. A tree whose every account failed its first stage never started: its
    logins are unlocked again and the case closes as failed."""
    pb = engine.book(rcase.playbook)
    now = engine.now()
    due = [s for s in schedule.within_grace(pb, rcase, now).stages
           if rcase.started_at + s.after <= now]
    reached = due[-1].index if due else -1
    kids = {c.name: c for c in engine.journal.children(rcase.id)}
    behind = [n for n in tree.accounts if n not in kids or kids[n].stage < reached]
    # A server step held back or failed (agent/engine/server_steps.py) is retried too.
    own_failed = bool(work.own.errors) and not work.own.unreachable
    later = [s for s in pb.stages if s.index > reached]
    next_due = schedule.next_due(rcase.started_at + later[0].after if later else None, rcase)
    lost = any(log.unreachable or log.refused for log in work.logs.values())
    if tree.accounts and len(behind) == len(tree.accounts) and rcase.stage < 0 and not lost:
        batch.lift(work, [rcase], "failed")
        engine.journal.close_case(rcase.id, "failed", engine.caller, engine.now())
        return
    if behind or own_failed:
        failures = rcase.failures + 1
        retry = now + retry_delay(failures)
        next_due = min(next_due, retry) if next_due is not None else retry
        errors = "; ".join([f"{n}: {e['message']}" for n in behind
                            for e in work.log(n).errors]
                           + [e["message"] for e in work.own.errors])[:500]
        engine.journal.set_progress(rcase.id, reached, next_due, failures,
                                    errors or f"behind: {', '.join(behind)}")
        engine.audit("stage.retry_later", server=rcase.server, kind=rcase.kind,
                     name=rcase.name, case_id=rcase.id, stage=reached, failures=failures,
                     behind=behind, outcome="failed")
    else:
        engine.journal.set_progress(rcase.id, reached, next_due, 0, None)
        if reached > rcase.stage:
            engine.audit("stage.applied", server=rcase.server, kind=rcase.kind,
                         name=rcase.name, case_id=rcase.id, hold=rcase.hold, stage=reached,
                         accounts=len(tree.accounts), outcome="done")


def unsuspend(engine: Engine, server_name: str, name: str, hold: str,
              dry_run: bool, kind: str = "reseller") -> Outcome:
    """Lift `hold` from the tree: each account comes back once no case is left on it."""
    server, tgt = target(engine, server_name, name, kind)
    if hold not in ids.HOLDS:
        raise BadInput(f"unknown hold {hold!r} (use {', '.join(ids.HOLDS)})")
    with engine._lock(tgt):
        work = batch.Batch(engine, server, dry_run, tgt)
        try:
            # An account an earlier lift left unfinished (a revert that went stuck) is
            # retried with the others: that lift closed its case, not its changes.
            left = engine.journal.left_over(*tgt)
            known = [ch for c in engine.journal.open_cases(*tgt) if c.hold == hold
                     for ch in engine.journal.children(c.id)] + left
            runner, taken = _begin(engine, server, tgt, dry_run, (work, known))
            cases = engine.journal.open_cases(*tgt)
            lifted = [c for c in cases if c.hold == hold]
            remaining = sorted({c.hold for c in cases if c.hold != hold})
            if not remaining and lifted:
                server_steps.revert_web(work, runner)  # the server's page, with the sites
            batch.lift(work, lifted, "lifted", left)
            if not remaining:
                server_steps.revert_all(work, runner)  # the server's own, after every site
            if not dry_run:
                for case in lifted:
                    engine.journal.close_case(case.id, "lifted", engine.caller, engine.now())
                    engine.audit("case.lifted", server=tgt[0], kind=tgt[1], name=tgt[2],
                                 case_id=case.id, hold=hold)
            recovery.settle(runner, work.own, dry_run)
        except Unreachable as exc:
            return _lost(engine, tgt, work, exc)
        finally:
            batch_lift.release_ahead(work)
    retried = ", ".join(c.name for c in left)
    message = ("" if lifted else f"retried what an earlier lift left on {retried}" if left
               else "nothing to lift") + (
        f"; still held by {', '.join(remaining)}" if remaining else "")
    return batch.report(engine, tgt, work, "; ".join(m for m in (taken, message.strip("; "))
                                                     if m))


def tick_case(engine: Engine, rcase: Case, dry_run: bool) -> Outcome | None:
    """One tick's pass over an open tree case: the due stages for the whole tree when
    the case is due, else only for accounts new in the tree (None: nothing to do)."""
    server = engine.server(rcase.server)
    tgt = (rcase.server, rcase.kind, rcase.name)
    due = rcase.next_due_at is not None and rcase.next_due_at <= engine.now()
    with engine._lock(tgt, wait=0):
        fresh = engine.journal.case(rcase.id)
        if fresh.status != "open":
            return None
        work = batch.Batch(engine, server, dry_run, tgt)
        try:
            tree = batch.find_tree(engine, server, tgt)
            known = {c.name for c in engine.journal.children(rcase.id, status=None)}
            only = None if due else set(tree.children) - known
            begun, said = None, ""
            if engine.journal.active_changes(*tgt):
                # A server step in effect (a whole server's firewall table) is checked at
                # every tick, due or not: something may have undone it since.
                begun = _begin(engine, server, tgt, dry_run)
                repaired = server_steps.repair(work, begun[0], fresh)
                said = f"put back: {', '.join(repaired)}" if repaired else ""
            if only == set():
                if begun is None:
                    return None
                recovery.settle(begun[0], work.own, dry_run)
                if not (said or work.own.errors or work.own.plans):
                    return None
                return batch.report(engine, tgt, work, "; ".join(m for m in (begun[1], said)
                                                                 if m))
            batch.tree_of(engine, server, tgt, tree, only)
            runner, taken = begun or _begin(engine, server, tgt, dry_run)
            pb = engine.book(fresh.playbook)
            if not dry_run:
                runner.recover(work.own)
            batch.run_tree(work, fresh, schedule.within_grace(pb, fresh, engine.now()), tree, only,
                           own=runner)
            if not dry_run:
                _progress(engine, work, engine.journal.case(rcase.id), tree)
            recovery.settle(runner, work.own, dry_run)
        except Unreachable as exc:
            return _lost(engine, tgt, work, exc)
        return batch.report(engine, tgt, work, "; ".join(m for m in (taken, said) if m))


def _lost(engine: Engine, tgt: tuple, work: batch.Batch, exc: Unreachable) -> Outcome:
    work.own.unreachable = True
    work.own.errors.append({"step": None, "message": f"{exc}; nothing was rolled back over "
                            "the lost link: the next call verifies and finishes what was "
                            "under way"})
    engine.audit("server.unreachable", server=tgt[0], kind=tgt[1], name=tgt[2],
                 outcome="retry", error=str(exc))
    return batch.report(engine, tgt, work, "")


def history(engine: Engine, server_name: str, name: str, kind: str = "reseller"
            ) -> list[dict]:
    """Return the tree target's events and those of every child case it ever had."""
    _server, tgt = target(engine, server_name, name, kind)
    own = engine.journal.events(*tgt)
    kids = [c.id for rc in engine.journal.cases_of(*tgt)
            for c in engine.journal.children(rc.id, status=None)]
    return sorted(own + engine.journal.case_events(kids), key=lambda e: e["seq"])


def plan(engine: Engine, server_name: str, name: str, playbook: str | None,
         kind: str = "reseller") -> dict:
    """Return the tree and, per account, the whole ladder with exact actions (read-only)."""
    server, tgt = target(engine, server_name, name, kind)
    tree = batch.tree_of(engine, server, tgt)
    workers = engine._conn(server).channels(server.linux.sshd)

    def one(account: str) -> dict:
        return {"account": account, "stages": ladder(engine, server_name, account, playbook)}

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        accounts = list(pool.map(one, tree.accounts))
        logins = list(pool.map(lambda n: _login_plan(engine, server, n), tree.logins))
    found = {"tree": {tgt[1]: tgt[2], "resellers": list(tree.resellers),
                      "logins": list(tree.logins), "accounts": list(tree.accounts),
                      "notes": list(tree.notes)},
             "logins": logins, "children": accounts}
    if kind == "server":
        found["server_steps"] = server_plan(engine, server_name, playbook)
    return found


def _login_plan(engine: Engine, server: Server, account: str) -> dict:
    """Return the exact actions of the login lock of `account` (nothing is changed)."""
    step_name = drivers.login_step(server.panel)
    runner = Runner(engine, server, engine._conn(server), (server.name, "account", account))
    try:
        found = drivers.step(server.panel, step_name).plan(runner.context("plan"))
    except AgentError as exc:
        if isinstance(exc, BadInput | Busy | HostKeyRefused | AuthFailed):
            raise
        return {"account": account, "step": step_name, "actions": [f"cannot plan: {exc}"],
                "error": str(exc)}
    return {"account": account, "step": step_name, "actions": found.describe()}
