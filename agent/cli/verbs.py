"""The verbs a billing system and an admin run: suspend, unsuspend, status, tick and the
SSH forced-command entry (registered on the click group of agent/cli/base.py)."""

from __future__ import annotations

import os
import sys

import click

from agent.cli.base import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Globals,
    _emit,
    _engine,
    _exit_for_many,
    _fail,
    _finish,
    _target_options,
    _watch,
    _which,
    cli,
    main,
)
from agent.cli.forced import forced_args
from agent.cli.once import finish_once
from agent.cli.render import outcome_dict, outcome_text
from agent.config import callers
from agent.config import config as config_mod
from agent.engine import billing, drift, recovery, tree_verbs
from agent.engine.engine import HOLDS, Engine
from agent.engine.outcome import Outcome
from agent.errors import AuthFailed, BadInput, ConfigError, HostKeyRefused, Unreachable


def _key_option(f):  # noqa: ANN001, ANN202
    return click.option("--idempotency-key", metavar="KEY",
                        help="Act at most once for KEY (per caller): a retry with the same "
                             "KEY and request gets the first reply again, marked replayed.")(f)


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@_target_options
@click.option("--playbook", metavar="NAME", help="Playbook in playbooks/ (default from config).")
@click.option("--hold", type=click.Choice(HOLDS), default="billing", show_default=True)
@click.option("--reason", metavar="TEXT", help="Why (kept in the journal and audit log).")
@click.option("--invoice", "invoices", metavar="ID", multiple=True,
              help="An invoice the billing hold stands for (repeatable).")
@click.option("--grace-until", metavar="DATE",
              help="No stage after the first before DATE (YYYY-MM-DD, UTC).")
@_key_option
@click.pass_obj
def suspend(g: Globals, server: str, account: str | None, reseller: str | None,
            whole_server: bool, playbook: str | None, hold: str, reason: str | None,
            invoices: tuple[str, ...], grace_until: str | None,
            idempotency_key: str | None) -> None:
    """Put ACCOUNT (or a reseller's tree) on SERVER under a hold and apply the playbook's
    due stages."""
    kind, name = _which(account, reseller, whole_server)
    terms = billing.terms(hold, invoices, grace_until)
    engine = _engine(g)
    _watch(g, engine)
    try:
        if kind == "server":
            def call() -> Outcome:
                return engine.suspend_server(server, playbook, hold, reason, g.dry_run, terms)
        else:
            verb = engine.suspend if kind == "account" else engine.suspend_reseller

            def call() -> Outcome:
                return verb(server, name, playbook, hold, reason, g.dry_run, terms)
        finish_once(g, engine, idempotency_key, "suspend",
                    {"server": server, "kind": kind, "name": name, "playbook": playbook,
                     "hold": hold, "reason": reason, "invoices": sorted(set(invoices)),
                     "grace_until": grace_until}, call)
    finally:
        engine.close()


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@_target_options
@click.option("--hold", type=click.Choice(["billing"]), default="billing", show_default=True)
@click.option("--overdue", metavar="ID|none", multiple=True, required=True,
              help="The invoices overdue now (repeatable); `none` lifts the hold.")
@click.option("--grace-until", metavar="DATE",
              help="No stage after the one reached before DATE (YYYY-MM-DD, UTC).")
@_key_option
@click.pass_obj
def reconcile(g: Globals, server: str, account: str | None, reseller: str | None,
              whole_server: bool, hold: str, overdue: tuple[str, ...],
              grace_until: str | None, idempotency_key: str | None) -> None:
    """Make HOLD stand for exactly the invoices overdue now: with none left it is lifted;
    otherwise everything stays suspended and the reply names what remains (exit 4)."""
    kind, name = _which(account, reseller, whole_server)
    if "none" in overdue and len(overdue) > 1:
        raise BadInput("--overdue none stands alone: no invoice is overdue")
    due = () if overdue == ("none",) else tuple(sorted(set(overdue)))
    billing.terms(hold, due, grace_until)  # checked before anything is opened
    engine = _engine(g)
    _watch(g, engine)
    try:
        finish_once(g, engine, idempotency_key, "reconcile",
                    {"server": server, "kind": kind, "name": name or server, "hold": hold,
                     "overdue": list(due), "grace_until": grace_until},
                    lambda: engine.reconcile(server, kind, name or server, hold, due,
                                             grace_until, g.dry_run))
    finally:
        engine.close()


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@_target_options
@click.option("--hold", type=click.Choice(HOLDS), default="billing", show_default=True)
@_key_option
@click.pass_obj
def unsuspend(g: Globals, server: str, account: str | None, reseller: str | None,
              whole_server: bool, hold: str, idempotency_key: str | None) -> None:
    """Lift a hold; when none is left, undo every change exactly, newest first."""
    kind, name = _which(account, reseller, whole_server)
    engine = _engine(g)
    _watch(g, engine)
    try:
        if kind == "server":
            def call() -> Outcome:
                return engine.unsuspend_server(server, hold, g.dry_run)
        else:
            verb = engine.unsuspend if kind == "account" else engine.unsuspend_reseller

            def call() -> Outcome:
                return verb(server, name, hold, g.dry_run)
        finish_once(g, engine, idempotency_key, "unsuspend",
                    {"server": server, "kind": kind, "name": name, "hold": hold}, call)
    finally:
        engine.close()


@cli.command()
@click.argument("server", required=False)
@click.argument("account", required=False)
@click.option("--reseller", metavar="NAME", help="Show a reseller's case and its accounts.")
@click.option("--whole-server", is_flag=True,
              help="Show the whole server's case and its accounts.")
@click.pass_obj
def status(g: Globals, server: str | None, account: str | None,
           reseller: str | None, whole_server: bool) -> None:
    """Show the state of one account, or of every tracked target.

    With SERVER, the server's own case records are read too: a record naming a case the
    journal does not know is reported as an error (exit 1) that names `recover`.
    """
    if reseller is not None or whole_server:
        kind, name = _which(account, reseller, whole_server)
        if server is None:
            raise BadInput("status --reseller NAME / --whole-server needs SERVER")
        engine = _engine(g)
        try:
            srv, tgt = tree_verbs.target(engine, server, name, kind)
            o = engine.report(tgt)
            if kind == "server":
                o.warnings += drift.drifted(engine, srv, tgt)
            _finish(g, o)
        finally:
            engine.close()
    engine = _engine(g)
    try:
        if account is not None and server is not None:
            srv, target = engine.account_target(server, account)
            o = engine.report(target)
            errors, warnings = _records_view(engine, server, account)
            if not o.cases and not o.applied and not errors and not warnings:
                engine.ensure_suspendable(srv, account)  # "active" only for a real account
            o.errors += errors.get(target, [])
            o.warnings += warnings + drift.drifted(engine, srv, target)
            _finish(g, o)
        errors, warnings = {}, []
        if server is not None:
            engine.server(server)
            errors, warnings = _records_view(engine, server, None)
        targets = set(engine.journal.targets(server)) | set(errors)
        outcomes = [engine.report(t) for t in sorted(targets)]
    finally:
        engine.close()
    for o in outcomes:
        o.errors += errors.get((o.target["server"], o.target["kind"], o.target["name"]), [])
    ok = all(o.ok for o in outcomes)
    _emit(g, {"ok": ok, "targets": [outcome_dict(o) for o in outcomes]}
          | ({"warnings": warnings} if warnings else {}),
          "\n".join([outcome_text(o) for o in outcomes]
                    + [f"WARNING {w}" for w in warnings]) or "nothing is suspended")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


def _records_view(engine: Engine, server: str,
                  account: str | None) -> tuple[dict[tuple, list], list[str]]:
    """Return errors per target for server records the journal does not know, and warnings.

    A server that cannot be reached leaves the journal's view as the answer, with a warning.
    """
    try:
        lost = recovery.unknown_to_journal(engine, server, account)
    except (Unreachable, HostKeyRefused, AuthFailed) as exc:
        return {}, [f"the server's case records could not be read ({exc}); this is the "
                    "journal's view only"]
    return {t: [recovery.warning(server, t[2], ids)] for t, ids in lost.items()}, []


@cli.command()
@click.pass_obj
def tick(g: Globals) -> None:
    """Apply the stages that became due (run from cron or a systemd timer)."""
    engine = _engine(g)
    try:
        outcomes = engine.tick(dry_run=g.dry_run)
    finally:
        engine.close()
    code = _exit_for_many(outcomes)
    sent = engine.webhook_counts
    _emit(g, {"ok": all(o.ok for o in outcomes),
              "processed": [outcome_dict(o) for o in outcomes]}
          | ({"webhooks": sent} if sent and any(sent.values()) else {}),
          "\n".join(outcome_text(o, g.dry_run) for o in outcomes) or "nothing due", code)
    sys.exit(code)


@cli.command("serve-ssh")
@click.option("--caller", default="billing", show_default=True,
              help="Who this SSH key belongs to (recorded in the audit log).")
@click.pass_obj
def serve_ssh(g: Globals, caller: str) -> None:
    """Forced-command entry: run the verb in $SSH_ORIGINAL_COMMAND with JSON output.

    The caller gets exactly its rights from `callers:` in the config (by default: the
    billing hold only); every reply, refusals included, is one JSON object.
    """
    try:
        args = forced_args(os.environ.get("SSH_ORIGINAL_COMMAND", ""), g.config_path,
                           g.dry_run)
        cfg = config_mod.load(g.config_path)
        words = args[args.index("--json") + 1:]
        words = words[1:] if words[:1] == ["--dry-run"] else words
        callers.check(caller, cfg.callers.get(caller, callers.DEFAULT), words)
    except BadInput as exc:
        _fail(True, EXIT_USAGE, str(exc))  # the caller is a program: a refusal is JSON too
    except ConfigError as exc:
        _fail(True, EXIT_CONFIG, "bad config: " + str(exc))
    os.environ["SUSPENSION_AGENT_CALLER"] = f"ssh:{caller}"
    main(args)
