"""ftp_lock's part for Web Disk (review F9): plan, reversal and verify of the account's Web
Disk logins (`~/etc/webdav/shadow`, read as the customer) and its own Digest login
(/etc/digestshadow); the file edits are agent/drivers/cpanel/webdisk.py."""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.webdisk import (
    DIGEST_DB,
    DigestEntry,
    WebdiskEdit,
    as_user,
    open_fields,
    read_as,
    still_ours,
)
from agent.steps.actions import Skipped
from agent.steps.protocol import Context

SHADOW_FIELDS = (1, 8)  # the crypt hash and the Digest hash (scripts/suspendacct:424)


def shadow_path(passwd: list[str]) -> str:
    """The account's Web Disk login file, in its home."""
    return f"{passwd[5]}/etc/webdav/shadow"


def _digest_open(ctx: Context, user: str) -> dict[int, str]:
    found = ctx.conn.read_many([DIGEST_DB])[DIGEST_DB]
    return open_fields(found.data if found.exists else None, (1,)).get(user, {})


def plan(ctx: Context, user: str, passwd: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """Return the actions locking every open Web Disk login (both its hashes) and the
    account's Digest login, and the undo record (`webdisk`)."""
    s = ctx.server.cpanel
    prefix = as_user(s.setpriv, passwd[2], passwd[3])
    path = shadow_path(passwd)
    data, why = read_as(ctx.conn, prefix, path)
    logins = open_fields(data, SHADOW_FIELDS)
    own = _digest_open(ctx, user)
    actions: list[Any] = []
    if logins:
        actions.append(WebdiskEdit(path, tuple(prefix), _frozen(logins), True))
    if own:
        actions.append(DigestEntry(user, own[1], True))
    if why:
        actions.append(Skipped(f"the Web Disk logins of {user} could not be read as the "
                               f"customer ({why}); any there are are not locked"))
    return actions, {"webdisk": {"path": path, "uid": passwd[2], "gid": passwd[3],
                                 "logins": {n: {str(k): v for k, v in f.items()}
                                            for n, f in logins.items()},
                                 "digest": own.get(1, ""), "unreadable": why}}


def _frozen(logins: dict[str, dict[Any, str]]) -> tuple:
    return tuple((n, tuple((str(k), v) for k, v in sorted(f.items())))
                 for n, f in sorted(logins.items()))


def revert_plan(ctx: Context, user: str, undo: dict[str, Any]) -> list[Any]:
    """Return the actions taking off exactly the locks `plan` put on."""
    w = undo.get("webdisk")
    if not w:
        return []  # journaled before ftp_lock locked Web Disk
    actions: list[Any] = []
    if w["logins"]:
        prefix = as_user(ctx.server.cpanel.setpriv, w["uid"], w["gid"])
        actions.append(WebdiskEdit(w["path"], tuple(prefix), _frozen(w["logins"]), False))
    if w["digest"]:
        actions.append(DigestEntry(user, w["digest"], False))
    return actions


def problems(ctx: Context, user: str, undo: dict[str, Any], suspended: bool) -> list[str]:
    """Re-read both files: suspended, no Web Disk login and no Digest login of the account
    is open; lifted, every one this step locked is open again (unless changed since)."""
    w = undo.get("webdisk")
    if not w or (not suspended and not w["logins"] and not w["digest"]):
        return []  # nothing of this step's to be still locked: no reads on the hot path
    prefix = as_user(ctx.server.cpanel.setpriv, w["uid"], w["gid"])
    data, why = read_as(ctx.conn, prefix, w["path"])
    if why and w.get("unreadable") and not w["logins"]:
        data = None  # unreadable at plan time too, and said so: no lock was promised there
    elif why:
        return [f"{w['path']} could not be read as the customer ({why})"]
    if suspended:
        out = [f"Web Disk login {n} is not locked"
               for n in sorted(open_fields(data, SHADOW_FIELDS))]
        return out + ([f"the Web Disk Digest login of {user} is not locked"]
                      if _digest_open(ctx, user) else [])
    out = [f"Web Disk login {n} is still locked" for n, f in sorted(w["logins"].items())
           if still_ours(data, n, f)]
    found = ctx.conn.read_many([DIGEST_DB])[DIGEST_DB]
    if w["digest"] and still_ours(found.data if found.exists else None, user,
                                  {"1": w["digest"]}):
        out.append(f"the Web Disk Digest login of {user} is still locked")
    return out
