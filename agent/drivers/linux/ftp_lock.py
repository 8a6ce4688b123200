"""ftp_lock: none of the account's FTP users can log in; exactly those come back afterwards.

Mechanism (linux driver, Pure-FTPd): virtual users live in the PureDB source file (pure-pw
format, `login:hash:uid:gid:...`); a user belongs to the account whose uid it maps to.
Locking prefixes the hash with `!` (a crypt hash can never match it) and recompiles the
.pdb, which Pure-FTPd rereads on every login. Users already starting with `!` are left
alone and stay disabled. The account's own system login is put into /etc/ftpusers, the
deny list of Pure-FTPd's PAM service. Both files are shared by every account on the
server, so edits are line-level under a server-wide lock and recomputed on the current
content.

The lock only refuses new logins; once it is in place (the .pdb rebuilt, the deny list
written), the open Pure-FTPd sessions of exactly the logins this step locked are ended
(agent/steps/ftp_sessions.py: `pure-ftpwho -s`, then SIGTERM to those session processes),
so a client that reconnects meets the lock. Without a runnable `linux.pure_ftpwho` the step
refuses at plan time. Logins disabled before the case are not this step's locks: their
sessions, like their lines, are left alone. Nothing is undone for the ended sessions.
"""

from __future__ import annotations

from typing import Any

from agent.drivers import linux
from agent.drivers.linux import service_probes
from agent.errors import StepError, VerifyFailed
from agent.steps import ftp_sessions
from agent.steps.actions import Run, carry_out
from agent.steps.edit_lines import EditLines, file_lines
from agent.steps.protocol import Context, Plan

LOCK = "ftp"


class FtpLock:
    """Locks the account's Pure-FTPd virtual users and its system FTP login."""

    name = "ftp_lock"

    def plan(self, ctx: Context) -> Plan:
        paths = ctx.server.linux
        others = service_probes.foreign_ftp_logins(service_probes.pureftpd_logins(
            ctx.conn, paths.pureftpd_auth_dir, paths.pureftpd_logins), paths.pureftpd_pdb)
        if others:
            raise StepError(f"Pure-FTPd authenticates with {', '.join(others)}, which "
                            "ftp_lock does not control: a locked account could still log in "
                            "(`unix` never reads /etc/ftpusers). Use puredb and pam only; see "
                            "docs/linux-host.md")
        uid = linux.passwd_entry(ctx.conn, paths, ctx.account)[2]
        pairs, locked, already = [], [], []
        for line in _lines(ctx, paths.pureftpd_passwd):
            fields = line.split(":")
            if len(fields) < 4 or fields[2] != uid:
                continue
            if fields[1].startswith(("!", "*")):
                already.append(fields[0])
                continue
            pairs.append((line, ":".join([fields[0], "!" + fields[1], *fields[2:]])))
            locked.append(fields[0])
        actions: list = []
        if pairs:
            actions.append(EditLines(paths.pureftpd_passwd, tuple(pairs), tuple(
                f"lock FTP user {user} (prefix !)" for user in locked)))
            actions.append(_mkdb(paths))
        deny_added = False
        if paths.ftpusers:
            listed = ctx.account in [x.strip() for x in _lines(ctx, paths.ftpusers)]
            if not listed:
                actions.append(EditLines(paths.ftpusers, (("", ctx.account),),
                                         (f"add {ctx.account} (deny its own FTP login)",)))
                deny_added = True
        # After the lock is in place: a client that reconnects meets it.
        kill = ftp_sessions.kill_sessions(paths.pure_ftpwho, [(user, uid) for user in locked]
                                          + ([(ctx.account, uid)] if deny_added else []))
        if kill:
            ftp_sessions.require_pure_ftpwho(ctx.conn, paths.pure_ftpwho, "linux.pure_ftpwho")
        undo = {"pairs": [list(p) for p in pairs], "locked": locked, "already_disabled": already,
                "deny_added": deny_added}
        return Plan(self.name, actions + kill, undo=undo, lock=LOCK, facts={
            "ftp_users": locked, "already_disabled": already,
            "sessions_ended": [name for a in kill for name, _uid in a.logins]})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        paths = ctx.server.linux
        actions: list = []
        if undo["pairs"]:
            locked = EditLines(paths.pureftpd_passwd, tuple(tuple(p) for p in undo["pairs"]), ())
            actions.append(locked.reversed(tuple(f"unlock FTP user {u}" for u in undo["locked"])))
            actions.append(_mkdb(paths))
        if undo["deny_added"]:
            actions.append(EditLines(paths.ftpusers, ((ctx.account, ""),),
                                     (f"remove {ctx.account}",)))
        return Plan(self.name, actions, undo=undo, lock=LOCK)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read what Pure-FTPd reads: the users' hashes, a fresh .pdb and the deny list."""
        paths = ctx.server.linux
        problems = []
        hashes = {line.split(":")[0]: line.split(":")[1] for line in
                  _lines(ctx, paths.pureftpd_passwd) if line.count(":") >= 3}
        for user in undo["locked"]:
            if hashes.get(user, "").startswith("!") != suspended:
                problems.append(f"FTP user {user} is {'not ' if suspended else ''}locked")
        if undo["locked"]:
            # `test A -ot B` is also true when A is missing and B exists.
            older = ctx.conn.run(["test", paths.pureftpd_pdb, "-ot", paths.pureftpd_passwd],
                                 ok_codes=(0, 1)).rc == 0
            if older:
                problems.append(f"{paths.pureftpd_pdb} is missing or older than its source")
        if undo["deny_added"]:
            listed = ctx.account in [x.strip() for x in _lines(ctx, paths.ftpusers)]
            if listed != suspended:
                problems.append(f"{ctx.account} is {'not ' if suspended else ''}in "
                                f"{paths.ftpusers}")
        if problems:
            raise VerifyFailed("; ".join(problems))


def _lines(ctx: Context, path: str) -> list[str]:
    return file_lines(ctx.conn.read(path))


def _mkdb(paths) -> Run:  # noqa: ANN001 - LinuxPaths
    return Run([paths.pure_pw, "mkdb", paths.pureftpd_pdb, "-f", paths.pureftpd_passwd])
