"""panel_lock's part for an account's team users (review F9): suspended through cPanel's own
UAPI functions, and put back as they were.

[SRC] asmrdevelop/cpanel @393631a2 Cpanel/Team/Config.pm. `Team::suspend_team_user`
(suspend_team_user, 1535-1592) puts `!!` before the team user's password, sets a suspend
date, locks its MySQL user OWNER_NAME and purges its sessions. `Team::reinstate_team_user`
(2010-2028) clears that date and the `!!`, but also cancels an expiry that has passed (an
expired team user would log in again) and unlocks the MySQL user whatever the user's roles
(one without the `database` or `admin` role has it locked from its creation on, Cpanel/
API/Team.pm:244-246). So on reversal the agent:
- reinstates only the users it suspended, and only while they are still suspended;
- leaves a user whose expiry passed during the case as it is (still suspended, which is
  what an expired user is as far as logins go) and says so;
- locks the MySQL user again (scripts/suspendmysqlusers in its team mode, `OWNER_NAME 1`)
  when the user has neither role, as unsuspendacct's unsuspend_team does (1674-1688).
Team users suspended before the case (by the owner, or as the team by suspendacct: `!!`
without a date) are not touched. The team file's lines are written back by cPanel in its
own form (`,` for an empty suspend or expiry field), so the file is the same in content,
not byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

from agent.drivers.cpanel.facts import Panel, _records, marker
from agent.errors import AgentError
from agent.steps.actions import Run, Skipped
from agent.steps.protocol import Context

NEEDS_MYSQL = re.compile(r"^(database|admin)$")  # Cpanel/Team/Constants.pm:82
# Team user names pass Cpanel::Validate::Username::is_strictly_valid (Config.pm:665); the
# agent passes on only names of this shape (a line written into the file by hand may differ).
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def team(ctx: Context, user: str) -> tuple[list[dict[str, Any]], str]:
    """Return Team::list_team's records of `user`, and why they are unknown ("" when known);
    a server without the Team module (before cPanel 11.106) has no team users."""
    panel = Panel(ctx.server, ctx.conn)
    try:
        rows = _records(panel.query(panel.uapi(user, "Team::list_team")), None,
                        "Team::list_team")
    except AgentError as exc:
        if "Failed to load module" in str(exc):
            return [], ""
        return [], str(exc)
    return [r for r in rows if isinstance(r.get("username"), str)], ""


def is_open(row: dict[str, Any]) -> bool:
    """True when the team user can log in now: no `!` before its password, no suspend date."""
    return not str(row.get("password") or "").startswith("!") and not row.get("suspend_date")


def expired(row: dict[str, Any], now: float) -> bool:
    """True when the team user's expiry date has passed."""
    date = str(row.get("expire_date") or "")
    return date.isdigit() and int(date) <= now


def needs_mysql(row: dict[str, Any]) -> bool:
    """True when a role of the team user keeps its MySQL user open (database, admin)."""
    roles = row.get("roles") or []
    roles = roles.split(",") if isinstance(roles, str) else roles
    return any(NEEDS_MYSQL.match(str(r)) for part in roles for r in str(part).split(","))


def suspend_plan(ctx: Context, user: str) -> tuple[list[Any], dict[str, Any]]:
    """Return the actions suspending every open team user of `user`, and the undo record
    (`team_suspended`, `team_db_relock`)."""
    rows, why = team(ctx, user)
    panel = Panel(ctx.server, ctx.conn)
    names = sorted(str(r["username"]) for r in rows if is_open(r) and NAME.match(r["username"]))
    odd = sorted(str(r["username"]) for r in rows if is_open(r) and not NAME.match(r["username"]))
    actions: list[Any] = [panel.act(panel.uapi(user, "Team::suspend_team_user",
                                               [("user", n), ("reason", marker(ctx.case_id))]))
                          for n in names]
    if why:
        actions.append(Skipped(f"team users of {user} could not be listed ({why}); any there "
                               "are can still log in to cPanel"))
    if odd:
        actions.append(Skipped(f"team users of {user} with names the agent does not pass on "
                               f"({', '.join(odd)[:200]}) can still log in to cPanel"))
    relock = sorted(str(r["username"]) for r in rows
                    if r["username"] in names and not needs_mysql(r))
    return actions, {"team_suspended": names, "team_db_relock": relock}


def revert_plan(ctx: Context, user: str, undo: dict[str, Any]) -> list[Any]:
    """Return the actions reinstating the team users this case suspended that still are."""
    names = undo.get("team_suspended") or []
    if not names:
        return []
    rows, why = team(ctx, user)
    if why:
        raise AgentError(f"the team users of {user} could not be listed: {why}")
    panel = Panel(ctx.server, ctx.conn)
    s = ctx.server.cpanel
    by_name = {r["username"]: r for r in rows}
    actions: list[Any] = []
    for name in names:
        row = by_name.get(name)
        if row is None or not row.get("suspend_date"):
            continue  # removed, or reinstated by someone else meanwhile
        if expired(row, ctx.now):
            actions.append(Skipped(f"team user {name} of {user}: its expiry passed during the "
                                   "case, left suspended (reinstating would cancel the expiry)"))
            continue
        actions.append(panel.act(panel.uapi(user, "Team::reinstate_team_user",
                                            [("user", name)])))
        if name in (undo.get("team_db_relock") or []):
            actions.append(Run([s.suspendmysqlusers, f"{user}_{name}", "1"]))
    return actions


def problems(ctx: Context, user: str, undo: dict[str, Any], suspended: bool) -> list[str]:
    """Re-read the team: suspended, no team user can log in; lifted, every team user this
    case suspended logs in again unless its expiry passed or it is gone."""
    if not suspended and not undo.get("team_suspended"):
        return []  # none of this case's to come back: no API call on the hot path
    rows, why = team(ctx, user)
    if why:
        return [f"the team users could not be listed ({why})"]
    if suspended:
        still = sorted(r["username"] for r in rows if is_open(r))
        return [f"team users can still log in: {', '.join(still)}"] if still else []
    ours = set(undo.get("team_suspended") or [])
    shut = sorted(r["username"] for r in rows if r["username"] in ours and not is_open(r)
                  and not expired(r, ctx.now))
    return [f"team users are still suspended: {', '.join(shut)}"] if shut else []
