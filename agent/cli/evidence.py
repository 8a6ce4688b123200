"""The evidence verbs: `audit verify` (registered on `cli`), which walks the journal's
audit events as a hash chain (agent/journal/chain.py) and names the first that breaks it."""

from __future__ import annotations

import os
import sys
import time

import click

from agent import ids
from agent.cli.base import EXIT_FAILED, EXIT_OK, Globals, _emit, _engine, cli
from agent.engine.outcome import iso
from agent.errors import BadInput, ConfigError
from agent.journal import chain, checkpoint


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
        db = engine.journal.db
        verdict = chain.verify(db)
        public = (checkpoint.public_text(checkpoint.load_key(engine.config.audit_checkpoint_key))
                  if engine.config.audit_checkpoint_key else None)
        signed, bad_checkpoint, last = checkpoint.verify_all(db, public)
        bad = None
        seq, problem = ((verdict.bad_seq, verdict.problem) if verdict.bad_seq is not None else
                        (bad_checkpoint["seq"], "is a checkpoint: " + bad_checkpoint["problem"])
                        if bad_checkpoint else (None, ""))
        if seq is not None:
            row = db.execute("SELECT * FROM events WHERE seq=?", (seq,)).fetchone()
            bad = {"seq": seq, "problem": problem, "event": row["event"],
                   "at": iso(row["at"]), "case_id": row["case_id"]}
    finally:
        engine.close()
    reply = {"ok": bad is None, "checked": verdict.checked,
             "before_chain": verdict.unchained, "head": verdict.head,
             "head_seq": verdict.head_seq, "checkpoints": signed,
             "last_checkpoint": last and {k: last[k] for k in (
                 "seq", "covers_seq", "covers_head")}} | ({"first_bad": bad} if bad else {})
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


@audit.command("checkpoint")
@click.pass_obj
def make_checkpoint(g: Globals) -> None:
    """Sign the chain's head now (audit_checkpoint_key), as an audit.checkpoint event that
    the webhooks send to billing at the next tick."""
    engine = _engine(g)
    try:
        if not engine.config.audit_checkpoint_key:
            raise ConfigError(engine.config.path, ["audit_checkpoint_key: not set"])
        made = engine.checkpoint(force=True)
    finally:
        engine.close()
    reply = {"ok": True, "checkpoint": made}
    _emit(g, reply, (f"checkpoint of event {made['covers_seq']}: {made['covers_head']}"
                     if made else "nothing new since the last checkpoint"), EXIT_OK)
    sys.exit(EXIT_OK)


@cli.group()
def case() -> None:
    """One case's records: the dossier for a dispute."""


@case.command("export")
@click.argument("case_id")
@click.option("--out", "out", metavar="DIR",
              help="A new or empty folder for the dossier (files mode 600); default a new "
                   "folder CASE-TIME in dossier_dir.")
@click.pass_obj
def export(g: Globals, case_id: str, out: str | None) -> None:
    """Write CASE's dossier (what was done, when, by whom, the backup, the reversal, and the
    audit chain's proof) to DIR, with a manifest of SHA-256 hashes."""
    from agent.engine import dossier

    if g.dry_run:
        raise BadInput("case export writes a dossier; it has no --dry-run")
    engine = _engine(g)
    try:
        if out is None:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(engine.now()))
            out = os.path.join(engine.config.dossier_dir, f"{ids.case_id(case_id)}-{stamp}")
        manifest = dossier.export(engine, case_id, out)
    finally:
        engine.close()
    _emit(g, {"ok": True, "case_id": case_id, "out": out, "manifest": manifest},
          f"dossier of case {case_id} written to {out}: "
          + ", ".join(sorted(manifest["files"])) + " and manifest.json", EXIT_OK)
    sys.exit(EXIT_OK)
