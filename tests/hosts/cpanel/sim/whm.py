"""WHM API 1 functions: one table serves `whmapi1` and HTTPS /json-api/ alike.

Envelope (panels.md A2): {"data": ..., "metadata": {"command", "reason", "result" 1|0,
"version": 1, "output": {"raw": ...}}}; booleans are integers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import accounts, mail, pkgacct, store, suspend, tokens, uapi

VERSION = "11.118.0.5"


class WhmError(Exception):
    """A failure answered as metadata.result=0 with this reason."""


@dataclass
class Caller:
    """Who calls: root (CLI, root token) or a reseller's token, with the token's ACLs."""

    user: str = "root"
    acls: set[str] = field(default_factory=lambda: {"all"})

    def visible(self) -> set[str] | None:
        """Accounts the caller may see: None = all (root)."""
        if self.user == "root":
            return None
        return set(accounts.owned_by(self.user)) | {self.user}

    def may(self, acl: str | None) -> bool:
        """True when the caller holds `acl` (or `all`)."""
        return acl is None or "all" in self.acls or acl in self.acls


@dataclass
class Reply:
    """What a function returns: data (None: no `data` key), reason, raw output."""

    data: object = None
    reason: str = "OK"
    raw: str | None = None


def _flag(args: dict[str, str], name: str) -> bool:
    value = args.get(name, "0") or "0"
    if value not in ("0", "1"):
        raise WhmError(f"Invalid value for “{name}”: must be 0 or 1.")
    return value == "1"


def _account(caller: Caller, args: dict[str, str], key: str = "user") -> str:
    user = (args.get(key) or "").strip().lower()
    if not user:
        raise WhmError(f"Missing parameter: {key}")
    if "." in user and store.cpuser(user) is None:
        user = store.user_of_domain(user) or user
    visible = caller.visible()
    if store.cpuser(user) is None or (visible is not None and user not in visible):
        # A5: accountsummary of an unknown user; same words for one the caller cannot see.
        raise WhmError("Account does not exist.")
    return user


def accountsummary(caller: Caller, args: dict[str, str]) -> Reply:
    """A5: data.acct = [record]; unknown user → result 0 "Account does not exist."."""
    key = "user" if args.get("user") else "domain"
    user = _account(caller, args, key)
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


def listresellers(caller: Caller, args: dict[str, str]) -> Reply:
    """A5: data.reseller = usernames."""
    return Reply({"reseller": sorted(store.resellers())})


def suspendacct(caller: Caller, args: dict[str, str]) -> Reply:
    """A4/A7/A8 quirk (C2.5): result=1 whenever the script ran, even when it refused; its
    words are only in metadata.output.raw."""
    user = _account(caller, args)
    disallow = _flag(args, "disallowun")
    leave_ftp = _flag(args, "leave-ftp-accts-enabled")
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
    user = _account(caller, args)
    if accounts.is_locked(user) and caller.user != "root":
        raise WhmError(f"You do not have permission to unsuspend the locked account “{user}”.")
    _code, raw = suspend.unsuspendacct(user, _flag(args, "retain-service-proxies"))
    return Reply(raw=raw)


def suspendreseller(caller: Caller, args: dict[str, str]) -> Reply:
    """A9: the reseller itself must end suspended (its script's sentence decides), then
    every owned account; per-account failures only in output.raw."""
    user = _account(caller, args)
    if user not in store.resellers():
        raise WhmError("Specified user is not a reseller.")
    why = args.get("reason") or "No reason supplied."
    disallow = _flag(args, "disallow")
    _code, raw = suspend.suspendacct(user, why, disallow)
    if f"{user}'s account has been suspended" not in raw and \
            "Account Already Suspended" not in raw:
        raise WhmError("Failed to suspend reseller.")
    lines = [raw]
    if not _flag(args, "reseller-only"):
        for account in accounts.owned_by(user):
            if account == user:
                continue
            code, text = suspend.suspendacct(account, why, disallow)
            lines.append(text if code == 0 else f"Failed to suspend account: {account}\n")
    return Reply(reason="Reseller suspended", raw="".join(lines))


def unsuspendreseller(caller: Caller, args: dict[str, str]) -> Reply:
    """A9/C2.6: unsuspends EVERY owned account, including ones suspended for their own
    reasons; per-account failures only in output.raw."""
    user = _account(caller, args)
    if user not in store.resellers():
        raise WhmError("Specified user is not a reseller.")
    _code, raw = suspend.unsuspendacct(user)
    lines = [raw]
    if not _flag(args, "reseller-only"):
        for account in accounts.owned_by(user):
            if account == user:
                continue
            code, text = suspend.unsuspendacct(account)
            lines.append(text if code == 0 else f"Failed to unsuspend account: {account}\n")
    return Reply(reason="Reseller unsuspended", raw="".join(lines))


def _outgoing(suspended: bool | None = None, held: bool | None = None) -> Callable:
    # A4: account-wide outgoing mail suspension / hold (not for root).
    def call(caller: Caller, args: dict[str, str]) -> Reply:
        user = _account(caller, args)
        mail.account_outgoing(user, suspended=suspended, held=held)
        return Reply()
    return call


def start_background_pkgacct(caller: Caller, args: dict[str, str]) -> Reply:
    """A11: returns a session id at once; the archive appears in /home when done."""
    user = _account(caller, args)
    return Reply({"session_id": pkgacct.start_background(user)})


def get_pkgacct_session_state(caller: Caller, args: dict[str, str]) -> Reply:
    """data.state: RUNNING, COMPLETED or FAILED (documented, see sim/pkgacct.py)."""
    state = pkgacct.session_state(args.get("session_id", ""))
    if state is None:
        raise WhmError("Invalid session ID.")
    return Reply({"state": state})


def fetch_pkgacct_master_log(caller: Caller, args: dict[str, str]) -> Reply:
    """data.log: the session's JSON-lines log."""
    log = pkgacct.session_log(args.get("session_id", ""))
    if log is None:
        raise WhmError("Invalid session ID.")
    return Reply({"log": log})


def uapi_cpanel(caller: Caller, args: dict[str, str]) -> Reply:
    """A1: UAPI as a cPanel user through WHM; the UAPI result lands in data.uapi."""
    user = _account(caller, args, "cpanel.user")
    rest = {k: v for k, v in args.items() if not k.startswith(("cpanel.", "api."))}
    result = uapi.call(user, args.get("cpanel.module", ""), args.get("cpanel.function", ""),
                       rest)
    return Reply({"uapi": result})


def version(caller: Caller, args: dict[str, str]) -> Reply:
    """data.version."""
    return Reply({"version": VERSION})


def myprivs(caller: Caller, args: dict[str, str]) -> Reply:
    """What the caller's token may do: data.privileges = [{ACL: 1|0, ...}] ([3P]: WHMCS's
    cPanel module decides "has every privilege" by data.privileges[0].all === 1)."""
    privs = {acl: int(caller.may(acl)) for acl in sorted(tokens.KNOWN_ACLS)}
    return Reply({"privileges": [privs]})


def api_token_create(caller: Caller, args: dict[str, str]) -> Reply:
    """Create a token for the caller; data {name, token, acls, create_time, expires_at}."""
    if store.cpuser(caller.user) and accounts.is_suspended(caller.user):
        raise WhmError("You cannot create an API token for a suspended account.")  # A1
    acls = [v for k, v in sorted(args.items()) if k == "acl" or k.startswith("acl-")]
    try:
        token, entry = tokens.create(caller.user, args.get("token_name", ""), acls or ["all"],
                                     int(args.get("expires_at", "0") or 0))
    except ValueError as exc:
        raise WhmError(str(exc)) from exc
    return Reply({**entry, "token": token})


def api_token_list(caller: Caller, args: dict[str, str]) -> Reply:
    """data.tokens = {name: {name, acls, create_time, expires_at}}."""
    return Reply({"tokens": tokens.listing(caller.user)})


def api_token_revoke(caller: Caller, args: dict[str, str]) -> Reply:
    """Remove the caller's token named token_name."""
    if not tokens.revoke(caller.user, args.get("token_name", "")):
        raise WhmError("No such token.")
    return Reply()


# function -> (handler, ACL needed). ACL names from cPanel's ACL reference chart
# (acct-summary, list-accts, suspend-acct); "all" marks root-only ones ([INF]).
FUNCTIONS: dict[str, tuple[Callable[[Caller, dict[str, str]], Reply], str | None]] = {
    "accountsummary": (accountsummary, "acct-summary"),
    "listaccts": (listaccts, "list-accts"),
    "listsuspended": (listsuspended, "list-accts"),
    "listlockedaccounts": (listlockedaccounts, "list-accts"),
    "listresellers": (listresellers, "all"),
    "suspendacct": (suspendacct, "suspend-acct"),
    "unsuspendacct": (unsuspendacct, "suspend-acct"),
    "suspendreseller": (suspendreseller, "all"),
    "unsuspendreseller": (unsuspendreseller, "all"),
    "suspend_outgoing_email": (_outgoing(suspended=True), "suspend-acct"),
    "unsuspend_outgoing_email": (_outgoing(suspended=False), "suspend-acct"),
    "hold_outgoing_email": (_outgoing(held=True), "suspend-acct"),
    "release_outgoing_email": (_outgoing(held=False), "suspend-acct"),
    "start_background_pkgacct": (start_background_pkgacct, "all"),
    "get_pkgacct_session_state": (get_pkgacct_session_state, "all"),
    "fetch_pkgacct_master_log": (fetch_pkgacct_master_log, "all"),
    "uapi_cpanel": (uapi_cpanel, None),
    "version": (version, None),
    "myprivs": (myprivs, None),
    "api_token_create": (api_token_create, None),
    "api_token_list": (api_token_list, None),
    "api_token_revoke": (api_token_revoke, None),
}
# Run without the write lock: readers, and uapi_cpanel (uapi.call takes the lock itself).
UNLOCKED = {"uapi_cpanel", "accountsummary", "listaccts", "listsuspended", "listlockedaccounts",
             "listresellers", "version", "myprivs", "get_pkgacct_session_state",
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
