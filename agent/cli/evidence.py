"""The evidence verbs: `audit verify` (registered on `cli`), which walks the journal's
audit events as a hash chain (agent/journal/chain.py) and names the first that breaks it."""

from __future__ import annotations

import sys

import click

from agent.cli.base import EXIT_FAILED, EXIT_OK, Globals, _emit, _engine, cli
from agent.engine.outcome import iso
from agent.journal import chain


@cli.group()
def audit() -> None:
    """The audit trail: check that nobody changed it."""


@audit.command("verify")
@click.pass_obj
def verify(g: Globals) -> None:
    """Check every audit event against the chain; exit 1 naming the first one changed,
    removed before, or moved. Prints the head hash: keep it elsewhere to see later whether
    the newest events were removed."""
    engine = _engine(g)
    try:
        verdict = chain.verify(engine.journal.db)
        bad = None
        if verdict.bad_seq is not None:
            row = engine.journal.db.execute("SELECT * FROM events WHERE seq=?",
                                            (verdict.bad_seq,)).fetchone()
            bad = {"seq": verdict.bad_seq, "problem": verdict.problem,
                   "event": row["event"], "at": iso(row["at"]), "case_id": row["case_id"]}
    finally:
        engine.close()
    reply = {"ok": bad is None, "checked": verdict.checked,
             "before_chain": verdict.unchained, "head": verdict.head,
             "head_seq": verdict.head_seq} | ({"first_bad": bad} if bad else {})
    if bad:
        text = (f"AUDIT TRAIL BROKEN at event {bad['seq']} ({bad['event']}, {bad['at']}): "
                f"it {bad['problem']}; {verdict.checked} event(s) before it are intact")
    else:
        text = (f"audit trail intact: {verdict.checked} event(s), head {verdict.head} "
                f"(event {verdict.head_seq})"
                + (f"; {verdict.unchained} older event(s) from before the chain"
                   if verdict.unchained else ""))
    _emit(g, reply, text, EXIT_OK if bad is None else EXIT_FAILED)
    sys.exit(EXIT_OK if bad is None else EXIT_FAILED)


@cli.group()
def case() -> None:
    """One case's records: the dossier for a dispute."""


@case.command("export")
@click.argument("case_id")
@click.option("--out", "out", required=True, metavar="DIR",
              help="A new or empty folder for the dossier (files mode 600).")
@click.pass_obj
def export(g: Globals, case_id: str, out: str) -> None:
    """Write CASE's dossier (what was done, when, by whom, the backup, the reversal, and the
    audit chain's proof) to DIR, with a manifest of SHA-256 hashes."""
    from agent.engine import dossier

    engine = _engine(g)
    try:
        manifest = dossier.export(engine, case_id, out)
    finally:
        engine.close()
    _emit(g, {"ok": True, "case_id": case_id, "out": out, "manifest": manifest},
          f"dossier of case {case_id} written to {out}: "
          + ", ".join(sorted(manifest["files"])) + " and manifest.json", EXIT_OK)
    sys.exit(EXIT_OK)
