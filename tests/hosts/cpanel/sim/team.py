"""cPanel team users (review F9): Team::list_team, suspend_team_user, reinstate_team_user,
and what suspendacct/unsuspendacct do to a team.

[SRC] asmrdevelop/cpanel @393631a2 Cpanel/Team/Config.pm: /var/cpanel/team/OWNER holds a
header `OWNER VERSION` and one line per team user, `name:notes:roles:password:created:
contact:guid:locale:suspend:expire` (_parse_config, lines 274-313; suspend and expire are
`date,reason`); every change writes every line back with `date,reason` even when both are
empty (_unparse_config, 410-425), so a file is not byte-identical after any change.
- suspend_team_user (1535-1592): `!!` before the password unless it starts with `!`
  already; the suspend date (now) and reason set unless a date is there or the suspension
  is the whole team's (suspend_as_team); the team user's MySQL user OWNER_NAME locked
  (suspendmysqlusers in its team mode); sessions purged. UAPI's documented
  `suspend_as_team` argument is not passed on (Cpanel/API/Team.pm:668-674,
  teamconfig.pm SUSPEND), so through UAPI a date is always set.
- reinstate_team_user (2010-2028): with a suspend date, the date and reason cleared and
  `!!` taken off unless the user's expiry has passed (_unsuspend_team_user, 1594-1645);
  an expiry that has passed is cancelled (so an expired user logs in again); the MySQL
  user unlocked whatever the user's roles.
- suspendacct/unsuspendacct (suspend_team 1647-1672, unsuspend_team 1674-1688): `!!` on
  every user without a date; back off for those without a suspend date whose expiry has
  not passed, and the MySQL user locked again when suspended or without a database role.
"""

from __future__ import annotations

import re
import time

from . import db, store

TEAM_DIR = "/var/cpanel/team"
NEEDS_MYSQL = re.compile(r"^(database|admin)$")  # Cpanel/Team/Constants.pm:82
FIELDS = ("username", "notes", "roles", "password", "created", "contact", "guid", "locale",
          "suspend_date", "suspend_reason", "expire_date", "expire_reason")


class TeamError(Exception):
    """A refusal, with cPanel's text."""


def _load(owner: str) -> tuple[str, list[dict[str, str]]]:
    lines = store.read(f"{TEAM_DIR}/{owner}").splitlines()
    users = []
    for line in lines[1:]:
        f = (line.split(":") + [""] * 10)[:10]
        if not f[0]:
            continue
        suspend = (f[8].split(",", 1) + [""])[:2]
        expire = (f[9].split(",", 1) + [""])[:2]
        users.append(dict(zip(FIELDS, f[:8] + suspend + expire, strict=True)))
    return (lines[0] if lines else f"{owner} 1.4"), users


def _save(owner: str, header: str, users: list[dict[str, str]]) -> None:
    lines = [header] + [":".join([u["username"], u["notes"], u["roles"], u["password"],
                                  u["created"], u["contact"], u["guid"], u["locale"],
                                  f"{u['suspend_date']},{u['suspend_reason']}",
                                  f"{u['expire_date']},{u['expire_reason']}"])
                        for u in users]
    store.write_atomic(f"{TEAM_DIR}/{owner}", "\n".join(lines) + "\n", mode=0o640)


def _expired(u: dict[str, str]) -> bool:
    return bool(u["expire_date"]) and int(u["expire_date"]) <= time.time()


def _find(users: list[dict[str, str]], name: str) -> dict[str, str]:
    for u in users:
        if u["username"] == name:
            return u
    raise TeamError(f"The team user “{name}” does not exist.")


def _needs_mysql(u: dict[str, str]) -> bool:
    return any(NEEDS_MYSQL.match(r) for r in u["roles"].split(","))


def list_team(owner: str, args: dict[str, str]) -> list[dict]:
    """Team::list_team of `owner` (an empty list without a team file)."""
    return [{"username": u["username"], "notes": u["notes"],
             "roles": [r for r in u["roles"].split(",") if r], "password": u["password"],
             "created": u["created"], "contact-email": u["contact"].split(",")[0],
             "locale": u["locale"], "suspend_date": u["suspend_date"],
             "suspend_reason": u["suspend_reason"], "expire_date": u["expire_date"],
             "expire_reason": u["expire_reason"], "lastlogin": ""}
            for u in _load(owner)[1]]


def _suspend(owner: str, name: str, reason: str, as_team: bool) -> None:
    header, users = _load(owner)
    u = _find(users, name)
    if not u["password"].startswith("!"):
        u["password"] = "!!" + u["password"]
    if not u["suspend_date"] and not as_team:
        u["suspend_date"], u["suspend_reason"] = str(int(time.time())), reason
    _save(owner, header, users)
    db.set_locked_one(f"{owner}_{name}", True)


def suspend_team_user(owner: str, args: dict[str, str]) -> int:
    """UAPI Team::suspend_team_user (user, reason)."""
    _suspend(owner, args.get("user", ""), args.get("reason", ""), as_team=False)
    return 1


def reinstate_team_user(owner: str, args: dict[str, str]) -> int:
    """UAPI Team::reinstate_team_user (user)."""
    header, users = _load(owner)
    u = _find(users, args.get("user", ""))
    if u["suspend_date"]:
        if not u["password"].startswith("!!"):
            raise TeamError(f"Team configuration file “{TEAM_DIR}/{owner}” is corrupt.")
        u["suspend_date"] = u["suspend_reason"] = ""
        if not _expired(u):
            u["password"] = u["password"][2:]
    if _expired(u):  # cancel_expire: an expired user is enabled again
        u["expire_date"] = u["expire_reason"] = ""
        u["password"] = u["password"].removeprefix("!!")
    _save(owner, header, users)
    db.set_locked_one(f"{owner}_{u['username']}", False)
    return 1


def suspend_team(owner: str) -> None:
    """suspendacct's part: every team user suspended as the team (no date)."""
    for u in _load(owner)[1]:
        _suspend(owner, u["username"], "", as_team=True)


def unsuspend_team(owner: str) -> None:
    """unsuspendacct's part: users without a suspend date back, MySQL locked by role."""
    header, users = _load(owner)
    if not users:
        return
    for u in users:
        if not u["suspend_date"] and not _expired(u):
            u["password"] = u["password"].removeprefix("!!")
    _save(owner, header, users)
    for u in users:
        if u["suspend_date"] or not _needs_mysql(u):
            db.set_locked_one(f"{owner}_{u['username']}", True)


def login(owner: str, name: str, password: str) -> bool:
    """True when team user `name` of `owner` may log in with `password` (cpsrvd)."""
    from .ftp import crypt_matches

    for u in _load(owner)[1]:
        if u["username"] == name:
            return not u["password"].startswith("!") and crypt_matches(password, u["password"])
    return False
