"""What a verb replies about one target: its state read back from the journal (the contract's
`state`, `holds`, `stage`, `applied`, `pending`, `errors`), with what this call did."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.config.playbooks import Playbook
from agent.engine.runner import RunLog
from agent.errors import AgentError
from agent.journal.journal import Case, Journal


@dataclass
class Outcome:
    """The reply of one verb about one target (rendered by the CLI)."""

    target: dict
    state: str
    holds: list[str]
    stage: int | None
    applied: list[dict]
    pending: list[dict]
    errors: list[dict]
    message: str = ""
    plans: list[dict] = field(default_factory=list)
    reverted: list[dict] = field(default_factory=list)
    rolled_back: bool = False
    partial: bool = False
    cases: list[dict] = field(default_factory=list)
    unreachable: bool = False
    warnings: list[str] = field(default_factory=list)
    refused: bool = False
    # A tree target (reseller): one entry per child account (agent/engine/batch_report.py).
    children: list[dict] | None = None
    # The invoices each open hold stands for (agent/engine/billing.py), and, for a call
    # that asked for services back, what keeps the target suspended (the CLI exits 4).
    invoices: dict[str, list[str]] = field(default_factory=dict)
    not_lifted: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def build(journal: Journal, book: Callable[[str], Playbook], target: tuple, log: RunLog,
          message: str) -> Outcome:
    """Return the current state of `target` from the journal, with what this call did."""
    cases = journal.open_cases(*target)
    active = journal.active_changes(*target)
    applied = [{"step": c.step, "stage": c.stage, "at": iso(c.at),
                "changed": c.seq in log.changed} for c in active if c.state == "done"]
    pending = []
    for case in cases:
        try:
            pb = book(case.playbook)
        except AgentError:
            continue
        for stage in pb.stages:
            if stage.index > case.stage:
                due = iso(case.started_at + stage.after)
                pending += [{"step": s.name, "due": due, "hold": case.hold}
                            for s in stage.steps]
    stuck = any(c.state != "done" for c in active)
    if stuck or log.partial:
        state = "partial"
    elif not cases:
        state = "partial" if active else "active"
    else:
        state = "suspended" if any(c.step != "backup" for c in active) else "scheduled"
    return Outcome(target_dict(target), state, sorted({c.hold for c in cases}),
                   max((c.stage for c in cases), default=None) if cases else None,
                   applied, pending, log.errors, message, log.plans, log.reverted,
                   log.rolled_back, log.partial or stuck, [_case_dict(c) for c in cases]
                   + [{"stuck": c.step, "error": c.error} for c in active
                      if c.state == "stuck"], log.unreachable, refused=log.refused,
                   invoices=invoices_of(cases))


def invoices_of(cases: list[Case]) -> dict[str, list[str]]:
    """Return {hold: invoices} of the cases whose hold stands for invoices."""
    found: dict[str, set[str]] = {}
    for case in cases:
        if case.invoices:
            found.setdefault(case.hold, set()).update(case.invoices)
    return {hold: sorted(v) for hold, v in sorted(found.items())}


def _case_dict(case: Case) -> dict:
    return {"id": case.id, "hold": case.hold, "playbook": case.playbook, "stage": case.stage,
            "started": iso(case.started_at),
            "next_due": iso(case.next_due_at) if case.next_due_at is not None else None,
            **({"failures": case.failures, "last_error": case.last_error}
               if case.failures else {}),
            **({"invoices": list(case.invoices)} if case.invoices else {}),
            **({"grace_until": iso(case.grace_until)} if case.grace_until else {})}


def target_dict(target: tuple) -> dict:
    return {"server": target[0], "kind": target[1], "name": target[2]}


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def hold_label(journal: Journal, case: Case, article: str = "a") -> str:
    """Return how a reply names the hold of `case`: the hold, and for a child case whose
    tree it belongs to ("billing (a reseller case)", "billing (a whole-server case)")."""
    if case.parent is None:
        return case.hold
    server = journal.has_case(case.parent) and journal.case(case.parent).kind == "server"
    kind = "whole-server" if server else "reseller"
    return f"{case.hold} ({article} {kind} case)"
