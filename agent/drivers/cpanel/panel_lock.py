"""panel_lock on cPanel: the account's own logins (cPanel, webmail as the account, SSH, SFTP).

cPanel has no function that blocks only an account's login: WHM's answer is `suspendacct`
(reference/panels.md A4: "no WHM function named suspend login exists"), which also takes
the site, mail, databases and cron. What the agent does instead is the login part of what
suspendacct does (A7 step 3): the account's password hash gets a `!` before it (cpsrvd and
sshd check the system hash, so cPanel, webmail-as-the-account, SSH and SFTP logins fail)
and its shell becomes cPanel's own `noshell` (what cPanel gives accounts without shell
access, A8). The account also joins cPanel's SSH deny group (ssh_deny.py), which stops SSH
key logins and port forwarding, as suspendacct does. The exact prior hash and shell are
kept and put back, the group left again only when this step put it there; a hash already
locked is left alone. The account's team users are suspended through cPanel's Team
functions and reinstated after (team_lock.py). Open cPanel sessions are not purged (no
documented function for it); with `kill_processes: true` the account's processes are
killed (that part cannot be undone).

Side effect to know: cPanel's `listsuspended` decides "suspended" from the hash (A5), so
while this lock is on, WHM lists the account as suspended with reason "Unknown". The
agent's panel_suspend knows this lock is its own (see panel_suspend.py).
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel import left_open, ssh_deny, team_lock
from agent.drivers.cpanel.facts import Panel, account_name
from agent.errors import BadInput, StepError, VerifyFailed
from agent.steps import account_files, login_hash
from agent.steps.actions import Run, carry_out
from agent.steps.protocol import Context, Plan


def login_state(ctx: Context) -> tuple[str, str]:
    """Return the account's shadow hash and shell, read from the system databases."""
    passwd, shadow = login_entry(ctx)
    return shadow[1], passwd[6]


def login_entry(ctx: Context) -> tuple[list[str], list[str]]:
    """Return the account's passwd and shadow entries (fields), read from the system
    databases; an account without both, or a malformed passwd entry, is BadInput."""
    s = ctx.server.cpanel
    found = []
    for db in ("passwd", "shadow"):
        result = ctx.conn.run([s.getent, db, ctx.account], ok_codes=(0, 2))
        fields = result.text.rstrip("\n").split(":")
        if result.rc == 2 or fields[0] != ctx.account or len(fields) < 2:
            raise BadInput(f"account {ctx.account!r} has no {db} entry on {ctx.server.name}")
        found.append(fields)
    passwd, shadow = found
    if len(passwd) < 7:
        raise BadInput(f"the passwd entry of {ctx.account!r} is malformed")
    return passwd, shadow


class PanelLock:
    """Locks a cPanel account's password and shell; puts back exactly what was there."""

    name = "panel_lock"

    def plan(self, ctx: Context) -> Plan:
        s = ctx.server.cpanel
        user = account_name(ctx.account)
        passwd, shadow = login_entry(ctx)
        hashed, shell = shadow[1], passwd[6]
        lock_here = not hashed.startswith(("!", "*"))
        group_here = user not in ssh_deny.require(ctx, user)
        argv = [s.usermod, *(["--lock"] if lock_here else []),
                *(["--shell", s.noshell] if shell != s.noshell else []),
                *(["--append", "--groups", s.ssh_deny_group] if group_here else []), user]
        actions: list = [account_files.run(argv)] if len(argv) > 2 else []
        if ctx.params.get("kill_processes"):
            actions.append(Run(["pkill", "--signal", "KILL", "--uid", user], ok_codes=(0, 1)))
        team_actions, team_undo = team_lock.suspend_plan(ctx, user)
        skips, left = left_open.lines(ctx, user, passwd)
        return Plan(self.name, actions + team_actions + skips,
                    facts={"shell": shell, "locked_before": not lock_here,
                           "ssh_denied_before": not group_here,
                           "team_users_locked": team_undo["team_suspended"], **left},
                    undo={**login_hash.kept(hashed), "shell": shell, "locked_here": lock_here,
                          "group_added": s.ssh_deny_group if group_here else "",
                          **team_undo})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        s = ctx.server.cpanel
        hashed, shell = login_state(ctx)
        # --unlock removes the one `!` --lock added; only when the hash is exactly that (an
        # admin who changed the password meanwhile keeps the new one).
        unlock = (undo["locked_here"] and hashed.startswith("!")
                  and login_hash.is_before(hashed[1:], undo))
        argv = [s.usermod, *(["--unlock"] if unlock else []),
                *(["--shell", undo["shell"]] if shell != undo["shell"] else []), ctx.account]
        actions: list = [account_files.run(argv)] if len(argv) > 2 else []
        # A change journaled before the deny group was used has no `group_added`.
        group = undo.get("group_added") or ""
        if group and ctx.account in (ssh_deny.members(ctx) or []):
            actions.append(account_files.run([s.gpasswd, "--delete", ctx.account, group]))
        actions += team_lock.revert_plan(ctx, ctx.account, undo)
        return Plan(self.name, actions, undo=undo)

    def repair_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan | None:
        """The lock put back while the case is open, when something lifted it: an admin's
        `unsuspendacct` strips every leading `!` of the hash (scripts/unsuspendacct:242-243)
        and takes the account out of the SSH deny group. None while all is in place; a
        password changed meanwhile is not locked again but reported (StepError)."""
        s = ctx.server.cpanel
        hashed, shell = login_state(ctx)
        argv, said = [s.usermod], []
        if undo["locked_here"] and not hashed.startswith(("!", "*")):
            if not login_hash.is_before(hashed, undo):
                raise StepError("the password hash is no longer locked and is not the one "
                                "from before the case (a new password?): not locked again")
            argv.append("--lock")
            said.append("the password hash was unlocked")
        if shell != s.noshell:
            argv += ["--shell", s.noshell]
            said.append(f"the shell is {shell}")
        group = undo.get("group_added") or ""
        if group and ctx.account not in (ssh_deny.members(ctx) or []):
            argv += ["--append", "--groups", group]
            said.append(f"the account is no longer in {group}")
        if not said:
            return None
        return Plan(self.name, [account_files.run([*argv, ctx.account])],
                    note="; ".join(said), undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the hash and shell, the shell the panel reports (accountsummary), the deny
        group's members and, suspended, what sshd's configuration denies the account."""
        s = ctx.server.cpanel
        hashed, shell = login_state(ctx)
        problems = []
        if suspended and not hashed.startswith(("!", "*")):
            problems.append("the password hash is not locked")
        if not suspended and undo["locked_here"] and not login_hash.is_before(hashed, undo):
            problems.append("the password hash is not the one from before the case")
        group = undo.get("group_added") or ""
        if suspended and ctx.account not in (ssh_deny.members(ctx) or []):
            problems.append(f"the account is not in the group {s.ssh_deny_group}")
        if suspended and not ssh_deny.denied_by_sshd(ctx, ctx.account):
            problems.append(f"sshd does not deny the group {s.ssh_deny_group}")
        if not suspended and group and ctx.account in (ssh_deny.members(ctx) or []):
            problems.append(f"the account is still in the group {group}")
        want = s.noshell if suspended else undo["shell"]
        if shell != want:
            problems.append(f"the shell is {shell}, expected {want}")
        panel_shell = Panel(ctx.server, ctx.conn).summary(ctx.account).get("shell")
        if panel_shell not in (None, "", want):
            problems.append(f"accountsummary reports shell {panel_shell}, expected {want}")
        problems += team_lock.problems(ctx, ctx.account, undo, suspended)
        if problems:
            raise VerifyFailed("; ".join(problems))
