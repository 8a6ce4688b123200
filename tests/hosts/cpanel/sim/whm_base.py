"""Shared pieces of the WHM API 1 functions: the caller, a function's reply, refusals and
argument checks (panels.md A2: booleans 1/0, errors as metadata.result=0)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import accounts, store

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


def flag_arg(args: dict[str, str], name: str) -> bool:
    """Return the 0/1 argument `name` as a bool (absent: False); other values refused."""
    value = args.get(name, "0") or "0"
    if value not in ("0", "1"):
        raise WhmError(f"Invalid value for “{name}”: must be 0 or 1.")
    return value == "1"


def account_arg(caller: Caller, args: dict[str, str], key: str = "user") -> str:
    """Return the account named by args[key] (a user or one of its domains) that `caller`
    may see; refuse with "Account does not exist." otherwise."""
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
