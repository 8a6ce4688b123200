"""One step of a stage (or one revert) carried out in phases, so that a batch of accounts can
share the phase they all have in common.

  start:    plan; journal intent; the server's record; `apply` (or, reverting: the revert
            plan; journal `reverting`; its actions)
  finish:   the plan's `finish` actions (Apache's configtest and graceful, say): carried out
            right away for one account, once for a whole batch (agent/engine/batch_stage.py)
  complete: journal `done` (or `reverted`) and the probe of the effect

A plan with a server-wide lock has no finish: start carries it out whole, probe included,
under the lock, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from agent import drivers
from agent.config.playbooks import StepSpec
from agent.journal.journal import Case
from agent.steps.actions import CARRIED, carry_out
from agent.steps.map_edit import KNOWN
from agent.steps.protocol import Context, Plan


@dataclass
class StepRun:
    """One step of one account being applied."""

    runner: Any  # agent.engine.runner.Runner
    case: Case
    spec: StepSpec
    stage: int
    step: Any = None
    ctx: Context | None = None
    plan: Plan | None = None
    seq: int | None = None
    undo: dict[str, Any] | None = None
    done: bool = False
    carried: list[str] = field(default_factory=list)
    # What its verify showed visitors (probes.compact), for the audit and the dossier.
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self, dry_run: bool, log: Any, alone: bool = True) -> bool:
        """Plan and apply; return True when a finish (or nothing more) is left to do here.

        `alone`: the finish actions go with the step's own (one round trip, no batch to
        share them with). In a dry run only the plan is recorded in `log` (False: nothing
        was started).
        """
        if not self.prepare(dry_run, log):
            return False
        if self.touches:
            self.runner.records.sync()
        self.apply(alone)
        return True

    def prepare(self, dry_run: bool, log: Any) -> bool:
        """Plan the step and journal its intent (a dry run: record the plan in `log` and
        return False). The server's record must get the intent next, before `apply`."""
        r = self.runner
        self.step = drivers.step(r.server.panel, self.spec.name)
        self.ctx = r.context(self.case.id, self.spec.params, self.case.hold)
        self.plan = self.step.plan(self.ctx)
        if dry_run:
            log.plans.append({"step": self.name, "stage": self.stage,
                              "actions": self.plan.describe()})
            return False
        self.seq = r.journal.intent(self.case, self.name, self.stage, self.plan.undo,
                                    self.ctx.now, r.server.panel)
        r.audit("step.intent", **r._where(self.case.id, self.name, hold=self.case.hold))
        return True

    @property
    def touches(self) -> bool:
        """True when the plan changes the server: its record must hold the intent first (a
        plan with nothing to carry out, a reused backup, gets it at the end of the call)."""
        return self.plan is not None and bool(self.plan.actions or self.plan.finish)

    def apply(self, alone: bool = True) -> None:
        """Carry out the prepared plan (with its finish, `alone`); complete it too when
        nothing is left for a shared finish."""
        r = self.runner
        assert self.plan is not None and self.step is not None
        # The server-wide lock covers the probe too: another account's change to the same
        # service (a second sshd reload, say) must not land between this change and the
        # check that it took effect.
        plan = self.plan
        if alone and plan.finish:
            plan = replace(plan, actions=plan.actions + plan.finish, finish=[],
                           lock=plan.lock or plan.finish_lock)
        with r.shared(plan.lock):
            token = CARRIED.set(self.carried)
            try:
                self.undo = self.step.apply(self.ctx, plan)
            finally:
                CARRIED.reset(token)
            if plan.lock is not None or not plan.finish:
                self.complete()

    def carried_out(self) -> None:
        """The plan's actions were carried out with other accounts' (a `together` step,
        whose apply is exactly that): its undo data is the plan's."""
        self.undo = self.plan.undo if self.plan is not None else None

    def after_carry(self) -> None:
        """Complete the change when no shared finish is left for it."""
        if self.plan is not None and not self.plan.finish:
            self.complete()

    def finish_alone(self) -> None:
        """Carry out this plan's finish actions for this account alone."""
        _finish_alone(self, [self.carried])

    def complete(self) -> None:
        """Mark the change done and probe it (a failing probe raises; the caller rolls back)."""
        if self.done:
            return
        r = self.runner
        r.journal.mark(self.seq, "done", r.engine.now(), undo=self.undo)
        self.done = True
        from agent.steps import probes  # the probe machinery loads only when a step runs

        shown: list = []
        token = probes.SEEN.set(shown)  # what visitors see now goes into the audit
        try:
            self.step.verify(self.ctx, self.undo, True)
        finally:
            probes.SEEN.reset(token)
        self.seen = probes.compact(shown)


def finish(conn: Any, actions: list, records: list[list[str]],
           known: dict | None = None) -> None:
    """Carry out finish actions (once for everyone in `records`, whose audit lists each get
    the lines carried out); `known`: files the batch read moments ago (see map_edit.KNOWN)."""
    seen: list[str] = []
    token = CARRIED.set(seen)
    files = KNOWN.set(known)
    try:
        carry_out(conn, actions)
    finally:
        KNOWN.reset(files)
        CARRIED.reset(token)
        for record in records:
            record.extend(seen)


def _finish_alone(run: StepRun | RevertRun, records: list[list[str]]) -> None:
    """Carry out a started run's finish actions under their lock, unless already done."""
    if run.done or run.plan is None or not run.plan.finish:
        return
    with run.runner.shared(run.plan.finish_lock):
        finish(run.runner.conn, run.plan.finish, records)


@dataclass
class RevertRun:
    """One change of one account being reverted."""

    runner: Any  # agent.engine.runner.Runner
    seq: int
    name: str
    case_id: str
    undo: dict[str, Any]
    driver: str | None = None
    step: Any = None
    ctx: Context | None = None
    plan: Plan | None = None
    started: bool = False
    done: bool = False
    # A batch marks all its reverts `reverting` in one transaction before starting them.
    premarked: bool = False

    def start(self, dry_run: bool, log: Any, alone: bool = True) -> bool:
        """Plan the revert and carry out its actions (with its finish, `alone`); True when
        it was started."""
        if not self.prepare(dry_run, log):
            return False
        self.apply(alone)
        return True

    def prepare(self, dry_run: bool, log: Any) -> bool:
        """Plan the revert and journal `reverting` (unless the batch did); in a dry run
        record the plan in `log` and return False."""
        r = self.runner
        self.step = drivers.step(self.driver or r.server.panel, self.name)
        self.ctx = r.context(self.case_id)
        self.plan = self.step.revert_plan(self.ctx, self.undo)
        if self.ctx.shared is not None and self.ctx.shared is getattr(r, "one_shot", None):
            self.ctx.shared.preload({})  # prefetched for this plan alone (Runner.prefetch_first)
        if dry_run:
            log.plans.append({"step": self.name, "revert": True,
                              "actions": self.plan.describe()})
            return False
        if not self.premarked:
            r.journal.mark(self.seq, "reverting", r.engine.now())
        self.started = True
        return True

    def apply(self, alone: bool = True) -> None:
        """Carry out the prepared revert's actions (with its finish, `alone`); complete it
        when nothing is left for a shared finish."""
        r = self.runner
        assert self.plan is not None
        later = [] if alone else self.plan.finish
        with r.shared(self.plan.lock or (None if later else self.plan.finish_lock)):
            carry_out(r.conn, self.plan.actions + ([] if later else self.plan.finish))
            if self.plan.lock is not None or not later:
                self.complete()

    def carried_out(self) -> None:
        """The revert's actions were carried out with other accounts' (nothing to keep)."""

    def after_carry(self) -> None:
        """Complete the revert when no shared finish is left for it."""
        if self.plan is not None and not self.plan.finish:
            self.complete()

    def finish_alone(self) -> None:
        """Carry out this revert's finish actions for this account alone."""
        _finish_alone(self, [])

    def complete(self) -> None:
        """Probe that the change is undone (a failing probe raises: the caller marks stuck)."""
        if self.done:
            return
        self.step.verify(self.ctx, self.undo, False)
        self.done = True
