"""Invoices on the billing hold, billing's grace date, and `reconcile` (issue 19 item 2;
reference/billing-evidence.md 2, 7.1).

A billing hold stands for the invoices that caused it (`suspend --invoice ID`, repeatable:
each call adds to the set). `reconcile` is declarative: billing states the invoices overdue
*now*; the hold keeps exactly those, and only when none is left is the hold lifted. A
customer who pays one of two overdue invoices gets nothing back, and the reply names the
invoice that remains. `--grace-until DATE` records until when billing allows no escalation:
`tick` applies no stage past the one reached before that date (agent/engine/schedule.py).

A call that asked for services back and leaves the target suspended (an invoice or another
hold remains) says what remains in `not_lifted` and exits 4: nothing failed, but the target
is not in the state asked for, which a script testing only the exit code must not miss.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent import ids
from agent.errors import BadInput

if TYPE_CHECKING:
    from agent.engine.engine import Engine
    from agent.engine.outcome import Outcome
    from agent.journal.journal import Case

INVOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?Z)?")
MAX_INVOICES = 100


@dataclass(frozen=True)
class HoldTerms:
    """What billing says about a hold in one call: invoices, and its grace date."""

    invoices: tuple[str, ...] = ()
    grace_until: float | None = None


def grace_date(text: str) -> float:
    """Return epoch seconds of `YYYY-MM-DD` (the end of that day, UTC) or
    `YYYY-MM-DDTHH:MM[:SS]Z`; BadInput otherwise."""
    match = _DATE.fullmatch(text)
    if not match:
        raise BadInput(f"--grace-until {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)")
    y, mo, d, h, mi, s = (int(g) if g else None for g in match.groups())
    try:
        time.strptime(f"{y:04d}-{mo:02d}-{d:02d}", "%Y-%m-%d")
    except ValueError:
        raise BadInput(f"--grace-until {text!r} is not a date") from None
    if h is None:
        return float(calendar.timegm((y, mo, d, 23, 59, 59)))
    if h > 23 or mi > 59 or (s or 0) > 59:
        raise BadInput(f"--grace-until {text!r} is not a time of day")
    return float(calendar.timegm((y, mo, d, h, mi, s or 0)))


def terms(hold: str, invoices: tuple[str, ...], grace: str | None) -> HoldTerms | None:
    """Return the checked terms of a call (None when it states none); BadInput for an
    unusable invoice id, too many, or invoices on a hold other than billing."""
    for invoice in invoices:
        if not INVOICE.fullmatch(invoice):
            raise BadInput(f"invoice id {invoice!r}: 1-64 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")
    if len(set(invoices)) > MAX_INVOICES:
        raise BadInput(f"at most {MAX_INVOICES} invoices per hold")
    if invoices and hold != "billing":
        raise BadInput(f"invoices belong to the billing hold, not to {hold!r}")
    if not invoices and grace is None:
        return None
    return HoldTerms(tuple(sorted(set(invoices))), grace_date(grace) if grace else None)


def place(engine: Engine, case: Case, given: HoldTerms | None, dry_run: bool) -> Case:
    """Record `given` on the case before its stages advance: the invoices are added to
    those it stands for, a grace date replaces the one it had. Returns the case."""
    if given is None or dry_run or case.id == "dry-run":
        return case
    invoices = tuple(sorted(set(case.invoices) | set(given.invoices)))
    grace = given.grace_until if given.grace_until is not None else case.grace_until
    if (invoices, grace) == (case.invoices, case.grace_until):
        return case
    engine.journal.set_billing(case.id, invoices, grace)
    engine.audit("hold.terms", server=case.server, kind=case.kind, name=case.name,
                 case_id=case.id, hold=case.hold, invoices=list(invoices),
                 grace_until=grace, outcome="done")
    return engine.journal.case(case.id)


def mark_remaining(o: Outcome, dry_run: bool) -> Outcome:
    """Mark an outcome of a call that asked for services back: what keeps the target
    suspended (holds, and the invoices of each), so that the CLI exits 4."""
    if not dry_run and o.holds and o.ok:
        o.not_lifted = _remaining(o)
    return o


def _remaining(o: Outcome) -> dict:
    """Return what keeps the target of `o` suspended: its holds and their invoices."""
    return {"holds": list(o.holds),
            "invoices": sorted({i for v in o.invoices.values() for i in v})}


def reconcile(engine: Engine, target: tuple[str, str, str], hold: str,
              overdue: tuple[str, ...], grace: str | None, dry_run: bool) -> Outcome:
    """Ensure the hold of `target` (checked by the caller) stands for exactly the
    `overdue` invoices: none left lifts it (and the services come back when no other hold
    remains); otherwise the target stays as it is and the reply names what remains. Never
    opens a case."""
    server_name, kind, name = target
    if hold not in ids.HOLDS:
        raise BadInput(f"unknown hold {hold!r} (use {', '.join(ids.HOLDS)})")
    given = terms(hold, overdue, grace) or HoldTerms()
    if not overdue:
        lift = {"account": engine.unsuspend, "reseller": engine.unsuspend_reseller}
        o = (engine.unsuspend_server(server_name, hold, dry_run) if kind == "server" else
             lift[kind](server_name, name, hold, dry_run))
        o.message = "; ".join(m for m in (f"no invoice of the {hold} hold is overdue",
                                          o.message) if m)
        return o
    with engine._lock(target):
        case = next((c for c in engine.journal.open_cases(*target)
                     if c.hold == hold and c.parent is None), None)
        if case is None:
            return engine.report(target, message=(
                f"no open {hold} case: reconcile never suspends (use suspend); nothing "
                "was changed"))
        if not dry_run:
            gone = sorted(set(case.invoices) - set(overdue))
            engine.journal.set_billing(case.id, given.invoices, given.grace_until
                                       if given.grace_until is not None else case.grace_until)
            engine.audit("hold.reconciled", server=target[0], kind=target[1],
                         name=target[2], case_id=case.id, hold=hold,
                         overdue=list(given.invoices), paid=gone, outcome="done")
        o = engine.report(target, message=(
            f"{hold} hold kept: invoice(s) {', '.join(given.invoices)} still overdue"))
    if dry_run:
        o.invoices = {**o.invoices, hold: list(given.invoices)}
    o.not_lifted = _remaining(o)
    return o
