"""What panel_lock does not lock yet, said in its plan instead of claimed (review F9).

suspendacct also locks an account's Web Disk logins (`~/etc/webdav/shadow`,
scripts/suspendacct `suspendshadowfile`). panel_lock does not (ftp_lock does, with the
other file logins), so panel_lock's plan names every Web Disk login still open when it
runs, as `skip` lines (in `plan`, the dry run and the audit) and in its facts. Team users
are locked by panel_lock (team_lock.py).

The Web Disk file is in the customer's home: it is read as the customer (`setpriv`), so a
symbolic link there to a file of root's is not read as root. Only its login names are kept.
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.hazards import listed
from agent.steps.actions import Skipped
from agent.steps.protocol import Context

_SHOWN = 8  # logins listed before "and N more"


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
    webdisk, webdisk_why = webdisk_logins(ctx, passwd)
    out: list[Skipped] = []
    if webdisk:
        out.append(Skipped(f"Web Disk logins of {user} ({listed(webdisk, _SHOWN)}) still read and "
                           "write files: panel_lock does not lock them (ftp_lock does)"))
    if webdisk_why:
        out.append(Skipped(f"the Web Disk logins of {user} could not be read ({webdisk_why})"))
    return out, {"webdisk_logins_left": webdisk}
