"""Command line: the only place where exceptions become exit codes (see design section 5)."""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import click

from agent import audit, callers, recovery, render, tree_verbs
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
    Unreachable,
)
from agent.forced import forced_args
from agent.journal import Journal
from agent.outcome import Outcome

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_BUSY, EXIT_CONFIG = 0, 1, 2, 3, 75, 78


@dataclass
class Globals:
    config_path: str | None
    json: bool
    dry_run: bool
    caller: str


def _exit_for(o: Outcome) -> int:
    if o.refused:
        return EXIT_CONFIG  # credentials the server refuses: retrying cannot help
    if o.unreachable:
        return EXIT_BUSY  # the journal holds what was under way; the next call finishes it
    if o.partial:
        return EXIT_PARTIAL
    return EXIT_OK if o.ok else EXIT_FAILED


def _exit_for_many(outcomes: list[Outcome]) -> int:
    """One exit for several targets: what needs a human first, then failures, then retries."""
    codes = {_exit_for(o) for o in outcomes}
    for code in (EXIT_PARTIAL, EXIT_CONFIG, EXIT_FAILED, EXIT_BUSY):
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
    engine = Engine(cfg, Journal(cfg.state_db), g.caller, now=_clock())
    engine.audit.muted = g.dry_run  # a dry run leaves nothing in the journal, events included
    return engine


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
    f = click.option("--reseller", metavar="NAME",
                     help="Target a reseller: its own and its sub-resellers' logins, then "
                          "every account of its tree.")(f)
    return click.option("--whole-server", is_flag=True,
                        help="Target the whole server (not available yet).")(f)


def _which(account: str | None, reseller: str | None, whole_server: bool) -> tuple[str, str]:
    """Return ("account" | "reseller", name) for the target the caller named, exactly one."""
    if whole_server:
        raise BadInput("whole-server targets are not available on any driver yet; "
                       "nothing was changed")
    if reseller is not None and account is not None:
        raise BadInput("name an ACCOUNT or --reseller NAME, not both")
    if reseller is not None:
        return "reseller", reseller
    if account is None:
        raise BadInput("name an ACCOUNT (or --reseller NAME / --whole-server)")
    return "account", account


class _Bar:
    """click's progress bar on the admin's terminal, for batches of many accounts."""

    def __init__(self) -> None:
        self._bar = None

    def start(self, total: int, label: str) -> None:
        if total > 1:
            self._bar = click.progressbar(length=total, label=label, file=sys.stderr)
            self._bar.__enter__()

    def advance(self, name: str) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _watch(g: Globals, engine: Engine) -> None:
    """Show batch progress only to a person at a terminal: never in --json, cron or pipes."""
    if not g.json and sys.stderr.isatty():
        engine.progress = _Bar()


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
    """Put ACCOUNT (or a reseller's tree) on SERVER under a hold and apply the playbook's
    due stages."""
    kind, name = _which(account, reseller, whole_server)
    engine = _engine(g)
    _watch(g, engine)
    try:
        verb = engine.suspend if kind == "account" else engine.suspend_reseller
        _finish(g, verb(server, name, playbook, hold, reason, g.dry_run))
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
    kind, name = _which(account, reseller, whole_server)
    engine = _engine(g)
    _watch(g, engine)
    try:
        verb = engine.unsuspend if kind == "account" else engine.unsuspend_reseller
        _finish(g, verb(server, name, hold, g.dry_run))
    finally:
        engine.close()


@cli.command()
@click.argument("server", required=False)
@click.argument("account", required=False)
@click.option("--reseller", metavar="NAME", help="Show a reseller's case and its accounts.")
@click.pass_obj
def status(g: Globals, server: str | None, account: str | None,
           reseller: str | None) -> None:
    """Show the state of one account, or of every tracked target.

    With SERVER, the server's own case records are read too: a record naming a case the
    journal does not know is reported as an error (exit 1) that names `recover`.
    """
    if reseller is not None:
        if server is None or account is not None:
            raise BadInput("status --reseller NAME needs SERVER and no ACCOUNT")
        engine = _engine(g)
        try:
            _finish(g, engine.report(tree_verbs.target(engine, server, reseller)[1]))
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
            o.warnings += warnings
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
    _emit(g, {"ok": ok, "targets": [render.outcome_dict(o) for o in outcomes]}
          | ({"warnings": warnings} if warnings else {}),
          "\n".join([render.outcome_text(o) for o in outcomes]
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
    _emit(g, {"ok": all(o.ok for o in outcomes),
              "processed": [render.outcome_dict(o) for o in outcomes]},
          "\n".join(render.outcome_text(o, g.dry_run) for o in outcomes) or "nothing due")
    sys.exit(_exit_for_many(outcomes))


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


# The admin verbs (recover, check, preview-landing) register themselves on `cli`.
from agent import cli_admin  # noqa: E402, F401
