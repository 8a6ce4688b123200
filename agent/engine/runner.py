"""Apply a stage's steps with journal intent/done, roll back on failure, revert, recover."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent import drivers
from agent.config.playbooks import Stage
from agent.engine.locks import target_lock
from agent.engine.records import Records
from agent.engine.step_run import RevertRun, StepRun
from agent.errors import AgentError, AuthFailed, HostKeyRefused, Unreachable
from agent.journal.journal import Case, Change
from agent.steps.protocol import Context, Memo

# Steps whose revert goes before all others on unsuspend, newest first: what visitors see,
# and the panel's own suspension, whose lifting (cPanel's unsuspendacct) also lifts locks of
# other steps that must therefore be put back by their own reverts afterwards
# (reference/panels.md A8).
FIRST_BACK = ("landing_page", "server_landing", "panel_suspend")
# Reverted after every other step, alone: lifting a reseller's own suspension (cPanel's
# unsuspendreseller) rewrites the shell, mailbox hashes and FTP file that other steps put
# back, so theirs must be done first (its revert re-applies whatever must stay locked).
LAST_BACK = ("reseller_lock",)


def revert_order(changes: list) -> tuple[list, list, list]:
    """Split changes (newest first) into what comes back first, the rest, and last."""
    first = [c for c in changes if c.step in FIRST_BACK]
    last = [c for c in changes if c.step in LAST_BACK]
    rest = [c for c in changes if c.step not in FIRST_BACK + LAST_BACK]
    return first, rest, last


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# A lost link, or credentials the server refuses: no rollback over them. The journal keeps
# the intent (or `reverting`), and the next call that reaches the server finishes it.
KEEP_INTENT = (Unreachable, AuthFailed, HostKeyRefused)


@dataclass
class RunLog:
    """What one call did: changed steps, dry-run plans, errors, and whether it is partial."""

    changed: list[int] = field(default_factory=list)
    reverted: list[dict] = field(default_factory=list)
    plans: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    rolled_back: bool = False
    partial: bool = False
    # The server went away mid-call: what was under way stays in the journal as intent (or
    # reverting) for the next call to verify and finish or put back; nothing was rolled back.
    unreachable: bool = False
    # The server refused the configured credentials (key, host key, API token) mid-call: as
    # above nothing was rolled back; a human must fix the config (exit 78).
    refused: bool = False


class Runner:
    """Carries out steps for one target through its connector, journaling every change."""

    def __init__(self, engine: Any, server: Any, conn: Any, target: tuple[str, str, str]) -> None:
        self.engine = engine
        self.journal = engine.journal
        self.audit = engine.audit
        self.server = server
        self.conn = conn
        self.target = target
        self.records = Records(conn, server.records_dir, self.journal, target)
        # Facts shared with the other accounts of a batch for this call (None alone).
        self.memo: Any = None
        # What prefetch_first read for the first reverts (path -> FileData), used once.
        self._first_reads: dict | None = None
        self.one_shot: Any = None  # the Memo holding them while the first reverts run

    def context(self, case_id: str, params: dict | None = None,
                hold: str | None = None) -> Context:
        return Context(self.engine.config, self.server, self.conn, self.target[2], case_id,
                       self.engine.now(), self.journal, dict(params or {}), hold,
                       self.memo)

    def _where(self, case_id: str | None, step: str, **extra: Any) -> dict:
        return {"server": self.target[0], "kind": self.target[1], "name": self.target[2],
                "case_id": case_id, "step": step, **extra}

    def apply_stage(self, case: Case, stage: Stage, log: RunLog, dry_run: bool) -> bool:
        """Ensure every step of `stage` is in effect; on failure roll the stage back.

        Returns True when the stage is fully applied (or, in a dry run, fully planned).
        """
        active = {c.step for c in self.journal.active_changes(*self.target)}
        done_here: list[StepRun] = []
        for spec in stage.steps:
            if spec.name in active:
                continue
            run = StepRun(self, case, spec, stage.index)
            try:
                if not run.start(dry_run, log):
                    continue
                run.finish_alone()
                run.complete()
            except KEEP_INTENT:
                # No rollback over a dead link (or with credentials the server refuses, exit
                # 78): the journal keeps this step's intent and the stage's done steps; the
                # next call on the target finishes or puts them back.
                raise
            except AgentError as exc:
                self.step_failed(run, exc, done_here, log)
                return False
            self.step_applied(run, done_here, log)
        return True

    def step_applied(self, run: StepRun, done_here: list[StepRun], log: RunLog) -> None:
        """Record a step that took effect (journal done, probe passed)."""
        done_here.append(run)
        log.changed.append(run.seq)
        self.audit("step.applied", outcome="done", actions=run.carried,
                   **run.seen, **self._where(
                       run.case.id, run.name, hold=run.case.hold, stage=run.stage))

    def step_failed(self, run: StepRun, exc: AgentError, done_here: list[StepRun],
                    log: RunLog) -> None:
        """Put back what the failed step changed and the stage's steps applied before it."""
        log.errors.append({"step": run.name, "message": str(exc)})
        self.audit("step.failed", outcome="failed", **self._where(
            run.case.id, run.name, hold=run.case.hold, error=str(exc)))
        if run.seq is not None and not run.done:
            self._undo_failed_apply(run.seq, run.name, run.case.id, run.plan, exc, log)
        self._roll_back(done_here + ([run] if run.done else []), log)

    def shared(self, lock: str | None):  # noqa: ANN201 - a context manager
        """Hold the server-wide lock a plan asks for (shared files), else nothing."""
        if lock is None:
            return contextlib.nullcontext()
        return target_lock(self.engine.config.state_db, f"{self.target[0]}.shared.{lock}",
                           max(30.0, self.engine.config.lock_wait_seconds))

    def _undo_failed_apply(self, seq: int, name: str, case_id: str, plan: Any,
                           exc: AgentError, log: RunLog) -> None:
        """Put back what a step that failed half-way had changed; nothing if it changed nothing."""
        if getattr(exc, "completed", None) == 0:
            self.journal.mark(seq, "failed", self.engine.now(), error=str(exc))
            return
        if self.revert_one(seq, name, case_id, plan.undo, log):
            log.rolled_back = True

    def _roll_back(self, done_here: list[StepRun], log: RunLog) -> None:
        """Revert this stage's applied steps in reverse order; a failed revert is `stuck`."""
        for run in reversed(done_here):
            if self.revert_one(run.seq, run.name, run.case.id, run.undo, log):
                log.rolled_back = True
        log.changed = [s for s in log.changed if s not in {d.seq for d in done_here}]

    def revert_one(self, seq: int, name: str, case_id: str, undo: dict, log: RunLog,
                   dry_run: bool = False, driver: str | None = None) -> bool:
        """Undo one change from its undo data and probe it; return True when reverted.

        The revert goes to the driver that made the change (`driver`, from the journal).
        """
        run = RevertRun(self, seq, name, case_id, undo, driver)
        try:
            if not run.start(dry_run, log):
                return True
            run.finish_alone()
            run.complete()
        except KEEP_INTENT:
            raise  # stays `reverting` (or as it was): the next call retries it
        except AgentError as exc:
            self.revert_failed(run, exc, log)
            return False
        self.reverted(run, log)
        return True

    def revert_failed(self, run: RevertRun, exc: AgentError, log: RunLog) -> None:
        """Mark a change whose revert failed `stuck`: a human must see it."""
        self.journal.mark(run.seq, "stuck", self.engine.now(), error=str(exc))
        log.errors.append({"step": run.name, "message": f"revert failed: {exc}"})
        log.partial = True
        self.audit("step.revert_failed", outcome="stuck",
                   **self._where(run.case_id, run.name, error=str(exc)))

    def reverted(self, run: RevertRun, log: RunLog) -> None:
        """Record a change that is undone (probe passed)."""
        seq, name, case_id = run.seq, run.name, run.case_id
        self.journal.mark(seq, "reverted", self.engine.now())
        log.reverted.append({"step": name, "at": _iso(self.engine.now())})
        self.audit("step.reverted", outcome="reverted", **self._where(case_id, name))

    def prefetch_first(self) -> None:
        """Read the server's record and the files the first reverts (the landing page's)
        will read, all in one round trip, before anything is changed: `records.load` and
        those revert plans use that read instead of their own (the hot path of one
        account's unsuspend). Only while every active change is simply in effect: a change
        left half-done is finished by `recover` first, which may change those files."""
        changes = self.journal.active_changes(*self.target)
        if any(c.state != "done" for c in changes):
            return
        first, _rest, _last = revert_order(list(reversed(changes)))
        paths: list[str] = []
        for change in first:
            step = drivers.step(change.driver or self.server.panel, change.step)
            reads = getattr(step, "revert_reads", None)
            paths += reads(change.undo) if reads is not None else []
        marker = f"{self.records.dir}/.created"
        found = self.conn.read_many(list(dict.fromkeys([self.records.path, marker, *paths])))
        self.records.prefetched = found
        if paths:
            self._first_reads = found

    def revert_all(self, log: RunLog, dry_run: bool) -> None:
        """Undo every change still in effect on the target.

        What visitors see comes back first: the landing page is reverted before anything
        else (it does not depend on the login locks, and they do not depend on it). The
        other steps touch disjoint services (mail, FTP, databases, logins), so they are
        reverted side by side over the one connection; the reply lists them newest first.
        """
        changes = list(reversed(self.journal.active_changes(*self.target)))
        first, rest, last = revert_order(changes)
        held, self._first_reads = self._first_reads, None
        mine = held is not None and self.memo is None and not dry_run
        if mine:
            # The files prefetch_first read, for the first revert plan only (nothing was
            # changed on the server since; RevertRun.start drops them once that plan is
            # made): every later plan and every probe reads for itself.
            self.memo = self.one_shot = Memo()
            self.memo.preload(held)
        try:
            for change in first:
                self.revert_one(change.seq, change.step, change.case_id, change.undo, log,
                                dry_run, change.driver)
        finally:
            if mine:
                self.memo = self.one_shot = None
        self._revert_side_by_side(rest, log, dry_run)
        for change in last:
            self.revert_one(change.seq, change.step, change.case_id, change.undo, log, dry_run,
                            change.driver)

    def _revert_side_by_side(self, rest: list, log: RunLog, dry_run: bool) -> None:
        """Revert changes of disjoint services at once over the one connection."""
        if dry_run or len(rest) < 2:
            for change in rest:
                self.revert_one(change.seq, change.step, change.case_id, change.undo, log,
                                dry_run, change.driver)
            return
        order = {c.step: i for i, c in enumerate(rest)}
        with ThreadPoolExecutor(max_workers=len(rest)) as pool:
            futures = [pool.submit(self.revert_one, c.seq, c.step, c.case_id, c.undo, log,
                                   False, c.driver) for c in rest]
        lost = [f.exception() for f in futures if isinstance(f.exception(), Unreachable)]
        others = [f.exception() for f in futures if f.exception() is not None
                  and not isinstance(f.exception(), Unreachable)]
        log.reverted.sort(key=lambda r: order.get(r["step"], -1))
        if lost:
            raise lost[0]
        if others:
            raise others[0]

    def recover(self, log: RunLog, retry_stuck: bool = True) -> bool:
        """Finish what earlier runs left: intents undone, interrupted and failed reverts redone.

        Returns True when nothing is left half-done (no `stuck` change remains).
        """
        redo = ("intent", "reverting", "stuck") if retry_stuck else ("intent", "reverting")
        for change in reversed(self.journal.active_changes(*self.target)):
            if change.state not in redo:
                continue
            self.audit("recovery.found", **self._where(change.case_id, change.step,
                                                       state=change.state))
            if change.step == "backup" and change.state in ("intent", "stuck"):
                # A backup that never finished (or whose cleanup failed): its partial archive
                # goes. One that finished (a revert interrupted) stays verified and reusable.
                self._abandon_backup(change)
                continue
            self._first_reads = None  # the server changes: what was read before is stale
            self.revert_one(change.seq, change.step, change.case_id, change.undo, log,
                            driver=change.driver)
        return all(c.state != "stuck" for c in self.journal.active_changes(*self.target))

    def _abandon_backup(self, change: Change) -> None:
        ctx = self.context(change.case_id)
        try:
            drivers.step(change.driver, "backup").clean_partial(ctx, change.undo)
        except AgentError as exc:
            self.journal.mark(change.seq, "stuck", self.engine.now(), error=str(exc))
            return
        self.journal.mark(change.seq, "failed", self.engine.now(), error="interrupted; cleaned")
