"""The engine: turns "target X under playbook P since T, hold H" into applied steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agent import drivers, ids
from agent.config import playbooks
from agent.config.config import Config
from agent.config.playbooks import Playbook, Stage
from agent.config.servers import Server
from agent.connector import Connector, connect
from agent.engine import (
    account_verbs,
    batch,
    billing,
    drift,
    outcome,
    recovery,
    tree_verbs,
    webhooks,
)
from agent.engine.billing import HoldTerms
from agent.engine.locks import target_lock
from agent.engine.outcome import Outcome, iso, target_dict
from agent.engine.runner import RunLog, Runner
from agent.engine.schedule import RETRY_FIRST, RETRY_MAX, next_due, retry_delay, within_grace
from agent.errors import (
    AgentError,
    AuthFailed,
    BadInput,
    Busy,
    HostKeyRefused,
    StepUnavailable,
    Unreachable,
)
from agent.journal import checkpoint, idempotency
from agent.journal.audit import Auditor
from agent.journal.journal import Case, Journal

HOLDS = ids.HOLDS
__all__ = ["HOLDS", "RETRY_FIRST", "RETRY_MAX", "Engine", "retry_delay"]


class Engine:
    """Runs verbs against servers; one instance per CLI call."""

    def __init__(self, config: Config, journal: Journal, caller: str,
                 now: Callable[[], float] = time.time,
                 connector: Callable[[Server], Connector] = connect) -> None:
        self.config = config
        self.journal = journal
        self.caller = caller
        self.now = now
        self._connect = connector
        self._conns: dict[str, Connector] = {}
        self._books: dict[str, Playbook] = {}
        self.audit = Auditor(journal, caller, now, config.webhooks)
        # What the last tick's webhook pass did (delivered, retry, failed), if it ran.
        self.webhook_counts: dict[str, int] | None = None
        # Where a batch reports its progress (the CLI sets a bar on a terminal).
        self.progress: Any = batch.NoProgress()

    def close(self) -> None:
        """Close every connection this engine opened, then the journal."""
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        self.journal.close()

    # -- input checks (before any lock or connection) -------------------------------------
    def server(self, name: str) -> Server:
        ids.server_name(name)
        if name not in self.config.servers:
            known = ", ".join(sorted(self.config.servers))
            raise BadInput(f"unknown server {name!r} (configured: {known})")
        return self.config.servers[name]

    def account_target(self, server_name: str, account: str) -> tuple[Server, tuple]:
        server = self.server(server_name)
        ids.account(account, server.panel)
        if account in self.config.protected_accounts or account in server.protected_accounts:
            raise BadInput(f"account {account!r} is protected and may never be suspended")
        return server, (server.name, "account", account)

    def playbook(self, server: Server, name: str | None, kind: str = "account") -> Playbook:
        """Return the playbook a suspend of a `kind` target follows; BadInput for one that
        names server steps (firewall_block) on a target other than a whole server."""
        if name is not None and not name:
            raise BadInput("--playbook is empty (leave it out for the default)")
        pb = playbooks.load(self.config.playbooks_dir, name or self.config.default_playbook)
        if pb.server_steps() and kind != "server":
            raise BadInput(f"playbook {pb.name!r} has {', '.join(pb.server_steps())}, which "
                           "acts on the whole server: use --whole-server; nothing was changed")
        missing = [s for s in pb.step_names() if not drivers.available(server.panel, s)]
        if missing:
            raise StepUnavailable(
                f"playbook {pb.name!r} needs {', '.join(missing)}, not available on the "
                f"{server.panel} driver yet; nothing was changed")
        return pb

    def ensure_suspendable(self, server: Server, account: str) -> None:
        """Raise BadInput before a case is opened for an account the server does not have,
        or for a system account (uid below `min_uid`, or the overflow uid of `nobody`)."""
        drivers.ensure_suspendable(server, self._conn(server), account, self.config.min_uid)

    def book(self, name: str) -> Playbook:
        """Return playbook `name`, loaded once per engine (status reads thousands of cases)."""
        if name not in self._books:
            self._books[name] = playbooks.load(self.config.playbooks_dir, name)
        return self._books[name]

    def _conn(self, server: Server) -> Connector:
        if server.name not in self._conns:
            self._conns[server.name] = self._connect(server)
        return self._conns[server.name]

    def _lock(self, target: tuple, wait: float | None = None):  # noqa: ANN202
        key = ".".join(target)
        return target_lock(self.config.state_db,
                           key, self.config.lock_wait_seconds if wait is None else wait)

    # -- account targets (agent/engine/account_verbs.py) ----------------------------------
    def suspend(self, server_name: str, account: str, playbook: str | None, hold: str,
                reason: str | None, dry_run: bool, terms: HoldTerms | None = None) -> Outcome:
        """Ensure the account is under `hold` with the due stages of the playbook applied
        (`terms`: the invoices and grace date billing gives with it)."""
        return account_verbs.suspend(self, server_name, account, playbook, hold, reason,
                                     dry_run, terms)

    def unsuspend(self, server_name: str, account: str, hold: str, dry_run: bool) -> Outcome:
        """Lift `hold`; when no hold is left, undo every change in reverse order."""
        return billing.mark_remaining(
            account_verbs.unsuspend(self, server_name, account, hold, dry_run), dry_run)

    def reconcile(self, server_name: str, kind: str, name: str, hold: str,
                  overdue: tuple[str, ...], grace: str | None, dry_run: bool) -> Outcome:
        """Ensure `hold` stands for exactly the `overdue` invoices (none: lift it)."""
        if kind == "account":
            _server, target = self.account_target(server_name, name)
        else:
            _server, target = tree_verbs.target(self, server_name, name, kind)
        return billing.reconcile(self, target, hold, overdue, grace, dry_run)

    # -- stages, tick and replies ---------------------------------------------------------
    def advance(self, runner: Runner, case: Case, pb: Playbook, log: RunLog,
                dry_run: bool) -> None:
        """Apply every stage of the case that is due now, in order, stopping at a failure."""
        now = self.now()
        # An account's case never runs a server step (suspend refuses such a playbook; one
        # edited since keeps its account steps).
        pb = pb.split(server=False) if pb.server_steps() else pb
        # Billing's grace date allows no escalation before it.
        for stage in within_grace(pb, case, now).stages:
            if case.started_at + stage.after > now:
                continue
            # A stage already reached is applied again too: apply_stage skips what is in
            # effect, and puts back what an interrupted unsuspend had already undone.
            if not runner.apply_stage(case, stage, log, dry_run):
                if not dry_run:
                    self.stage_failed(case, stage, log)
                return
            if not dry_run and stage.index > case.stage:
                case = self.stage_reached(case, stage, pb)

    def stage_failed(self, case: Case, stage: Stage, log: RunLog) -> None:
        """Record a stage that failed (and was rolled back): a case whose first stage
        failed never started and closes; otherwise the stage is tried again later."""
        if case.stage < 0:
            # The first stage failed (a backup, say): the case never started.
            self.journal.close_case(case.id, "failed", self.caller, self.now())
            return
        # Not every minute: the stage is tried again after a growing pause (a caller's own
        # suspend still tries at once).
        retry_at = self.now() + retry_delay(case.failures + 1)
        error = "; ".join(e["message"] for e in log.errors)[:500]
        failures = self.journal.stage_failed(case.id, error, retry_at)
        self.audit("stage.retry_later", server=case.server, kind=case.kind, name=case.name,
                   case_id=case.id, stage=stage.index, failures=failures,
                   retry_at=iso(retry_at), outcome="failed")

    def stage_reached(self, case: Case, stage: Stage, pb: Playbook) -> Case:
        """Record that `stage` is in effect; return the case as the journal now has it."""
        later = [s for s in pb.stages if s.index > stage.index]
        due = next_due(case.started_at + later[0].after if later else None, case)
        self.journal.set_stage(case.id, stage.index, due)
        if case.parent is None:  # a tree's children: the tree's own event says it
            self.audit("stage.applied", server=case.server, kind=case.kind, name=case.name,
                       case_id=case.id, hold=case.hold, stage=stage.index,
                       steps=[s.name for s in stage.steps], outcome="done")
        return self.journal.case(case.id)

    def tick(self, dry_run: bool = False) -> list[Outcome]:
        """Apply the stages that became due, for every open case; skip busy targets.

        With `dry_run`, report what each due stage would do and change nothing.
        """
        outcomes = []
        trees = self.journal.open_tree_cases()
        due = [c for c in self.journal.due_cases(self.now()) if c.kind not in ids.TREE_KINDS]
        for case in due + trees:
            target = (case.server, case.kind, case.name)
            log = RunLog()
            try:
                if case.kind in ids.TREE_KINDS:
                    found = tree_verbs.tick_case(self, case, dry_run)
                    outcomes += [found] if found is not None else []
                    continue
                server = self.server(case.server)
                pb = self.book(case.playbook)
                with self._lock(target, wait=0):
                    fresh = self.journal.case(case.id)
                    if fresh.status != "open":
                        continue
                    runner = Runner(self, server, self._conn(server), target)
                    taken = recovery.begin(self, runner, dry_run)
                    try:
                        if dry_run or runner.recover(log):
                            self.advance(runner, fresh, pb, log, dry_run=dry_run)
                    finally:
                        recovery.settle(runner, log, dry_run)
                    outcomes.append(self.report(target, log, taken))
            except Unreachable as exc:
                # Not silent: cron mail / the journal must show a server that stays away.
                outcomes.append(self._unreachable(target, log, exc))
            except (HostKeyRefused, AuthFailed) as exc:
                outcomes.append(self._refused(target, log, exc))
            except Busy:
                continue  # another run has this target; the next tick picks it up
            except AgentError as exc:
                self.audit("tick.failed", server=case.server, kind=case.kind, name=case.name,
                           case_id=case.id, outcome="failed", error=str(exc))
                outcomes.append(Outcome(target_dict(target), "partial", [], None, [], [],
                                        [{"step": "tick", "message": str(exc)}]))
        # Locks another tool lifted meanwhile (an admin's unsuspendacct on cPanel) come back.
        outcomes += drift.tick_accounts(self, {c.id for c in due}, dry_run)
        if not dry_run:
            # Replies kept for idempotency keys past their retention are forgotten here,
            # and the webhook outbox is sent (in order, each endpoint on its schedule).
            idempotency.Store(self.journal.db).purge(self.now())
            self.checkpoint()
            if self.config.webhooks:
                self.webhook_counts = webhooks.deliver(self)
        return outcomes

    def checkpoint(self, force: bool = False) -> dict | None:
        """Sign the audit chain's head when one is due (or `force`): checkpoint.make."""
        return checkpoint.make(self, force)

    def report(self, target: tuple, log: RunLog | None = None, message: str = "") -> Outcome:
        """Return the current state of `target`, with what this call did."""
        if target[1] in ids.TREE_KINDS:
            return batch.report(self, target, None, message)
        return outcome.build(self.journal, self.book, target, log or RunLog(), message)

    def _unreachable(self, target: tuple, log: RunLog, exc: Unreachable) -> Outcome:
        """Report a server lost mid-call: retry later (exit 75); the journal keeps the intent."""
        log.unreachable = True
        log.errors.append({"step": None, "message": f"{exc}; nothing was rolled back over the "
                           "lost link: the next call verifies and finishes what was under way"})
        self.audit("server.unreachable", server=target[0], kind=target[1], name=target[2],
                   outcome="retry", error=str(exc))
        return self.report(target, log)

    def _refused(self, target: tuple, log: RunLog, exc: AgentError) -> Outcome:
        """Report credentials the server refused during a tick (exit 78); other cases go on."""
        log.refused = True
        log.errors.append({"step": None, "message": f"{exc}; nothing was rolled back: once the "
                           "config is fixed, the next call verifies and finishes what was "
                           "under way"})
        self.audit("server.refused", server=target[0], kind=target[1], name=target[2],
                   outcome="failed", error=str(exc))
        return self.report(target, log)

    # -- tree targets: a reseller, a whole server (agent/engine/tree_verbs.py) -------------
    def suspend_reseller(self, server_name: str, name: str, playbook: str | None, hold: str,
                         reason: str | None, dry_run: bool,
                         terms: HoldTerms | None = None) -> Outcome:
        """Ensure reseller `name`'s tree is under `hold` (logins first, then the stages)."""
        return tree_verbs.suspend(self, server_name, name, playbook, hold, reason, dry_run,
                                  terms=terms)

    def unsuspend_reseller(self, server_name: str, name: str, hold: str,
                           dry_run: bool) -> Outcome:
        """Lift `hold` from reseller `name`'s tree, websites first, its logins last."""
        return billing.mark_remaining(
            tree_verbs.unsuspend(self, server_name, name, hold, dry_run), dry_run)

    def suspend_server(self, server_name: str, playbook: str | None, hold: str,
                       reason: str | None, dry_run: bool,
                       terms: HoldTerms | None = None) -> Outcome:
        """Ensure the whole server is under `hold`: its admins' and resellers' logins
        locked first, then the playbook's due stages for every account on it."""
        return tree_verbs.suspend(self, server_name, server_name, playbook, hold, reason,
                                  dry_run, kind="server", terms=terms)

    def unsuspend_server(self, server_name: str, hold: str, dry_run: bool) -> Outcome:
        """Lift `hold` from the whole server, websites first, the admin logins last."""
        return billing.mark_remaining(
            tree_verbs.unsuspend(self, server_name, server_name, hold, dry_run,
                                 kind="server"), dry_run)

    def history(self, server_name: str, account: str) -> list[dict[str, Any]]:
        _server, target = self.account_target(server_name, account)
        return self.journal.events(*target)
