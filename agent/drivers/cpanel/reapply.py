"""What must stay after `unsuspendacct`: recorded before suspendacct, re-applied after it.

`unsuspendacct` lifts more than the suspension (reference/panels.md A8, C2.4): it always
calls unsuspend_outgoing_email, strips `*LOCKED*` from every mailbox password and the
leading `!` from the account's hash, and takes the shell from its own record (noshell when
that is missing). Whatever of that was in effect before the case's suspendacct (the
agent's own earlier grades, or an admin's locks) is recorded first and, after the unsuspend,
re-applied where it was lifted. Reading happens when the action is carried out, since what
unsuspendacct lifts is only known afterwards.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from agent.connector import each
from agent.drivers.cpanel import db_lock, ssh_deny
from agent.drivers.cpanel.facts import Panel, dbowner, flag
from agent.drivers.cpanel.mail_block import OUTGOING
from agent.drivers.cpanel.panel_lock import login_state
from agent.errors import AgentError
from agent.steps import account_files
from agent.steps.actions import carry_out
from agent.steps.protocol import Context


def ahead(ctx: Context, *reads: str, login: bool = False) -> Context:
    """Return `ctx` with a connector holding, read in one round trip, the panel reads
    `reads` of the account (Panel.read_calls; when the channel is the CLI, whose calls are
    commands) and with `login` its passwd and shadow entries, so that the step's reads that
    follow are answered from there. For a phase that only reads: never for an action that
    changes, then reads (it would see the state from before its change)."""
    panel = Panel(ctx.server, ctx.conn)
    argvs = ([c.argv() for c in panel.read_calls(ctx.account, *reads)]
             if panel.channel.via == "cli" else [])
    if login:
        s = ctx.server.cpanel
        argvs += [[s.getent, db, ctx.account] for db in ("passwd", "shadow")]
        argvs.append([s.getent, "group", s.ssh_deny_group])
    return dataclasses.replace(ctx, conn=each.held(ctx.conn, argvs))


def _db_locked(ctx: Context, panel: Panel) -> list[list[str]]:
    """Return the account's database users locked now (none when the server cannot say)."""
    try:
        names = (panel.db_users(ctx.account) + [dbowner(ctx.account)]
                 + db_lock.session_users(ctx))
        return [[u, h] for u, h, locked in db_lock.user_states(ctx, names) if locked]
    except AgentError:
        return []


def before_state(ctx: Context, panel: Panel, summary: dict[str, Any]) -> dict[str, Any]:
    """Return every lock in effect on the account now, as JSON-able data."""
    boxes = panel.mailboxes(ctx.account)
    hashed, shell = login_state(ctx)
    return {
        "outgoing": [mode for mode, (_on, _off, key) in OUTGOING.items()
                     if flag(summary.get(key))],
        "login_suspended": [b["email"] for b in boxes if b["login"]],
        "incoming_suspended": [b["email"] for b in boxes if b["incoming"]],
        "hash_locked": hashed.startswith(("!", "*")),
        "shell": shell,
        "db_locked": _db_locked(ctx, panel),
        # unsuspendacct takes the account out of the SSH deny group (review F9).
        "ssh_denied": ctx.account in (ssh_deny.members(ctx) or []),
    }


def _missing(ctx: Context, panel: Panel, summary: dict[str, Any],
             before: dict[str, Any]) -> dict[str, Any]:
    """Return what of `before` is not in effect now."""
    boxes = {b["email"]: b for b in panel.mailboxes(ctx.account)}
    hashed, shell = login_state(ctx)
    locked_now = {tuple(x) for x in _db_locked(ctx, panel)} if before["db_locked"] else set()
    return {
        "outgoing": [m for m in before["outgoing"] if not flag(summary.get(OUTGOING[m][2]))],
        "login": [e for e in before["login_suspended"] if e in boxes and not boxes[e]["login"]],
        "incoming": [e for e in before["incoming_suspended"]
                     if e in boxes and not boxes[e]["incoming"]],
        "hash": before["hash_locked"] and not hashed.startswith(("!", "*")),
        "shell": before["shell"] if shell != before["shell"] else None,
        "db": [x for x in before["db_locked"] if tuple(x) not in locked_now],
        # A record from before the deny group was used has no `ssh_denied`.
        "ssh": bool(before.get("ssh_denied"))
        and ctx.account not in (ssh_deny.members(ctx) or []),
    }


def differences(ctx: Context, panel: Panel, summary: dict[str, Any],
                before: dict[str, Any]) -> list[str]:
    """Return a line for each lock of `before` that is not in effect now."""
    gone = _missing(ctx, panel, summary, before)
    lines = [f"outgoing mail no longer {m}ed" for m in gone["outgoing"]]
    lines += [f"{e}: login no longer suspended" for e in gone["login"]]
    lines += [f"{e}: incoming mail no longer suspended" for e in gone["incoming"]]
    lines += ["the account's password hash is no longer locked"] if gone["hash"] else []
    lines += [f"the shell is no longer {gone['shell']}"] if gone["shell"] else []
    lines += [f"database user {u}@{h} is no longer locked" for u, h in gone["db"]]
    lines += [f"the account is no longer in the group {ctx.server.cpanel.ssh_deny_group}"
              ] if gone["ssh"] else []
    return lines


@dataclass
class Reapply:
    """After unsuspendacct: put back each lock of `before` that it lifted."""

    ctx: Context
    before: dict[str, Any]

    def describe(self) -> list[str]:
        b = self.before
        kept = [f"outgoing mail {m}ed" for m in b["outgoing"]]
        kept += [f"login of {e} suspended" for e in b["login_suspended"]]
        kept += [f"incoming mail of {e} suspended" for e in b["incoming_suspended"]]
        kept += ["password hash locked"] if b["hash_locked"] else []
        kept += [f"database user {u}@{h} locked" for u, h in b["db_locked"]]
        kept += ["SSH denied (group "
                 f"{self.ctx.server.cpanel.ssh_deny_group})"] if b.get("ssh_denied") else []
        return [f"check after unsuspendacct, re-apply if it lifted it: {k}" for k in kept] or [
            "check after unsuspendacct: nothing was locked before the suspension"]

    def carry_out(self, conn: Any) -> None:
        ctx, s = self.ctx, self.ctx.server.cpanel
        # The reads in one round trip; the changes after them go through `conn` itself.
        reads = ahead(dataclasses.replace(ctx, conn=conn), "summary", "mailboxes",
                      *(["db_users", "db_prefix"] if self.before["db_locked"] else []),
                      login=True)
        panel = Panel(ctx.server, reads.conn)
        gone = _missing(reads, panel, panel.summary(ctx.account), self.before)
        panel = Panel(ctx.server, conn)
        user = ctx.account
        actions: list = [panel.act(panel.whm(OUTGOING[m][0], [("user", user)]))
                         for m in gone["outgoing"]]
        actions += [panel.act(panel.uapi(user, "Email::suspend_login", [("email", e)]))
                    for e in gone["login"]]
        actions += [panel.act(panel.uapi(user, "Email::suspend_incoming", [("email", e)]))
                    for e in gone["incoming"]]
        if gone["hash"] or gone["shell"]:
            actions.append(account_files.run([s.usermod, *(["--lock"] if gone["hash"] else []),
                                *(["--shell", gone["shell"]] if gone["shell"] else []), user]))
        actions += [db_lock.alter(ctx, u, h, "LOCK") for u, h in gone["db"]]
        if gone["ssh"]:
            actions.append(account_files.run([s.gpasswd, "--add", user, s.ssh_deny_group]))
        carry_out(conn, actions)
