"""cPanel team users as Team::list_team reports them (review F9).

[SRC] asmrdevelop/cpanel @393631a2 Cpanel/Team/Config.pm: /var/cpanel/team/OWNER holds a
header `OWNER VERSION` and one line per team user, `name:notes:roles:password:created:
contact:guid:locale:suspend:expire` (_parse_config, lines 274-313; suspend and expire are
`date,reason`). list_team's fields are the documented ones (api.docs.cpanel.net, UAPI
Team::list_team). Only listing is simulated: the agent does not lock team users yet.
"""

from __future__ import annotations

from . import store

TEAM_DIR = "/var/cpanel/team"


def list_team(owner: str, args: dict[str, str]) -> list[dict]:
    """Team::list_team of `owner` (an empty list without a team file)."""
    lines = store.read(f"{TEAM_DIR}/{owner}").splitlines()
    out = []
    for line in lines[1:]:
        fields = (line.split(":") + [""] * 10)[:10]
        if not fields[0]:
            continue
        suspend = (fields[8].split(",", 1) + [""])[:2]
        expire = (fields[9].split(",", 1) + [""])[:2]
        out.append({"username": fields[0], "notes": fields[1],
                    "roles": [r for r in fields[2].split(",") if r],
                    "password": fields[3], "created": fields[4],
                    "contact-email": fields[5].split(",")[0], "locale": fields[7],
                    "suspend_date": suspend[0], "suspend_reason": suspend[1],
                    "expire_date": expire[0], "expire_reason": expire[1], "lastlogin": ""})
    return out
