"""SMTP AUTH withdrawn from the whole server while its mail grade is on (firewall_block with
port 25 left open, so that mail for the domains still arrives, lockouts.md 1.8).

A client set up for port 25 could otherwise still authenticate and send. Exim offers AUTH
only to the hosts `auth_advertise_hosts` lists, expanded at every connection, and refuses
an AUTH it did not offer ("503 AUTH command used when not advertised"). Prepared once
(docs/linux-host.md, "Whole server"), the option expands on a flag file of the agent's,
`<exim_hook_dir>/server.no-auth`: while it exists no host is offered AUTH, on any port.
Debian's exim4.conf.template never sets the option in its main section (only in comments),
so the one line in exim4.conf.localmacros is the whole preparation. On cPanel the same line
goes in through WHM's Exim Configuration Manager, Advanced Editor (docs/cpanel.md, "Whole
server"), with the flag at `cpanel.exim_no_auth_flag`: `EximAuth(cpanel_exim)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from agent.errors import StepError
from agent.steps.actions import FileState, Write, file_state
from agent.steps.protocol import Context

FLAG = "server.no-auth"


class EximPaths(NamedTuple):
    """Where a server's Exim is, the flag file that withdraws AUTH, and the doc that says
    how to prepare it."""

    exim: str
    flag: str
    doc: str


def flag_path(paths: Any) -> str:
    """Return the flag file whose presence withdraws SMTP AUTH server-wide (linux)."""
    return f"{paths.exim_hook_dir}/{FLAG}"


def linux_exim(server: Any) -> EximPaths:
    """The linux driver's Exim: `linux.exim` and the flag in `linux.exim_hook_dir`."""
    return EximPaths(server.linux.exim, flag_path(server.linux),
                     "docs/linux-host.md, 'Whole server'")


def cpanel_exim(server: Any) -> EximPaths:
    """cPanel's Exim: `cpanel.exim` and the flag at `cpanel.exim_no_auth_flag`."""
    return EximPaths(server.cpanel.exim, server.cpanel.exim_no_auth_flag,
                     "docs/cpanel.md, 'Whole server'")


def option_line(where: Any) -> str:
    """Return the Exim main-configuration line that makes AUTH depend on the flag (`where`:
    EximPaths, or a linux server's LinuxPaths)."""
    flag = where.flag if isinstance(where, EximPaths) else flag_path(where)
    return "auth_advertise_hosts = ${if exists{" + flag + "}{}{*}}"


def prepared(conn: Any, where: Any) -> tuple[bool, str]:
    """Return whether Exim's auth_advertise_hosts depends on the flag, and the option as
    `exim -bP` shows it (`where` as for option_line)."""
    exim, flag = (where.exim, where.flag) if isinstance(where, EximPaths) else (
        where.exim, flag_path(where))
    shown = conn.run([exim, "-bP", "auth_advertise_hosts"], ok_codes=(0, 1)).text.strip()
    return flag in shown, shown


class EximAuth:
    """The flag file, written with the firewall table and removed with it."""

    def __init__(self, where: Callable[[Any], EximPaths] = linux_exim) -> None:
        self.where = where

    def plan(self, ctx: Context) -> tuple[list, dict | None, str]:
        """Return the actions, the undo data and a note; StepError when Exim runs here but
        would go on offering AUTH whatever the flag says."""
        where = self.where(ctx.server)
        if not ctx.conn.stat(where.exim).exists:
            return [], None, "no Exim at " + where.exim + ": the probe of port 25 decides"
        ok, shown = prepared(ctx.conn, where)
        if not ok:
            raise StepError(f"Exim on {ctx.server.name} offers SMTP AUTH on port 25 whatever "
                            f"the agent does ({shown or 'auth_advertise_hosts unset'}): add "
                            f"`{option_line(where)}` to its main configuration "
                            f"({where.doc}), or close 25 too (close_smtp: true)")
        path = where.flag
        before = file_state(ctx.conn.read_many([path])[path], ctx.server.name)
        return ([Write(before, self._flag(path, ctx.case_id))], {"flag": before.to_dict(),
                                                                 "case": ctx.case_id},
                "SMTP AUTH withdrawn on every port (Exim)")

    @staticmethod
    def _flag(path: str, case_id: str) -> FileState:
        return FileState(path, True, f"suspension-agent case {case_id}\n".encode(), 0o644, "0:0")

    def revert(self, ctx: Context, part: dict) -> list:
        """Return the actions that put the flag back as it was before the grade."""
        before = FileState.from_dict(part["flag"])
        current = file_state(ctx.conn.read_many([before.path])[before.path], ctx.server.name)
        return [Write(current, before)] if current != before else []

    def repair(self, ctx: Context, part: dict) -> list:
        """Return the actions that write the flag again when something removed it."""
        path = FileState.from_dict(part["flag"]).path
        current = file_state(ctx.conn.read_many([path])[path], ctx.server.name)
        wanted = self._flag(path, part["case"])
        return [Write(current, wanted)] if current != wanted else []
