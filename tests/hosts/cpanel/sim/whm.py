"""WHM API 1 functions: one table serves `whmapi1` and HTTPS /json-api/ alike.

Envelope (panels.md A2): {"data": ..., "metadata": {"command", "reason", "result" 1|0,
"version": 1, "output": {"raw": ...}}}; booleans are integers.
"""

from __future__ import annotations

from collections.abc import Callable

from . import store
from . import whm_accounts as acct
from . import whm_misc as misc
from .whm_base import Caller, Reply, WhmError

__all__ = ["Caller", "call", "envelope"]


# function -> (handler, ACL needed). ACL names from cPanel's ACL reference chart
# (acct-summary, list-accts, suspend-acct, cpanel-api: "Execute cPanel API 1, cPanel API 2,
# and UAPI functions via WHM"); "all" marks root-only ones ([INF]). Review F6: the gates of
# version (basic-system-info), myprivs (basic-whm-functions) and listsuspended
# (suspend-acct) are those of the API dispatch table in [SRC] asmrdevelop/cpanel @393631a2
# Whostmgr/XMLUI/Meta.pm (API v0; the v1 dispatcher is compiled, so [INF] for v1).
FUNCTIONS: dict[str, tuple[Callable[[Caller, dict[str, str]], Reply], str | None]] = {
    "accountsummary": (acct.accountsummary, "acct-summary"),
    "listaccts": (acct.listaccts, "list-accts"),
    "listsuspended": (acct.listsuspended, "suspend-acct"),
    "listlockedaccounts": (acct.listlockedaccounts, "list-accts"),
    "listresellers": (acct.listresellers, "all"),
    # [INF] no ACL found for it in Accounts.pm (NEEDS_ROLE undef is about server roles);
    # its code filters by ownership for a caller without root.
    "get_domain_info": (acct.get_domain_info, None),
    "suspendacct": (acct.suspendacct, "suspend-acct"),
    "unsuspendacct": (acct.unsuspendacct, "suspend-acct"),
    "suspendreseller": (acct.suspendreseller, "all"),
    "unsuspendreseller": (acct.unsuspendreseller, "all"),
    "suspend_outgoing_email": (acct.outgoing(suspended=True), "suspend-acct"),
    "unsuspend_outgoing_email": (acct.outgoing(suspended=False), "suspend-acct"),
    "hold_outgoing_email": (acct.outgoing(held=True), "suspend-acct"),
    "release_outgoing_email": (acct.outgoing(held=False), "suspend-acct"),
    "start_background_pkgacct": (misc.start_background_pkgacct, "all"),
    "get_pkgacct_session_state": (misc.get_pkgacct_session_state, "all"),
    "fetch_pkgacct_master_log": (misc.fetch_pkgacct_master_log, "all"),
    "uapi_cpanel": (misc.uapi_cpanel, "cpanel-api"),
    "version": (misc.version, "basic-system-info"),
    "myprivs": (misc.myprivs, "basic-whm-functions"),
    "api_token_create": (misc.api_token_create, None),
    "api_token_list": (misc.api_token_list, None),
    "api_token_revoke": (misc.api_token_revoke, None),
}
# Run without the write lock: readers, and uapi_cpanel (uapi.call takes the lock itself).
UNLOCKED = {"uapi_cpanel", "accountsummary", "listaccts", "listsuspended", "listlockedaccounts",
              "listresellers", "get_domain_info", "version", "myprivs", "get_pkgacct_session_state",
              "fetch_pkgacct_master_log", "api_token_list"}


def envelope(command: str, result: int, reason: str, data: object = None,
             raw: str | None = None) -> dict:
    """Return the WHM API 1 reply (A2)."""
    meta: dict = {"command": command, "reason": reason, "result": result, "version": 1}
    if raw is not None:
        meta["output"] = {"raw": raw}
    reply: dict = {"metadata": meta}
    if data is not None:
        reply = {"data": data, **reply}
    return reply


def call(function: str, args: dict[str, str], caller: Caller | None = None) -> dict:
    """Run WHM function `function`; return its envelope (never raises)."""
    caller = caller or Caller()
    entry = FUNCTIONS.get(function)
    if entry is None:
        return envelope(function, 0, f"Unknown app (“{function}”) requested for this "
                                     "version (1) of the API.")
    handler, acl = entry
    if not caller.may(acl):
        return envelope(function, 0, f"Permission denied: this call needs the “{acl}” "
                                     "privilege.")
    injected = store.fault(function)
    if injected and injected.get("mode") == "noop":
        return envelope(function, 1, "OK")
    if injected and injected.get("mode") == "fail":
        return envelope(function, 0, injected.get("message", f"{function} failed (injected)"))
    try:
        if function in UNLOCKED:
            reply = handler(caller, args)
        else:
            with store.locked():
                reply = handler(caller, args)
    except WhmError as exc:
        return envelope(function, 0, str(exc))
    return envelope(function, 1, reply.reason, reply.data, reply.raw)
