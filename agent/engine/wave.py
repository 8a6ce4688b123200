"""One wave of a batch: a step (or a revert) started for several accounts side by side over
the server's one connection, then completed; an account whose part fails is rolled back
(or marked stuck) on its own and the others go on (agent/engine/batch_stage.py drives the
waves). The plans of a step that allows it (`together`, agent/steps/together.py) are
carried out as one, so that the whole wave costs the round trips of one account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.engine import records
from agent.engine.runner import RunLog, Runner
from agent.engine.step_run import RevertRun, StepRun
from agent.errors import AgentError, AuthFailed, HostKeyRefused, Unreachable
from agent.journal.journal import Case
from agent.steps.together import carry_out_many

if TYPE_CHECKING:
    from agent.engine.batch import Batch

LOST = (Unreachable, AuthFailed, HostKeyRefused)


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


class Wave:
    """One step (or one revert) started for several members, then completed."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.runs: dict[str, Any] = {}
        self._guard = threading.Lock()

    def start(self, members: list[Member], make: Callable[[Member], Any], label: str) -> None:
        """Start a run for each member: each is planned (a step's intent journaled), their
        server records get the steps' intents in one round trip, then the plans are carried
        out (as one where the step allows it). What the batch held for the plans is
        dropped once they are made."""
        def one(m: Member) -> None:
            run = make(m)
            with self._guard:
                self.runs[m.name] = run
            if not run.prepare(self.batch.dry_run, m.log):
                with self._guard:
                    self.runs.pop(m.name)

        each(self.batch, members, one, self._run_of, label)
        self.batch.shared.preload({})
        live = self._live(members)
        self._record([m for m in live if isinstance(self.runs[m.name], StepRun)
                      and self.runs[m.name].touches])
        live = self._live(live)
        merged = [m for m in live if _mergeable(self.runs[m.name])]
        if len(merged) > 1:
            self._together(merged, label)
        else:
            merged = []
        each(self.batch, [m for m in live if m not in merged], lambda m: self.runs[m.name]
             .apply(alone=False), self._run_of, label)

    def _live(self, members: list[Member]) -> list[Member]:
        return [m for m in members if m.name in self.runs and not m.failed and not m.lost]

    def _together(self, members: list[Member], label: str) -> None:
        """Carry out the members' plans as one (agent/steps/together.py); each member's
        outcome is its own: done (completed now if it waits for no finish) or failed."""
        runs = [self.runs[m.name] for m in members]
        outcomes = carry_out_many(self.batch.conn, [r.plan.actions for r in runs],
                                  self.batch.workers)
        failed: dict[str, AgentError] = {}
        for m, run, (lines, exc) in zip(members, runs, outcomes, strict=True):
            if isinstance(run, StepRun):
                run.carried.extend(lines)
            if exc is None:
                run.carried_out()
            else:
                failed[m.name] = exc

        def settle(m: Member) -> None:
            if m.name in failed:
                raise failed[m.name]
            self.runs[m.name].after_carry()

        each(self.batch, members, settle, self._run_of, label)

    def _record(self, members: list[Member]) -> None:
        """Write the intents to the members' server records, all in one round trip."""
        if not members:
            return
        try:
            records.sync_many(members[0].runner.records.conn,
                              [m.runner.records for m in members])
        except LOST as exc:
            for m in members:
                lost(self.batch, m, exc)
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
        each(self.batch, [m for m in members if not m.failed and not m.lost],
             lambda m: self.runs[m.name].complete(), self._run_of, label)


def _mergeable(run: Any) -> bool:
    """True when the run's plan may be carried out merged with other accounts' plans."""
    plan = run.plan
    return (bool(getattr(run.step, "together", False)) and plan is not None
            and plan.lock is None and bool(plan.actions))


def each(batch: Batch, members: list[Member], work: Callable[[Member], None],
         run_of: Callable[[Member], Any], label: str) -> None:
    """Run `work` for each member side by side; a step failure rolls that member back."""

    def one(m: Member) -> None:
        try:
            work(m)
        except LOST as exc:
            lost(batch, m, exc)
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


def lost(batch: Batch, m: Member, exc: AgentError) -> None:
    """No rollback over a lost link: the journal keeps the intent for the next call."""
    m.lost = True
    m.log.errors.append({"step": None, "message": str(exc)})
    m.log.unreachable = m.log.unreachable or isinstance(exc, Unreachable)
    m.log.refused = m.log.refused or not isinstance(exc, Unreachable)
