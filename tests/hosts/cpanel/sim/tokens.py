"""WHM API tokens (panels.md A1): `Authorization: whm USER:TOKEN`, tokens with ACL lists.

Kept where cPanel keeps WHM tokens, /var/cpanel/authn/api_tokens_v2/whostmgr/USER.json, with
a top-level "tokens" object ([3P]: public server-migration scripts count WHM tokens with
`jq '.tokens | length'` on /var/cpanel/authn/api_tokens_v2/whostmgr/root.json). Inside it the
layout is the simulator's own: {sha512(token): {name, acls, create_time, expires_at}}, a
hash of each token, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import string
import time

from . import store

STORE = "/var/cpanel/authn/api_tokens_v2/whostmgr"
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,50}$")
# ACL names from cPanel's ACL reference chart (subset the simulator's functions use).
KNOWN_ACLS = {"all", "acct-summary", "list-accts", "suspend-acct", "kill-acct",
              "create-acct", "edit-account", "passwd", "cpanel-api", "basic-system-info",
              "basic-whm-functions"}


def _path(user: str) -> str:
    if user != "root" and not store.USERNAME_RE.match(user):
        raise ValueError(f"bad user {user!r}")
    return f"{STORE}/{user}.json"


def _load(user: str) -> dict:
    try:
        return json.loads(store.read(_path(user), "{}") or "{}").get("tokens", {})
    except ValueError:
        return {}


def _digest(token: str) -> str:
    return hashlib.sha512(token.encode()).hexdigest()


def create(user: str, name: str, acls: list[str], expires_at: int = 0) -> tuple[str, dict]:
    """Create token `name` for `user` with `acls`; return (token, its public entry).

    Raises ValueError for a bad or taken name or an unknown ACL.
    """
    if not NAME_RE.match(name):
        raise ValueError("The token name may only contain letters, digits, - and _ "
                         "(at most 50).")
    unknown = [a for a in acls if a not in KNOWN_ACLS]
    if unknown:
        raise ValueError(f"Unknown privilege(s): {', '.join(unknown)}")
    with store.locked():
        entries = _load(user)
        if any(e["name"] == name for e in entries.values()):
            raise ValueError(f"A token named “{name}” already exists.")
        alphabet = string.ascii_uppercase + string.digits
        token = "".join(secrets.choice(alphabet) for _ in range(32))
        entry = {"name": name, "acls": sorted(set(acls)), "create_time": int(time.time()),
                 "expires_at": int(expires_at)}
        entries[_digest(token)] = entry
        store.write_atomic(_path(user), json.dumps({"tokens": entries}), mode=0o600)
    return token, entry


def listing(user: str) -> dict:
    """Return name -> public entry for every token of `user`."""
    return {e["name"]: e for e in _load(user).values()}


def revoke(user: str, name: str) -> bool:
    """Remove token `name` of `user`; return False when there was none."""
    with store.locked():
        entries = _load(user)
        kept = {k: e for k, e in entries.items() if e["name"] != name}
        if len(kept) == len(entries):
            return False
        store.write_atomic(_path(user), json.dumps({"tokens": kept}), mode=0o600)
    return True


def check(user: str, token: str) -> set[str] | None:
    """Return the ACLs of a valid, unexpired `token` of `user`, else None.

    A suspended reseller's token is refused ([INF] from A1: a suspended account cannot get
    tokens, and its WHM login is dead). Suspended means what cpsrvd goes by: the suspension
    file /var/cpanel/suspended/USER (scripts/suspendacct writes it "to ensure cpsrvd will not
    allow any more processes to be created as the user"; cpanel-review.md F9, §4), not the
    system hash: a token does not check the password, so a hash locked by other means
    (`usermod --lock`, the agent's panel_lock) leaves it working here.
    """
    if not user or not token or (user != "root" and user not in store.resellers()):
        return None
    if user != "root" and os.path.exists(f"{store.SUSPENDED_DIR}/{user}"):
        return None
    wanted = _digest(token)
    for digest, entry in _load(user).items():
        if hmac.compare_digest(digest, wanted):
            expires = int(entry.get("expires_at", 0) or 0)
            if expires and expires < time.time():
                return None
            return set(entry.get("acls", []))
    return None
