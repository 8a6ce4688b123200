"""A stage applied to every account of a batch, step by step across the accounts, so that
what they all need once is done once: each step starts side by side for every account
still in the stage (plan, journal intent, apply), then the equal finish actions of all of
them run once (one configtest and one graceful reload for the whole tree's landing pages),
then each is completed side by side (journal done, probe). An account whose step fails is
rolled back on its own (its stage's earlier steps too) and leaves the stage; the others go
on. Reverts of the websites are done the same way (agent/engine/batch_lift.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent import drivers
from agent.config.playbooks import Playbook, Stage
from agent.engine import recovery
from agent.engine.runner import RunLog, Runner
from agent.engine.step_run import RevertRun, StepRun, finish
from agent.engine.wave import LOST, Member, Wave, lost
from agent.errors import AgentError, StepError, Unreachable
from agent.steps.together import merge_finish

if TYPE_CHECKING:
    from agent.engine.batch import Batch


def advance(batch: Batch, members: list[Member], pb: Playbook) -> None:
    """Apply every due stage of `pb` to the members, in order, each member stopping at its
    first failed stage (rolled back and scheduled again, as a single account's would be)."""
    engine = batch.engine
    now = engine.now()
    live = list(members)
    for stage in pb.stages:
        if not live:
            return
        if live[0].case.started_at + stage.after > now:
            continue
        apply_stage(batch, live, stage)
        for m in list(live):
            if m.lost:
                live.remove(m)
            elif m.failed:
                live.remove(m)
                if not batch.dry_run:
                    engine.stage_failed(m.case, stage, m.log)
            elif not batch.dry_run and stage.index > m.case.stage:
                m.case = engine.stage_reached(m.case, stage, pb)


def apply_stage(batch: Batch, members: list[Member], stage: Stage) -> None:
    """Ensure every step of `stage` is in effect on every member (see the module text)."""
    for m in members:
        m.done_here, m.failed = [], False
    active = {m.name: {c.step for c in m.runner.journal.active_changes(*m.runner.target)}
              for m in members}
    for spec in stage.steps:
        wave = Wave(batch)
        live = [m for m in members if not m.failed and not m.lost
                and spec.name not in active[m.name]]
        _before_plans(batch, live, spec)
        wave.start(live, lambda m, spec=spec: StepRun(m.runner, m.case, spec, stage.index),
                   f"{spec.name}: applying")
        waiting = wave.waiting(live)
        if waiting:
            _finish_once(batch, waiting, [wave.runs[m.name] for m in waiting])
            _prefetch(batch, [(wave.runs[m.name].step, "verify_reads", wave.runs[m.name].undo)
                              for m in waiting if not m.failed and not m.lost])
            wave.complete(waiting, f"{spec.name}: checking")
            batch.shared.preload({})
        for m in live:
            run = wave.runs.get(m.name)
            if run is not None and run.done and not m.failed and not m.lost:
                m.runner.step_applied(run, m.done_here, m.log)


def _finish_once(batch: Batch, members: list[Member], runs: list[StepRun]) -> None:
    """Carry out the merged finish actions of `runs` once; a failure fails each member."""
    try:
        with members[0].runner.shared(_lock_of([r.plan for r in runs])):
            finish(batch.conn, merge_finish([r.plan for r in runs]), [r.carried for r in runs],
                   batch.shared.take_files())
    except LOST as exc:
        for m in members:
            lost(batch, m, exc)
    except AgentError as exc:
        for m, run in zip(members, runs, strict=True):
            m.failed = True
            # Each account's apply had changed its files: a fresh error without the
            # finish's own `completed` count, so that each one is put back.
            m.runner.step_failed(run, StepError(f"{exc} (shared by {len(members)} "
                                                "account(s))"), m.done_here, m.log)


def _prefetch(batch: Batch, wants: list[tuple[Any, str, dict | None]],
              held: dict | None = None) -> None:
    """Read, in one round trip, the files each (step, "revert_reads"|"verify_reads", undo)
    says its next phase reads, and hold them for it (Memo.preload; with fewer than two,
    nothing is read here and any held before are dropped). A failed read holds nothing:
    each account then reads its own and meets the error on its own. `held`: files read
    earlier under the accounts' locks with nothing changed since; when they cover every
    path, they are used and nothing is read."""
    paths: list[str] = []
    for step, which, undo in wants:
        reads = getattr(step, which, None)
        if reads is not None and undo is not None:
            paths += reads(undo)
    found: dict = {}
    if held and paths and all(p in held for p in paths):
        found = {p: held[p] for p in paths}
    elif len(wants) > 1 and paths and not batch.dry_run:
        try:
            found = dict(batch.conn.read_many(list(dict.fromkeys(paths))))
        except AgentError:
            found = {}
    batch.shared.preload(found)


def _before_plans(batch: Batch, members: list[Member], spec: Any) -> None:
    """Let the step read at once, for all members, what each of their plans reads: its
    `before_plans` (the reused backups' checks) and the files its `plan_reads` names
    (held for the plans, dropped once they are made: Wave.start). What could not be read
    here, each plan reads on its own."""
    step = _step(members[0].runner.server.panel, spec.name) if members else None
    if len(members) < 2 or step is None:
        return
    ctxs = [m.runner.context(m.case.id, spec.params, m.case.hold) for m in members]
    hook = getattr(step, "before_plans", None)
    if hook is not None:
        try:
            hook(ctxs, batch.workers)
        except AgentError:
            pass  # each plan meets it again and fails (or reads) on its own
    reads = getattr(step, "plan_reads", None)
    if reads is not None and not batch.dry_run:
        paths = [p for ctx in ctxs for p in reads(ctx)]
        try:
            batch.shared.preload(dict(batch.conn.read_many(list(dict.fromkeys(paths)))))
        except AgentError:
            batch.shared.preload({})


def _step(panel: str, name: str) -> Any:
    """Return the driver's step, or None where there is none (each revert then says why)."""
    try:
        return drivers.step(panel, name)
    except (AgentError, KeyError, LookupError):
        return None


def _lock_of(plans: list) -> str | None:
    """Return the one server-wide lock the shared finish needs (plans agree on it)."""
    locks = {p.finish_lock for p in plans} - {None}
    if len(locks) > 1:
        raise StepError(f"plans of one step ask for different finish locks: {sorted(locks)}")
    return next(iter(locks), None)


def settle(batch: Batch, items: list[tuple[Runner, RunLog, str]]) -> None:
    """Bring the children's server records in step with the journal at the end of the
    call, all in one round trip (or two); a lost link is each child's error."""
    try:
        recovery.settle_many(batch.conn, [(r, log) for r, log, _n in items], batch.dry_run)
    except LOST as exc:
        for _r, _log, name in items:
            batch._note(name, exc, unreachable=isinstance(exc, Unreachable),
                        refused=not isinstance(exc, Unreachable))


def revert_together(batch: Batch, items: list[tuple[Member, list]]) -> None:
    """Revert each member's changes (newest first), sharing the finish actions: all
    members' first changes start, one finish, all complete; then the next ones."""
    depth = max((len(changes) for _m, changes in items), default=0)
    # What was read with the children's records is for the first round of the first wave.
    early, batch.first_reads = batch.first_reads, {}
    for i in range(depth):
        # A revert that failed (stuck) does not stop the member's other reverts, as on its
        # own; only a lost link does.
        now = {m.name: changes[i] for m, changes in items if i < len(changes) and not m.lost}
        members = [m for m, _c in items if m.name in now]
        for m in members:
            m.failed = False
        wave = Wave(batch)
        if not batch.dry_run and now:
            # Every revert of this round marked `reverting` in one transaction.
            batch.engine.journal.mark_many([c.seq for c in now.values()], "reverting",
                                           batch.engine.now())
        _prefetch(batch, [(_step(c.driver or m.runner.server.panel, c.step), "revert_reads",
                           c.undo) for m in members for c in [now[m.name]]],
                  early if i == 0 else None)
        wave.start(members, lambda m, now=now: RevertRun(
            m.runner, now[m.name].seq, now[m.name].step, now[m.name].case_id,
            now[m.name].undo, now[m.name].driver, premarked=True), "restoring")
        waiting = wave.waiting(members)
        if waiting:
            plans = [wave.runs[m.name].plan for m in waiting]
            try:
                with waiting[0].runner.shared(_lock_of(plans)):
                    finish(batch.conn, merge_finish(plans), [], batch.shared.take_files())
            except LOST as exc:
                for m in waiting:
                    lost(batch, m, exc)
            except AgentError as exc:
                for m in waiting:
                    m.failed = True
                    m.runner.revert_failed(wave.runs[m.name], exc, m.log)
            _prefetch(batch, [(wave.runs[m.name].step, "verify_reads", wave.runs[m.name].undo)
                              for m in waiting if not m.failed and not m.lost])
            wave.complete(waiting, "checking")
            batch.shared.preload({})
        for m in members:
            run = wave.runs.get(m.name)
            if run is not None and run.done and not m.failed:
                m.runner.reverted(run, m.log)
