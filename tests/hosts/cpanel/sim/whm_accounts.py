"""WHM API 1 functions about accounts: listing, suspension, resellers, outgoing mail
(panels.md A4, A5, A8, A9)."""

from __future__ import annotations

from collections.abc import Callable

from . import accounts, domaininfo, mail, store, suspend
from .whm_base import Caller, Reply, WhmError, account_arg, flag_arg


def accountsummary(caller: Caller, args: dict[str, str]) -> Reply:
    """A5: data.acct = [record]; unknown user → result 0 "Account does not exist."."""
    key = "user" if args.get("user") else "domain"
    user = account_arg(caller, args, key)
    return Reply({"acct": [accounts.record(user)]})


def listaccts(caller: Caller, args: dict[str, str]) -> Reply:
    """A5: search/searchtype/searchmethod/want."""
    searchtype = args.get("searchtype", "user") or "user"
    method = args.get("searchmethod", "regex") or "regex"
    if searchtype not in ("domain", "owner", "user", "ip", "package"):
        raise WhmError(f"Invalid searchtype “{searchtype}”.")
    if method not in ("exact", "regex"):
        raise WhmError(f"Invalid searchmethod “{method}”.")
    want = [w for w in (args.get("want") or "").split(",") if w] or None
    return Reply({"acct": accounts.listaccts(args.get("search") or None, searchtype, method,
                                             want, caller.visible())})


def listsuspended(caller: Caller, args: dict[str, str]) -> Reply:
    """A5 [SRC]: from the system shadow hash, bandwidth-limited users included."""
    return Reply({"account": accounts.listsuspended(caller.visible())})


def listlockedaccounts(caller: Caller, args: dict[str, str]) -> Reply:
    """A4: usernames whose suspension only root may lift."""
    visible = caller.visible()
    return Reply({"account": [u for u in store.accounts() if accounts.is_locked(u)
                              and (visible is None or u in visible)]})


def get_domain_info(caller: Caller, args: dict[str, str]) -> Reply:
    """data.domains = one record per domain the caller may see (domaininfo.py)."""
    return Reply({"domains": domaininfo.get_domain_info(caller.visible())})


def listresellers(caller: Caller, args: dict[str, str]) -> Reply:
    """A5: data.reseller = usernames."""
    return Reply({"reseller": sorted(store.resellers())})


def suspendacct(caller: Caller, args: dict[str, str]) -> Reply:
    """A4/A7/A8 quirk (C2.5): result=1 whenever the script ran, even when it refused; its
    words are only in metadata.output.raw."""
    user = account_arg(caller, args)
    disallow = flag_arg(args, "disallowun")
    leave_ftp = flag_arg(args, "leave-ftp-accts-enabled")
    if (disallow or leave_ftp) and caller.user != "root":
        raise WhmError("Only root may use “disallowun” or “leave-ftp-accts-enabled”.")
    if user == caller.user:
        raise WhmError("You cannot suspend your own account.")
    _code, raw = suspend.suspendacct(user, args.get("reason") or "Unknown", disallow,
                                     leave_ftp)
    return Reply(raw=raw)


def unsuspendacct(caller: Caller, args: dict[str, str]) -> Reply:
    """A8: result=1 even for "not in a suspended state" (C2.5); a locked account only by
    root (A4)."""
    user = account_arg(caller, args)
    if accounts.is_locked(user) and caller.user != "root":
        raise WhmError(f"You do not have permission to unsuspend the locked account “{user}”.")
    _code, raw = suspend.unsuspendacct(user, flag_arg(args, "retain-service-proxies"))
    return Reply(raw=raw)


def suspendreseller(caller: Caller, args: dict[str, str]) -> Reply:
    """A4, A9 (Whostmgr/Resellers.pm suspend_reseller): the reseller's own account first,
    with the script as the API runs it (`suspendacct -- R REASON DISALLOW`, no --force); the
    call fails unless its output says the reseller ended suspended. Then, unless
    reseller-only=1, every account R owns directly (getaccts: owner exactly R; not the
    sub-resellers' accounts, lockouts.md 4.2); per-account failures only in output.raw."""
    user = account_arg(caller, args)
    if user not in store.resellers():
        raise WhmError("Specified user is not a reseller.")
    why = args.get("reason") or "No reason supplied."
    disallow = flag_arg(args, "disallow")
    _code, raw = suspend.suspendacct(user, why, disallow)
    if f"{user}'s account has been suspended" not in raw and \
            "Account Already Suspended" not in raw:
        raise WhmError("Failed to suspend reseller.")
    lines = [raw]
    if flag_arg(args, "reseller-only"):
        lines.append(f"Accounts owned by {user} were not suspended because the reseller-only "
                     "parameter was set")
    else:
        for account in accounts.owned_by(user):
            if account == user:
                continue
            code, text = suspend.suspendacct(account, why, disallow)
            lines.append(text if code == 0 else f"Failed to suspend account: {account}")
    return Reply(raw="\n".join(lines))


def unsuspendreseller(caller: Caller, args: dict[str, str]) -> Reply:
    """A9/C2.6 (Whostmgr/Resellers.pm unsuspend_reseller): the reseller's own account first
    (`unsuspendacct -- R`); the call fails, and touches no owned account, unless its output
    says R is active again. Then, unless reseller-only=1, EVERY account R owns directly,
    including ones suspended for their own reasons; per-account failures only in
    output.raw."""
    user = account_arg(caller, args)
    if user not in store.resellers():
        raise WhmError("Specified user is not a reseller.")
    _code, raw = suspend.unsuspendacct(user)
    if f"{user}'s account is now active" not in raw:
        raise WhmError("Failed to unsuspend reseller.")
    lines = [raw]
    if flag_arg(args, "reseller-only"):
        lines.append(f"Accounts owned by {user} were not unsuspended because the "
                     "reseller-only parameter was set")
    else:
        for account in accounts.owned_by(user):
            if account == user:
                continue
            code, text = suspend.unsuspendacct(account)
            lines.append(text if code == 0 else f"Failed to unsuspend account: {account}")
    return Reply(raw="\n".join(lines))


def outgoing(suspended: bool | None = None, held: bool | None = None) -> Callable:
    """Return the WHM function that (un)suspends or holds/releases an account's outgoing
    mail (A4: suspend/unsuspend/hold/release_outgoing_email)."""
    def call(caller: Caller, args: dict[str, str]) -> Reply:
        user = account_arg(caller, args)
        mail.account_outgoing(user, suspended=suspended, held=held)
        return Reply()
    return call
