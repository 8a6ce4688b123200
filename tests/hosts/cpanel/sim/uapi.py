"""UAPI functions of a cPanel account (panels.md A6), as `uapi --user=U Module function` and
WHM's uapi_cpanel (A1) call them. Each returns the UAPI `result` object (A2):
{data, errors, messages, metadata, status, warnings}."""

from __future__ import annotations

from collections.abc import Callable

from . import db, domaininfo, ftp, mail, store, team


class UapiError(Exception):
    """A refusal: status 0 with this text in `errors`."""


def result(data: object = None, errors: list[str] | None = None) -> dict:
    """Return a UAPI result object (A2): status 1 without errors, else 0."""
    return {"data": data, "errors": errors or None, "messages": None, "metadata": {},
            "status": 0 if errors else 1, "warnings": None}


def _mailbox(user: str, args: dict[str, str]) -> str:
    email = args.get("email", "").strip().lower()
    if not email:
        raise UapiError("You must specify the “email” parameter.")
    if mail.find(user, email) is None:
        raise UapiError(f"You do not have an email account named “{email}”.")
    return email


def _switch(action: Callable[[str, str], None], data: object) -> Callable:
    def call(user: str, args: dict[str, str]) -> object:
        action(user, _mailbox(user, args))
        return data
    return call


def _outgoing(suspended: bool | None = None, held: bool | None = None) -> Callable:
    # Per-address outgoing suspension/hold (A6 [SRC]): the address in the list Exim reads.
    def call(user: str, args: dict[str, str]) -> object:
        email = _mailbox(user, args)
        mail.set_outgoing(email, suspended=suspended, held=held)
        if held is False:
            mail.flush_queue()
        return 1
    return call


def _list_ftp(user: str, args: dict[str, str]) -> list[dict]:
    rows = ftp.list_ftp(user)
    include = [t for t in args.get("include_acct_types", "").split("|") if t]
    skip = [t for t in args.get("skip_acct_types", "").split("|") if t]
    return [r for r in rows if (not include or r["type"] in include) and r["type"] not in skip]


# Data values: suspend_login/incoming answer null, the others 1 (A6 and the op pages'
# response samples; suspend_outgoing `result.data`=1 is in A6).
FUNCTIONS: dict[str, Callable[[str, dict[str, str]], object]] = {
    "Email::list_pops": lambda user, args: mail.list_pops(
        user, skip_main=args.get("skip_main") == "1"),
    "Email::suspend_login": _switch(mail.suspend_login, None),
    "Email::unsuspend_login": _switch(mail.unsuspend_login, None),
    "Email::suspend_incoming": _switch(mail.suspend_incoming, None),
    "Email::unsuspend_incoming": _switch(mail.unsuspend_incoming, 1),
    "Email::suspend_outgoing": _outgoing(suspended=True),
    "Email::unsuspend_outgoing": _outgoing(suspended=False),
    "Email::hold_outgoing": _outgoing(held=True),
    "Email::release_outgoing": _outgoing(held=False),
    "Mysql::list_users": lambda user, args: db.list_users(user),
    "Mysql::list_databases": lambda user, args: db.list_databases(user),
    "Mysql::get_restrictions": lambda user, args: db.get_restrictions(user),
    "Ftp::list_ftp": _list_ftp,
    "DomainInfo::list_domains": domaininfo.list_domains,
    "Team::list_team": team.list_team,
    "Team::suspend_team_user": team.suspend_team_user,
    "Team::reinstate_team_user": team.reinstate_team_user,
}


def call(user: str, module: str, function: str, args: dict[str, str]) -> dict:
    """Run UAPI `module::function` as `user`; return its result object (never raises)."""
    name = f"{module}::{function}"
    if store.cpuser(user) is None:
        return result(errors=[f"The user “{user}” does not exist."])
    handler = FUNCTIONS.get(name)
    if handler is None:
        return result(errors=[f"Failed to load module “{module}” or function “{function}”."])
    injected = store.fault(name)
    if injected and injected.get("mode") == "noop":
        return result(None)
    if injected and injected.get("mode") == "fail":
        return result(errors=[injected.get("message", f"{name} failed (injected)")])
    try:
        with store.locked():
            return result(handler(user, args))
    except (UapiError, team.TeamError) as exc:
        return result(errors=[str(exc)])
