"""The command line's base: the click group, the shared options and helpers, exit codes and
`main`, the only place where exceptions become exit codes (design section 5). The verbs
register themselves on `cli` from agent/cli/verbs.py and agent/cli/admin.py."""

from __future__ import annotations

import getpass
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import click

from agent import __version__
from agent.cli.argv import hoist
from agent.cli.render import dumps, outcome_dict, outcome_text
from agent.config import config as config_mod
from agent.engine.engine import Engine
from agent.engine.outcome import Outcome
from agent.errors import (
    AgentError,
    AuthFailed,
    BadInput,
    Busy,
    ConfigError,
    HostKeyRefused,
    JournalError,
)
from agent.journal import audit
from agent.journal.journal import Journal

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_BUSY, EXIT_CONFIG = 0, 1, 2, 3, 75, 78
# Nothing failed, but the target is not in the state asked for: a hold or an invoice remains.
EXIT_REMAINS = 4


@dataclass
class Globals:
    config_path: str | None
    json: bool
    dry_run: bool
    caller: str
    verbose: bool = False
    quiet: bool = False


def _exit_for(o: Outcome) -> int:
    if o.refused:
        return EXIT_CONFIG  # credentials the server refuses: retrying cannot help
    if o.unreachable:
        return EXIT_BUSY  # the journal holds what was under way; the next call finishes it
    if o.partial:
        return EXIT_PARTIAL
    if not o.ok:
        return EXIT_FAILED
    return EXIT_REMAINS if o.not_lifted is not None else EXIT_OK


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
    audit.configure(cfg.audit_log, verbose=g.verbose)
    engine = Engine(cfg, Journal(cfg.state_db), g.caller, now=_clock())
    engine.audit.muted = g.dry_run  # a dry run leaves nothing in the journal, events included
    return engine


def _emit(g: Globals, obj: dict, text: str, code: int | None = None) -> None:
    """Print the reply: the JSON object, or the text (none with -q when the call's exit is
    0: cron mails only what needs a look)."""
    if g.json:
        click.echo(dumps(obj))
    elif not (g.quiet and code == EXIT_OK):
        click.echo(text)


def _finish(g: Globals, o: Outcome) -> None:
    code = _exit_for(o)
    _emit(g, outcome_dict(o), outcome_text(o, g.dry_run), code)
    sys.exit(code)


@click.group()
@click.version_option(__version__, prog_name="suspension-agent")
@click.option("--config", "config_path", metavar="PATH",
              help="Config file (default $SUSPENSION_AGENT_CONFIG, else "
                   f"{config_mod.DEFAULT_PATH}).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--dry-run", is_flag=True, help="Print the exact commands and diffs; change nothing.")
@click.option("-v", "--verbose", is_flag=True,
              help="Also print every command sent to a server, and the SSH library's "
                   "messages, on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when the call exits 0.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, as_json: bool, dry_run: bool,
        verbose: bool, quiet: bool) -> None:
    """Graded, reversible suspension of hosting accounts. Global options may also follow
    the verb."""
    caller = os.environ.get("SUSPENSION_AGENT_CALLER") or f"admin:{getpass.getuser()}"
    _library_logs(verbose)
    ctx.obj = Globals(config_path, as_json, dry_run, caller, verbose, quiet)


def _library_logs(verbose: bool) -> None:
    """Keep paramiko's own log (a traceback for every failed handshake) off the terminal:
    the agent reports the failure itself, once, as an error of the call; with -v its
    messages go to stderr."""
    log = logging.getLogger("paramiko")
    log.handlers = [logging.NullHandler()]
    log.propagate = False
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("paramiko: %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _target_options(f):  # noqa: ANN001, ANN202
    f = click.option("--reseller", metavar="NAME",
                     help="Target a reseller: its own and its sub-resellers' logins, then "
                          "every account of its tree.")(f)
    return click.option("--whole-server", is_flag=True,
                        help="Target the whole server: its admins' and resellers' logins, "
                             "then every account on it.")(f)


def _which(account: str | None, reseller: str | None, whole_server: bool) -> tuple[str, str]:
    """Return ("account" | "reseller" | "server", name) for the target the caller named,
    exactly one (a whole server's name is filled in by the verb: the server's)."""
    if sum(x is not None for x in (account, reseller)) + whole_server > 1:
        raise BadInput("name one target: an ACCOUNT, --reseller NAME or --whole-server")
    if whole_server:
        return "server", ""
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


def _fail(g_json: bool, code: int, message: str, kind: str | None = None) -> None:
    if g_json:
        error = {"step": None, "message": message} | ({"code": kind} if kind else {})
        click.echo(dumps({"ok": False, "errors": [error], "exit": code}))
    else:
        click.echo(f"suspension-agent: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `suspension-agent` console script."""
    args = hoist(sys.argv[1:] if argv is None else argv, cli.commands)
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
        _fail(as_json, EXIT_USAGE, str(exc), getattr(exc, "code", None))
    except Busy as exc:
        _fail(as_json, EXIT_BUSY, str(exc), getattr(exc, "code", None))
    except AgentError as exc:
        _fail(as_json, EXIT_FAILED, str(exc))

