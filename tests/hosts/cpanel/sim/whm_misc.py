"""WHM API 1 functions besides accounts: background pkgacct sessions (A11), uapi_cpanel (A1),
version, myprivs and API tokens."""

from __future__ import annotations

from . import accounts, pkgacct, store, tokens, uapi
from .whm_base import VERSION, Caller, Reply, WhmError, account_arg


def start_background_pkgacct(caller: Caller, args: dict[str, str]) -> Reply:
    """A11: returns a session id at once; the archive appears in /home when done."""
    user = account_arg(caller, args)
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
    user = account_arg(caller, args, "cpanel.user")
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
