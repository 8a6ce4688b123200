"""SMTP AUTH withdrawn from the whole server while its mail grade is on (firewall_block with
port 25 left open, so that mail for the domains still arrives, lockouts.md 1.8).

A client set up for port 25 could otherwise still authenticate and send. Exim offers AUTH
only to the hosts `auth_advertise_hosts` lists, expanded at every connection, and refuses
an AUTH it did not offer ("503 AUTH command used when not advertised"). Prepared once
(docs/linux-host.md, "Whole server"), the option expands on a flag file of the agent's,
`<exim_hook_dir>/server.no-auth`: while it exists no host is offered AUTH, on any port.
Debian's exim4.conf.template never sets the option in its main section (only in comments),
so the one line in exim4.conf.localmacros is the whole preparation.
"""

from __future__ import annotations

from typing import Any

from agent.errors import StepError
from agent.steps.actions import FileState, Write, file_state
from agent.steps.protocol import Context

FLAG = "server.no-auth"


def flag_path(paths: Any) -> str:
    """Return the flag file whose presence withdraws SMTP AUTH server-wide."""
    return f"{paths.exim_hook_dir}/{FLAG}"


def option_line(paths: Any) -> str:
    """Return the Exim main-configuration line that makes AUTH depend on the flag."""
    return "auth_advertise_hosts = ${if exists{" + flag_path(paths) + "}{}{*}}"


def prepared(conn: Any, paths: Any) -> tuple[bool, str]:
    """Return whether Exim's auth_advertise_hosts depends on the flag, and the option as
    `exim -bP` shows it."""
    shown = conn.run([paths.exim, "-bP", "auth_advertise_hosts"], ok_codes=(0, 1)).text.strip()
    return flag_path(paths) in shown, shown


class EximAuth:
    """The flag file, written with the firewall table and removed with it."""

    def plan(self, ctx: Context) -> tuple[list, dict | None, str]:
        """Return the actions, the undo data and a note; StepError when Exim runs here but
        would go on offering AUTH whatever the flag says."""
        paths = ctx.server.linux
        if not ctx.conn.stat(paths.exim).exists:
            return [], None, "no Exim at " + paths.exim + ": the probe of port 25 decides"
        ok, shown = prepared(ctx.conn, paths)
        if not ok:
            raise StepError(f"Exim on {ctx.server.name} offers SMTP AUTH on port 25 whatever "
                            f"the agent does ({shown or 'auth_advertise_hosts unset'}): add "
                            f"`{option_line(paths)}` to its main configuration "
                            "(docs/linux-host.md, 'Whole server'), or close 25 too "
                            "(close_smtp: true)")
        path = flag_path(paths)
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
