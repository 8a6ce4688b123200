"""What panel_lock does not lock yet, said in its plan instead of claimed (review F9).

suspendacct also locks an account's team users (`!!` before their passwords,
Cpanel/Team/Config.pm suspend_team) and its Web Disk logins (`~/etc/webdav/shadow`,
scripts/suspendacct `suspendshadowfile`). The agent's panel_lock does neither yet, so its
plan names every team user and Web Disk login that can still get in, as `skip` lines (in
`plan`, the dry run and the audit) and in its facts; panel_suspend (suspendacct) locks them.

The Web Disk file is in the customer's home: it is read as the customer (`setpriv`), so a
symbolic link there to a file of root's is not read as root. Only its login names are kept.
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.facts import Panel, _records
from agent.drivers.cpanel.hazards import listed
from agent.errors import AgentError
from agent.steps.actions import Skipped
from agent.steps.protocol import Context

_SHOWN = 8  # logins listed before "and N more"


def team_users(ctx: Context, user: str) -> tuple[list[str], str]:
    """Return the team users not suspended now, and why they are unknown ("" when known)."""
    panel = Panel(ctx.server, ctx.conn)
    try:
        data = panel.query(panel.uapi(user, "Team::list_team"))
        rows = _records(data, None, "Team::list_team")
    except AgentError as exc:
        return [], str(exc)
    return sorted(str(r["username"]) for r in rows if r.get("username")
                  and not str(r.get("password") or "").startswith("!")
                  and not r.get("suspend_date")), ""


def webdisk_logins(ctx: Context, passwd: list[str]) -> tuple[list[str], str]:
    """Return the Web Disk logins in the account's `~/etc/webdav/shadow` not locked now."""
    s = ctx.server.cpanel
    path = f"{passwd[5]}/etc/webdav/shadow"
    result = ctx.conn.run([s.setpriv, f"--reuid={passwd[2]}", f"--regid={passwd[3]}",
                           "--clear-groups", "--", "cat", "--", path], ok_codes=(0, 1))
    if result.rc != 0:
        text = result.text.strip()
        return [], "" if "No such file" in text else (text[-200:] or "unreadable")
    names = []
    for line in result.text.splitlines():
        fields = line.split(":")
        if len(fields) > 1 and fields[0] and not fields[1].startswith(("!", "*")):
            names.append(fields[0])
    return sorted(names), ""


def lines(ctx: Context, user: str, passwd: list[str]) -> tuple[list[Skipped], dict[str, Any]]:
    """Return panel_lock's `skip` lines for what stays open, and the facts behind them."""
    team, team_why = team_users(ctx, user)
    webdisk, webdisk_why = webdisk_logins(ctx, passwd)
    out: list[Skipped] = []
    if team:
        out.append(Skipped(f"team users of {user} ({listed(team, _SHOWN)}) can still log in "
                           "to cPanel: panel_lock does not lock them (panel_suspend does)"))
    if team_why:
        out.append(Skipped(f"team users of {user} could not be listed ({team_why}); any "
                           "there are can still log in to cPanel"))
    if webdisk:
        out.append(Skipped(f"Web Disk logins of {user} ({listed(webdisk, _SHOWN)}) still read and "
                           "write files: panel_lock does not lock them (panel_suspend does)"))
    if webdisk_why:
        out.append(Skipped(f"the Web Disk logins of {user} could not be read ({webdisk_why})"))
    return out, {"team_users_left": team, "webdisk_logins_left": webdisk}
