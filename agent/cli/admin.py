"""The admin's verbs: plan, history, recover, check and preview-landing (registered on `cli`)."""

from __future__ import annotations

import sys

import click

from agent import landing
from agent.cli.base import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    Globals,
    _emit,
    _engine,
    _exit_for,
    _exit_for_many,
    _which,
    cli,
)
from agent.cli.render import history_text, ladder_text, outcome_dict, outcome_text, tree_plan_text
from agent.config import config as config_mod
from agent.engine import recovery, tree_verbs
from agent.engine.ladder import ladder
from agent.errors import BadInput


def _tree_of(account: str | None, reseller: str | None, whole_server: bool) -> str | None:
    """Return the tree kind named ("reseller", "server") or None for an account; exactly
    one target must be named."""
    kind, _name = _which(account, reseller, whole_server)
    return None if kind == "account" else kind


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@click.option("--reseller", metavar="NAME", help="The reseller's whole tree.")
@click.option("--whole-server", is_flag=True, help="Every admin login and account of SERVER.")
@click.option("--playbook", metavar="NAME")
@click.pass_obj
def plan(g: Globals, server: str, account: str | None, reseller: str | None,
         whole_server: bool, playbook: str | None) -> None:
    """Print the whole ladder with the exact commands of each step; change nothing."""
    kind = _tree_of(account, reseller, whole_server)
    name = reseller if kind == "reseller" else server
    engine = _engine(g)
    try:
        if kind is not None:
            found = tree_verbs.plan(engine, server, name, playbook, kind)
        else:
            stages = ladder(engine, server, account, playbook)
    finally:
        engine.close()
    if kind is not None:
        errors = [{"step": e["step"], "account": e["account"], "message": e["error"]}
                  for e in found["logins"] if "error" in e]
        errors += [{"step": e["step"], "account": c["account"], "message": e["error"]}
                   for c in found["children"] for st in c["stages"] for e in st["steps"]
                   if "error" in e]
        errors += [{"step": e["step"], "message": e["error"]}
                   for e in found.get("server_steps", []) if "error" in e]
        _emit(g, {"ok": not errors, "target": {"server": server, "kind": kind,
                                               "name": name}, **found, "errors": errors},
              tree_plan_text(found))
        sys.exit(EXIT_FAILED if errors else EXIT_OK)
    errors = [{"step": e["step"], "message": e["error"]}
              for st in stages for e in st["steps"] if "error" in e]
    _emit(g, {"ok": not errors, "target": {"server": server, "kind": "account", "name": account},
              "stages": stages, "errors": errors}, ladder_text(stages))
    sys.exit(EXIT_FAILED if errors else EXIT_OK)


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@click.option("--reseller", metavar="NAME", help="The reseller's case and its accounts' cases.")
@click.option("--whole-server", is_flag=True,
              help="The whole server's case and its accounts' cases.")
@click.pass_obj
def history(g: Globals, server: str, account: str | None, reseller: str | None,
            whole_server: bool) -> None:
    """Show every recorded event of an account (or of a tree: a reseller, a whole server)."""
    kind = _tree_of(account, reseller, whole_server)
    engine = _engine(g)
    try:
        events = (tree_verbs.history(engine, server, reseller or server, kind)
                  if kind is not None else engine.history(server, account))
    finally:
        engine.close()
    _emit(g, {"ok": True, "events": events}, history_text(events))


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@click.option("--whole-server", is_flag=True,
              help="The whole server's own changes (firewall_block), not an account's.")
@click.option("--handled", "step", metavar="STEP",
              help="Record that STEP's stuck change was undone by hand (needs --reason).")
@click.option("--reason", metavar="TEXT", help="What was done by hand (audited).")
@click.pass_obj
def resolve(g: Globals, server: str, account: str | None, whole_server: bool,
            step: str | None, reason: str | None) -> None:
    """Retry the stuck changes of ACCOUNT (or of the whole server's own) now, or mark one
    as undone by hand."""
    if (account is None) != whole_server:
        raise BadInput("name an ACCOUNT or --whole-server (exactly one)")
    engine = _engine(g)
    try:
        outcome = recovery.resolve(engine, server, account, step, reason, g.dry_run)
    finally:
        engine.close()
    _emit(g, outcome_dict(outcome), outcome_text(outcome, g.dry_run))
    sys.exit(_exit_for(outcome))


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@click.pass_obj
def recover(g: Globals, server: str, account: str | None) -> None:
    """Rebuild the journal's view of SERVER (or ACCOUNT) from the server's own case records.

    For a lost, truncated or corrupted state database (moved aside first): every case the
    server's records carry is taken back into the journal with its undo data, so that
    `unsuspend` then restores each account exactly. Nothing on the accounts changes.
    """
    engine = _engine(g)
    try:
        outcomes = recovery.recover(engine, server, account, g.dry_run)
    finally:
        engine.close()
    _emit(g, {"ok": all(o.ok for o in outcomes),
              "recovered": [outcome_dict(o) for o in outcomes]},
          "\n".join(outcome_text(o, g.dry_run) for o in outcomes)
          or "no case records on the server")
    sys.exit(_exit_for_many(outcomes))


@cli.command()
@click.argument("server", required=False)
@click.pass_obj
def check(g: Globals, server: str | None) -> None:
    """Read-only: validate config, reach each server, report its capabilities."""
    from agent.engine.checks import check_servers

    engine = _engine(g)
    try:
        report = check_servers(engine, server)
    finally:
        engine.close()
    ok = all(r["ok"] for r in report)
    _emit(g, {"ok": ok, "servers": report}, "\n".join(
        f"{r['server']}: {'ok' if r['ok'] else 'PROBLEM'}\n" + "\n".join(
            f"  {line}" for line in r["lines"]) for r in report))
    # Only unreachable servers wrong: retry later (75); anything else needs fixing (1).
    failing = [r for r in report if not r["ok"]]
    sys.exit(EXIT_OK if ok else EXIT_BUSY if all(r["unreachable"] for r in failing)
             else EXIT_FAILED)


@cli.command("preview-landing")
@click.option("--language", help="en, es, pt, nl, de or fr (default: branding.language).")
@click.pass_obj
def preview_landing(g: Globals, language: str | None) -> None:
    """Render the landing page to stdout with the configured branding."""
    cfg = config_mod.load(g.config_path)
    click.echo(landing.render(cfg.landing_pages_dir, cfg.branding, language), nl=False)
