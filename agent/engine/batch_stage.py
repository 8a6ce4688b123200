"""A stage applied to every account of a batch, step by step across the accounts, so that
what they all need once is done once: each step starts side by side for every account
still in the stage (plan, journal intent, apply), then the equal finish actions of all of
them run once (one configtest and one graceful reload for the whole tree's landing pages),
then each is completed side by side (journal done, probe). An account whose step fails is
rolled back on its own (its stage's earlier steps too) and leaves the stage; the others go
on. Reverts of the websites are done the same way (agent/engine/batch_lift.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent import drivers
from agent.config.playbooks import Playbook, Stage
from agent.engine import records, recovery
from agent.engine.runner import RunLog, Runner
from agent.engine.step_run import RevertRun, StepRun, finish
from agent.errors import AgentError, AuthFailed, HostKeyRefused, StepError, Unreachable
from agent.journal.journal import Case
from agent.steps.actions import merge_finish

if TYPE_CHECKING:
    from agent.engine.batch import Batch

_LOST = (Unreachable, AuthFailed, HostKeyRefused)


@dataclass
class Member:
    """One account of the batch in the stage: its runner, case, log and progress."""

    runner: Runner
    case: Case
    log: RunLog
    done_here: list[StepRun] = field(default_factory=list)
    failed: bool = False
    lost: bool = False

    @property
    def name(self) -> str:
        return self.case.name


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
        wave = _Wave(batch)
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


class _Wave:
    """One step (or one revert) started for several members, then completed."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.runs: dict[str, Any] = {}
        self._guard = threading.Lock()

    def start(self, members: list[Member], make: Callable[[Member], Any], label: str) -> None:
        """Start a run for each member: a step is planned and journaled for all of them,
        their server records get the intents in one round trip, then each is applied; a
        revert is started at once."""
        def one(m: Member) -> None:
            run = make(m)
            with self._guard:
                self.runs[m.name] = run
            started = run.prepare(self.batch.dry_run, m.log) if isinstance(run, StepRun) \
                else run.start(self.batch.dry_run, m.log, alone=False)
            if not started:
                with self._guard:
                    self.runs.pop(m.name)

        _each(self.batch, members, one, self._run_of, label)
        steps = [m for m in members if isinstance(self.runs.get(m.name), StepRun)
                 and not m.failed and not m.lost]
        if not steps:
            return
        self._record([m for m in steps if self.runs[m.name].touches])
        _each(self.batch, [m for m in steps if not m.failed and not m.lost],
              lambda m: self.runs[m.name].apply(alone=False), self._run_of, label)

    def _record(self, members: list[Member]) -> None:
        """Write the intents to the members' server records, all in one round trip."""
        if not members:
            return
        try:
            records.sync_many(members[0].runner.records.conn,
                              [m.runner.records for m in members])
        except _LOST as exc:
            for m in members:
                _lost(self.batch, m, exc)
        except AgentError as exc:
            for m in members:
                m.failed = True
                m.runner.step_failed(self.runs[m.name], exc, m.done_here, m.log)

    def _run_of(self, m: Member) -> Any:
        return self.runs.get(m.name)

    def waiting(self, members: list[Member]) -> list[Member]:
        """Return the members whose run was started and waits for the shared finish."""
        return [m for m in members if m.name in self.runs and not m.failed and not m.lost
                and not self.runs[m.name].done]

    def complete(self, members: list[Member], label: str) -> None:
        _each(self.batch, [m for m in members if not m.failed and not m.lost],
              lambda m: self.runs[m.name].complete(), self._run_of, label)


def _finish_once(batch: Batch, members: list[Member], runs: list[StepRun]) -> None:
    """Carry out the merged finish actions of `runs` once; a failure fails each member."""
    try:
        with members[0].runner.shared(_lock_of([r.plan for r in runs])):
            finish(batch.conn, merge_finish([r.plan for r in runs]), [r.carried for r in runs],
                   batch.shared.take_files())
    except _LOST as exc:
        for m in members:
            _lost(batch, m, exc)
    except AgentError as exc:
        for m, run in zip(members, runs, strict=True):
            m.failed = True
            # Each account's apply had changed its files: a fresh error without the
            # finish's own `completed` count, so that each one is put back.
            m.runner.step_failed(run, StepError(f"{exc} (shared by {len(members)} "
                                                "account(s))"), m.done_here, m.log)


def _prefetch(batch: Batch, wants: list[tuple[Any, str, dict | None]]) -> None:
    """Read, in one round trip, the files each (step, "revert_reads"|"verify_reads", undo)
    says its next phase reads, and hold them for it (Memo.preload; with fewer than two,
    nothing is read here and any held before are dropped). A failed read holds nothing:
    each account then reads its own and meets the error on its own."""
    paths: list[str] = []
    for step, which, undo in wants:
        reads = getattr(step, which, None)
        if reads is not None and undo is not None:
            paths += reads(undo)
    found: dict = {}
    if len(wants) > 1 and paths and not batch.dry_run:
        try:
            found = dict(batch.conn.read_many(list(dict.fromkeys(paths))))
        except AgentError:
            found = {}
    batch.shared.preload(found)


def _before_plans(batch: Batch, members: list[Member], spec: Any) -> None:
    """Let the step read at once, for all members, what each of their plans reads (the
    reused backups' checks); what it could not read, each plan reads on its own."""
    if len(members) < 2:
        return
    hook = getattr(_step(members[0].runner.server.panel, spec.name), "before_plans", None)
    if hook is None:
        return
    try:
        hook([m.runner.context(m.case.id, spec.params, m.case.hold) for m in members],
             batch.workers)
    except AgentError:
        pass  # each plan meets it again and fails (or reads) on its own


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


def _each(batch: Batch, members: list[Member], work: Callable[[Member], None],
          run_of: Callable[[Member], Any], label: str) -> None:
    """Run `work` for each member side by side; a step failure rolls that member back."""

    def one(m: Member) -> None:
        try:
            work(m)
        except _LOST as exc:
            _lost(batch, m, exc)
        except AgentError as exc:
            m.failed = True
            run = run_of(m)
            if isinstance(run, StepRun):
                m.runner.step_failed(run, exc, m.done_here, m.log)
            elif isinstance(run, RevertRun):
                m.runner.revert_failed(run, exc, m.log)
            else:
                m.log.errors.append({"step": None, "message": str(exc)})

    batch.each(members, one, lambda m: m.name, label)


def _lost(batch: Batch, m: Member, exc: AgentError) -> None:
    """No rollback over a lost link: the journal keeps the intent for the next call."""
    m.lost = True
    m.log.errors.append({"step": None, "message": str(exc)})
    m.log.unreachable = m.log.unreachable or isinstance(exc, Unreachable)
    m.log.refused = m.log.refused or not isinstance(exc, Unreachable)


def settle(batch: Batch, items: list[tuple[Runner, RunLog, str]]) -> None:
    """Bring the children's server records in step with the journal at the end of the
    call, all in one round trip (or two); a lost link is each child's error."""
    try:
        recovery.settle_many(batch.conn, [(r, log) for r, log, _n in items], batch.dry_run)
    except _LOST as exc:
        for _r, _log, name in items:
            batch._note(name, exc, unreachable=isinstance(exc, Unreachable),
                        refused=not isinstance(exc, Unreachable))


def revert_together(batch: Batch, items: list[tuple[Member, list]]) -> None:
    """Revert each member's changes (newest first), sharing the finish actions: all
    members' first changes start, one finish, all complete; then the next ones."""
    depth = max((len(changes) for _m, changes in items), default=0)
    for i in range(depth):
        # A revert that failed (stuck) does not stop the member's other reverts, as on its
        # own; only a lost link does.
        now = {m.name: changes[i] for m, changes in items if i < len(changes) and not m.lost}
        members = [m for m, _c in items if m.name in now]
        for m in members:
            m.failed = False
        wave = _Wave(batch)
        if not batch.dry_run and now:
            # Every revert of this round marked `reverting` in one transaction.
            batch.engine.journal.mark_many([c.seq for c in now.values()], "reverting",
                                           batch.engine.now())
        _prefetch(batch, [(_step(c.driver or m.runner.server.panel, c.step), "revert_reads",
                           c.undo) for m in members for c in [now[m.name]]])
        wave.start(members, lambda m, now=now: RevertRun(
            m.runner, now[m.name].seq, now[m.name].step, now[m.name].case_id,
            now[m.name].undo, now[m.name].driver, premarked=True), "restoring")
        batch.shared.preload({})  # held for the revert plans only
        waiting = wave.waiting(members)
        if waiting:
            plans = [wave.runs[m.name].plan for m in waiting]
            try:
                with waiting[0].runner.shared(_lock_of(plans)):
                    finish(batch.conn, merge_finish(plans), [], batch.shared.take_files())
            except _LOST as exc:
                for m in waiting:
                    _lost(batch, m, exc)
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
