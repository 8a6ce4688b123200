"""ftp_lock on cPanel: none of the account's FTP logins work; exactly those come back.

cPanel has no per-account FTP suspension in its APIs: the only native lock is the whole
`suspendacct` (reference/panels.md C1, A4), which would also take the site, mail, databases
and cron at once and break the graded ladder. What the agent does instead is what
suspendacct itself does to FTP, narrowed to the lines it must touch (A7 step 12): the
account's FTP logins live in `/etc/proftpd/<user>` (`login:hash:uid:gid:...`, read by
cPanel's FTP servers); each login that `Ftp::list_ftp` reports (types main and sub) gets
`!` before its hash (no password can match it), then `ftpupdate` is run as suspendacct
does. Logins whose hash already starts with `!` or `*` are left alone and stay locked. The
edit is recomputed on the file as it is when carried out, so a login the customer adds
meanwhile is not clobbered.

The edited file only refuses new logins. Once `ftpupdate` has run, the open Pure-FTPd
sessions of exactly the logins this step locked are ended, as root over the connector
(agent/steps/ftp_sessions.py: `pure-ftpwho -s`, then SIGTERM to those sessions, each only
while it runs as the uid of its line), so a client that reconnects meets the lock. Without
a runnable `cpanel.pure_ftpwho` the step refuses at plan time, unless
`cpanel.ftp_sessions: leave` (a ProFTPD server, whose sessions pure-ftpwho cannot see) says
to leave sessions running, which the plan then states. Logins locked before the case are
left alone, sessions included; nothing is undone for the ended sessions.
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.facts import Panel, account_name
from agent.errors import StepError, VerifyFailed
from agent.steps import ftp_sessions
from agent.steps.actions import Run, Skipped, carry_out
from agent.steps.edit_lines import EditLines, file_lines
from agent.steps.protocol import Context, Plan

DISABLED = ("!", "*")


def passwd_file(ctx: Context) -> str:
    return f"{ctx.server.cpanel.ftp_passwd_dir}/{ctx.account}"


class FtpLock:
    """Locks a cPanel account's FTP logins in its FTP password file."""

    name = "ftp_lock"

    def plan(self, ctx: Context) -> Plan:
        user = account_name(ctx.account)
        logins = Panel(ctx.server, ctx.conn).ftp_accounts(user)
        path = passwd_file(ctx)
        raw = ctx.conn.read(path)
        lines = {line.split(":", 1)[0]: line for line in file_lines(raw) if ":" in line}
        pairs, locked, already, absent, sessions = [], [], [], [], []
        for entry in logins:
            line = lines.get(entry["user"])
            if line is None:
                absent.append(entry)
                continue
            login, hashed, rest = (line.split(":", 2) + [""])[:3]
            if hashed.startswith(DISABLED):
                already.append(login)
                continue
            pairs.append((line, f"{login}:!{hashed}:{rest}" if rest else f"{login}:!{hashed}"))
            locked.append(login)
            sessions.append((login, rest.split(":", 1)[0]))  # the uid its session runs as
        missing = [e["user"] for e in absent if e["type"] != "main"]
        if missing:
            raise StepError(f"Ftp::list_ftp lists {', '.join(missing[:5])}, which {path} does "
                            "not hold: ftp_lock cannot lock them; nothing was changed")
        leave = ctx.server.cpanel.ftp_sessions == "leave"
        kill = [] if leave else ftp_sessions.kill_sessions(ctx.server.cpanel.pure_ftpwho,
                                                           sessions)
        if kill:
            ftp_sessions.require_pure_ftpwho(ctx.conn, ctx.server.cpanel.pure_ftpwho,
                                             "cpanel.pure_ftpwho")
        actions: list = []
        if pairs:
            # The sessions are ended once the lock is in place: a reconnect meets it.
            actions = [EditLines(path, tuple(pairs), tuple(
                f"lock FTP login {login} (prefix !)" for login in locked)),
                Run([ctx.server.cpanel.ftpupdate], timeout=300), *kill]
            if leave:
                actions.append(Skipped("open FTP sessions of the locked logins are left "
                                       "running (cpanel.ftp_sessions: leave)"))
        note = "" if logins else "the account has no FTP logins"
        return Plan(self.name, actions, note=note,
                    facts={"locked": locked, "already_locked": already,
                           "main_login_not_in_file": [e["user"] for e in absent],
                           "sessions_ended": [name for a in kill for name, _uid in a.logins]},
                    undo={"path": path, "pairs": [list(p) for p in pairs], "locked": locked,
                          "already_locked": already})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        if not undo["pairs"]:
            return Plan(self.name, undo=undo)
        pairs = tuple((old, new) for old, new in undo["pairs"])
        edit = EditLines(undo["path"], pairs, ()).reversed(tuple(
            f"unlock FTP login {login}" for login in undo["locked"]))
        return Plan(self.name, [edit, Run([ctx.server.cpanel.ftpupdate], timeout=300)],
                    undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the FTP password file: each login is locked, or exactly as before."""
        if not undo["pairs"]:
            return
        lines = set(file_lines(ctx.conn.read(undo["path"])))
        problems = [f"FTP login {old.split(':', 1)[0]} is "
                    f"{'not locked' if suspended else 'not as before the case'}"
                    for old, new in undo["pairs"] if (new if suspended else old) not in lines]
        if problems:
            raise VerifyFailed(f"{undo['path']}: " + "; ".join(problems[:8]))
