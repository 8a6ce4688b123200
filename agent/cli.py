"""Command line: the only place where exceptions become exit codes (see design section 5)."""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import click

from agent import audit, landing, render
from agent import config as config_mod
from agent.engine import HOLDS, Engine
from agent.errors import (
    AgentError,
    AuthFailed,
    BadInput,
    Busy,
    ConfigError,
    HostKeyRefused,
    JournalError,
)
from agent.forced import forced_args
from agent.journal import Journal
from agent.ladder import ladder
from agent.outcome import Outcome

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_BUSY, EXIT_CONFIG = 0, 1, 2, 3, 75, 78


@dataclass
class Globals:
    config_path: str | None
    json: bool
    dry_run: bool
    caller: str


def _exit_for(o: Outcome) -> int:
    if o.unreachable:
        return EXIT_BUSY  # the journal holds what was under way; the next call finishes it
    if o.partial:
        return EXIT_PARTIAL
    return EXIT_OK if o.ok else EXIT_FAILED


def _exit_for_many(outcomes: list[Outcome]) -> int:
    """One exit for several targets: what needs a human first, then failures, then retries."""
    codes = {_exit_for(o) for o in outcomes}
    for code in (EXIT_PARTIAL, EXIT_FAILED, EXIT_BUSY):
        if code in codes:
            return code
    return EXIT_OK


# Tests only: a fixed "now" (epoch seconds) so that delays are exercised without waiting on
# the wall clock. Read here and nowhere else; unset in production, where time.time() rules.
TEST_NOW_ENV = "SUSPENSION_AGENT_TEST_NOW"


def _clock() -> Callable[[], float]:
    fixed = os.environ.get(TEST_NOW_ENV)
    if not fixed:
        return time.time
    try:
        value = float(fixed)
    except ValueError as exc:
        raise BadInput(f"{TEST_NOW_ENV} must be epoch seconds, not {fixed!r}") from exc
    return lambda: value


def _engine(g: Globals) -> Engine:
    cfg = config_mod.load(g.config_path)
    audit.configure(cfg.audit_log)
    return Engine(cfg, Journal(cfg.state_db), g.caller, now=_clock())


def _emit(g: Globals, obj: dict, text: str) -> None:
    click.echo(render.dumps(obj) if g.json else text)


def _finish(g: Globals, o: Outcome) -> None:
    _emit(g, render.outcome_dict(o), render.outcome_text(o, g.dry_run))
    sys.exit(_exit_for(o))


@click.group()
@click.option("--config", "config_path", metavar="PATH",
              help="Config file (default $SUSPENSION_AGENT_CONFIG, else "
                   f"{config_mod.DEFAULT_PATH}).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--dry-run", is_flag=True, help="Print the exact commands and diffs; change nothing.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, as_json: bool, dry_run: bool) -> None:
    """Graded, reversible suspension of hosting accounts."""
    caller = os.environ.get("SUSPENSION_AGENT_CALLER") or f"admin:{getpass.getuser()}"
    ctx.obj = Globals(config_path, as_json, dry_run, caller)


def _target_options(f):  # noqa: ANN001, ANN202
    f = click.option("--reseller", metavar="NAME", help="Target a reseller (not available yet).")(f)
    return click.option("--whole-server", is_flag=True,
                        help="Target the whole server (not available yet).")(f)


def _account_only(account: str | None, reseller: str | None, whole_server: bool) -> str:
    if reseller or whole_server:
        raise BadInput("reseller and whole-server targets are not available on any driver yet; "
                       "nothing was changed")
    if account is None:
        raise BadInput("name an ACCOUNT (or --reseller NAME / --whole-server)")
    return account


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@_target_options
@click.option("--playbook", metavar="NAME", help="Playbook in playbooks/ (default from config).")
@click.option("--hold", type=click.Choice(HOLDS), default="billing", show_default=True)
@click.option("--reason", metavar="TEXT", help="Why (kept in the journal and audit log).")
@click.pass_obj
def suspend(g: Globals, server: str, account: str | None, reseller: str | None,
            whole_server: bool, playbook: str | None, hold: str, reason: str | None) -> None:
    """Put ACCOUNT on SERVER under a hold and apply the playbook's due stages."""
    name = _account_only(account, reseller, whole_server)
    engine = _engine(g)
    try:
        _finish(g, engine.suspend(server, name, playbook, hold, reason, g.dry_run))
    finally:
        engine.close()


@cli.command()
@click.argument("server")
@click.argument("account", required=False)
@_target_options
@click.option("--hold", type=click.Choice(HOLDS), default="billing", show_default=True)
@click.pass_obj
def unsuspend(g: Globals, server: str, account: str | None, reseller: str | None,
              whole_server: bool, hold: str) -> None:
    """Lift a hold; when none is left, undo every change exactly, newest first."""
    name = _account_only(account, reseller, whole_server)
    engine = _engine(g)
    try:
        _finish(g, engine.unsuspend(server, name, hold, g.dry_run))
    finally:
        engine.close()


@cli.command()
@click.argument("server", required=False)
@click.argument("account", required=False)
@click.pass_obj
def status(g: Globals, server: str | None, account: str | None) -> None:
    """Show the state of one account, or of every tracked target."""
    engine = _engine(g)
    if account is not None and server is not None:
        _s, target = engine.account_target(server, account)
        _finish(g, engine.report(target))
    if server is not None:
        engine.server(server)
    outcomes = [engine.report(t) for t in engine.journal.targets(server)]
    _emit(g, {"ok": all(o.ok for o in outcomes),
              "targets": [render.outcome_dict(o) for o in outcomes]},
          "\n".join(render.outcome_text(o) for o in outcomes) or "nothing is suspended")
    sys.exit(EXIT_OK)


@cli.command()
@click.argument("server")
@click.argument("account")
@click.option("--playbook", metavar="NAME")
@click.pass_obj
def plan(g: Globals, server: str, account: str, playbook: str | None) -> None:
    """Print the whole ladder with the exact commands of each step; change nothing."""
    engine = _engine(g)
    try:
        stages = ladder(engine, server, account, playbook)
    finally:
        engine.close()
    errors = [{"step": e["step"], "message": e["error"]}
              for st in stages for e in st["steps"] if "error" in e]
    _emit(g, {"ok": not errors, "target": {"server": server, "kind": "account", "name": account},
              "stages": stages, "errors": errors}, render.ladder_text(stages))
    sys.exit(EXIT_FAILED if errors else EXIT_OK)


@cli.command()
@click.argument("server")
@click.argument("account")
@click.pass_obj
def history(g: Globals, server: str, account: str) -> None:
    """Show every recorded event of an account."""
    events = _engine(g).history(server, account)
    _emit(g, {"ok": True, "events": events}, render.history_text(events))


@cli.command()
@click.pass_obj
def tick(g: Globals) -> None:
    """Apply the stages that became due (run from cron or a systemd timer)."""
    engine = _engine(g)
    try:
        outcomes = engine.tick(dry_run=g.dry_run)
    finally:
        engine.close()
    _emit(g, {"ok": all(o.ok for o in outcomes),
              "processed": [render.outcome_dict(o) for o in outcomes]},
          "\n".join(render.outcome_text(o, g.dry_run) for o in outcomes) or "nothing due")
    sys.exit(_exit_for_many(outcomes))


@cli.command()
@click.argument("server", required=False)
@click.pass_obj
def check(g: Globals, server: str | None) -> None:
    """Read-only: validate config, reach each server, report its capabilities."""
    from agent.checks import check_servers

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


@cli.command("serve-ssh")
@click.option("--caller", default="billing", show_default=True,
              help="Who this SSH key belongs to (recorded in the audit log).")
@click.pass_obj
def serve_ssh(g: Globals, caller: str) -> None:
    """Forced-command entry: run the verb in $SSH_ORIGINAL_COMMAND with JSON output."""
    args = forced_args(os.environ.get("SSH_ORIGINAL_COMMAND", ""), g.config_path, g.dry_run)
    os.environ["SUSPENSION_AGENT_CALLER"] = f"ssh:{caller}"
    main(args)


def _fail(g_json: bool, code: int, message: str) -> None:
    if g_json:
        click.echo(render.dumps({"ok": False, "errors": [{"step": None, "message": message}],
                                 "exit": code}))
    else:
        click.echo(f"suspension-agent: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `suspension-agent` console script."""
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args[: next((i for i, a in enumerate(args) if not a.startswith("-")
                                       and (i == 0 or args[i - 1] != "--config")), len(args))]
    try:
        cli.main(args=args, prog_name="suspension-agent", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail(as_json, EXIT_FAILED, "aborted")
    except click.ClickException as exc:
        if as_json:
            _fail(True, EXIT_USAGE, exc.format_message())
        exc.show()
        sys.exit(EXIT_USAGE)
    except ConfigError as exc:
        _fail(as_json, EXIT_CONFIG, "bad config: " + str(exc))
    except (HostKeyRefused, AuthFailed, JournalError) as exc:
        _fail(as_json, EXIT_CONFIG, str(exc))
    except BadInput as exc:
        _fail(as_json, EXIT_USAGE, str(exc))
    except Busy as exc:
        _fail(as_json, EXIT_BUSY, str(exc))
    except AgentError as exc:
        _fail(as_json, EXIT_FAILED, str(exc))
