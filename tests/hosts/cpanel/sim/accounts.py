"""What WHM reports about accounts: listaccts/accountsummary records, listsuspended.

The record fields and types follow panels.md A5 (accountsummary / listaccts `data.acct[]`);
booleans are integers 1/0 (A2).
"""

from __future__ import annotations

import os
import re
import time

from . import store
from .mail import home

BW_REASON = "Bandwidth Limit Exceeded; Unsuspend by increasing bandwidth limit"


def is_suspended(user: str) -> bool:
    """The state listsuspended and unsuspendacct decide by: the system shadow hash (A5, A8)."""
    return store.is_suspended_hash(store.system_hash(user))


def is_locked(user: str) -> bool:
    """Locked = /var/cpanel/suspended/USER.lock exists (A5: only root may unsuspend)."""
    return os.path.exists(f"{store.SUSPENDED_DIR}/{user}.lock")


def reason(user: str) -> str:
    """The reason in /var/cpanel/suspended/USER ("Unknown" when empty, A5)."""
    text = store.read(f"{store.SUSPENDED_DIR}/{user}").strip()
    return text or "Unknown"


def _ctime(epoch: int) -> str:
    # A4's example "Thu Nov 18 10:34:34 2014" is Perl's scalar localtime: the C ctime form.
    return time.ctime(epoch)


def record(user: str) -> dict | None:
    """Return the accountsummary record of `user` (A5 fields), or None if no account."""
    data = store.cpuser(user)
    entry = store.passwd_entry(user)
    if data is None or entry is None:
        return None
    # [SRC] asmrdevelop/cpanel @393631a2 Whostmgr/Accounts/List.pm:189, 227-230 and
    # Whostmgr/Accounts/Suspended.pm:70-79 (review F11): `suspended`, its reason and lock
    # come from getsuspendedlist: the system hash starts with `!` or holds `*LOCKED*`, or the
    # account is over its bandwidth limit, whose text then replaces the reason file's.
    bw = os.path.exists(f"{store.BWLIMITED_DIR}/{user}")
    suspended = int(is_suspended(user) or bw)
    start = int(data.get("STARTDATE", "0") or 0)
    suspend_time = int(data.get("SUSPENDTIME", "0") or 0)
    return {
        "user": user,
        "domain": data.get("DNS", ""),
        "owner": store.owner_of(user),
        "plan": data.get("PLAN", "default"),
        "ip": data.get("IP", ""),
        "shell": entry[6],
        "suspended": suspended,
        # [INF] a live listaccts says "not suspended" here; A5 only says null|""|text.
        "suspendreason": (BW_REASON if bw else reason(user)) if suspended
        else "not suspended",
        "suspendtime": suspend_time if suspended and suspend_time else None,
        "is_locked": int(is_locked(user)),
        "outgoing_mail_suspended": int(bool(data.get("OUTGOING_MAIL_SUSPENDED"))),
        "outgoing_mail_hold": int(bool(data.get("OUTGOING_MAIL_HOLD"))),
        "partition": home(user).split("/")[1] if home(user).count("/") >= 2 else "home",
        "uid": int(entry[2]),
        "startdate": time.strftime("%y %b %d %H:%M", time.localtime(start)),
        "unix_startdate": start,
        "email": data.get("CONTACTEMAIL", ""),
        "diskused": "0M",
        "disklimit": "unlimited",
        "maxpop": data.get("MAXPOP", "unlimited"),
        "maxsql": data.get("MAXSQL", "unlimited"),
        "maxftp": data.get("MAXFTP", "unlimited"),
        "theme": data.get("RS", "jupiter"),
    }


def listaccts(search: str | None, searchtype: str, searchmethod: str,
              want: list[str] | None, visible: set[str] | None) -> list[dict]:
    """listaccts (A5): every account (or those `visible` to a reseller) matching the search;
    `want` keeps only those fields."""
    out = []
    for user in store.accounts():
        if visible is not None and user not in visible:
            continue
        rec = record(user)
        if rec is None:
            continue
        if search and not _matches(rec, user, search, searchtype, searchmethod):
            continue
        out.append({k: v for k, v in rec.items() if not want or k in want})
    return out


def _matches(rec: dict, user: str, search: str, searchtype: str, method: str) -> bool:
    if searchtype == "domain":
        values = store.domains_of(user)
    else:
        field = {"owner": "owner", "user": "user", "ip": "ip", "package": "plan"}[searchtype]
        values = [str(rec[field])]
    if method == "exact":
        return search in values
    try:
        pattern = re.compile(search)
    except re.error:
        return False
    return any(pattern.search(v) for v in values)


def listsuspended(visible: set[str] | None) -> list[dict]:
    """listsuspended (A5 [SRC]): suspended = the system shadow hash starts with `!` or
    contains `*LOCKED*`; bandwidth-limited users (/var/cpanel/bwlimited/USER) are listed too,
    with the bandwidth reason, which wins over the reason file (Suspended.pm:72-79)."""
    out = []
    for user in store.accounts():
        if visible is not None and user not in visible:
            continue
        bw = os.path.exists(f"{store.BWLIMITED_DIR}/{user}")
        if is_suspended(user) and not bw:
            data = store.cpuser(user) or {}
            when = int(data.get("SUSPENDTIME", "0") or 0)
            if not when:
                try:
                    when = int(os.stat(f"{store.SUSPENDED_DIR}/{user}").st_mtime)
                except FileNotFoundError:
                    when = 0
            why = reason(user)
        elif bw:
            when = int(os.stat(f"{store.BWLIMITED_DIR}/{user}").st_mtime)
            why = BW_REASON
        else:
            continue
        out.append({"user": user, "owner": store.owner_of(user), "reason": why,
                    "time": _ctime(when), "unixtime": when,
                    "is_locked": int(is_locked(user))})
    return out


def owned_by(reseller: str) -> list[str]:
    """Return the accounts `reseller` owns (itself included when it owns itself)."""
    return [u for u in store.accounts() if store.owner_of(u) == reseller]
