"""A whole plain Linux host as one tree: whose logins are locked first, which accounts get
the playbook's stages.

A host without a panel keeps no list of its customers, so the accounts are the passwd
database's (one `getent passwd` for all of them, as the name service sees it: files, LDAP
or sss alike): every entry from `min_uid` on that is not the overflow uid 65534. Left out,
and said so in `plan`: the protected accounts of the config, root and the login the agent
itself connects as (the whole-server case must never cut the agent off its own server).

The logins locked first are the server's `admins:` and the logins of every reseller the
config declares under it: both can move customers away or undo a grade while the tree goes
down. A passwd name the agent's rules refuse stops the call before anything changes (it
would otherwise be an account silently left running); it can be protected instead.
"""

from __future__ import annotations

from typing import Any

from agent import ids
from agent.config.resellers import walk
from agent.drivers.tree import Tree
from agent.errors import BadInput


def _entries(conn: Any, getent: str) -> list[list[str]]:
    out = conn.run([getent, "passwd"]).text
    return [f for f in (line.split(":") for line in out.splitlines()) if len(f) >= 7]


def reseller_logins(server: Any) -> list[str]:
    """Return the logins of every reseller the config declares under `server`, each tree's
    top first (a sub-reseller after the reseller over it)."""
    subs = {s for e in server.resellers.values() for s in e.resellers}
    found: list[str] = []
    for top in sorted(set(server.resellers) - subs):
        entries, _accounts = walk(server.resellers, top, f"servers.{server.name}.resellers")
        found += [e.login for e in entries]
    return list(dict.fromkeys(found))


def server_tree(server: Any, conn: Any, min_uid: int, protected: set[str]) -> Tree:
    """Return the whole host's tree (read-only, one round trip).

    Ensures: `logins` are the config's admins, then the declared resellers' logins;
    `accounts` every passwd entry with a uid from `min_uid` on (65534 excluded) in passwd
    order, but the protected ones, root and the agent's own login; BadInput naming any such
    entry whose name the agent cannot target, before anything changes.
    """
    own = {"root", server.user}
    accounts: list[str] = []
    left: list[str] = []
    bad: list[str] = []
    for fields in _entries(conn, server.linux.getent):
        name, uid = fields[0], fields[2]
        if not uid.isdigit() or int(uid) < min_uid or int(uid) == 65534:
            continue
        if name in protected or name in own:
            left.append(name)
            continue
        try:
            ids.account(name, "linux")
        except BadInput as exc:
            bad.append(f"{name!r} ({exc})")
            continue
        accounts.append(name)
    if bad:
        raise BadInput(f"the passwd database of {server.name} holds account(s) the agent "
                       f"cannot target: {'; '.join(bad)}; add them to protected_accounts to "
                       "leave them out; nothing was changed")
    logins = list(dict.fromkeys([*server.admins, *reseller_logins(server)]))
    notes = [f"accounts from the passwd database (uid {min_uid} and up): {len(accounts)}",
             "the admin and reseller logins are locked with panel_lock (password, shell, "
             "SSH) before any account's stage"]
    if not logins:
        notes.append("no admins: listed under the server and no resellers declared: no "
                     "login is locked before the accounts' stages")
    if left:
        notes.append("left out (protected, root or the agent's own login): "
                     + ", ".join(sorted(set(left))))
    return Tree(server.name, tuple(logins), tuple(accounts),
                tuple(e for e in server.resellers), tuple(notes), kind="server")
