"""A cPanel reseller's tree, walked from the panel: the reseller, its sub-resellers at any
depth, and every account any of them owns.

cPanel's own reseller functions see one level only: `suspendreseller` suspends the accounts
`getaccts(R)` returns, those whose owner is exactly R, so a sub-reseller's customers keep
running (reference/lockouts.md 4.2, panels.md A9). The tree is therefore built here from
two reads, whatever the reseller count: `listresellers` (data.reseller[], usernames; A5)
and one `listaccts want=user,owner` (data.acct[], each account's owner; A5), then walked
from R down the owner links.

An account has one owner, but a reseller may own its own account (normal on cPanel: WHM's
"make the account own itself"), and a hand-edited /etc/trueuserowners can hold a longer
loop (R owns S, S owns R). Each account is taken once, the first time the walk meets it;
a loop other than self-ownership is named in the notes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.drivers.cpanel.facts import Panel, account_name
from agent.drivers.tree import Tree
from agent.errors import BadInput, StepError


def resellers(panel: Panel) -> set[str]:
    """Return the server's reseller names (listresellers, A5; root-level WHM access)."""
    data = panel.query(panel.read_calls("", "resellers")[0])
    names = data.get("reseller") if isinstance(data, dict) else None
    if names is None:
        return set()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise StepError("listresellers: data.reseller is not a list of user names")
    return set(names)


def owners(panel: Panel) -> dict[str, str]:
    """Return account -> owner for every account on the server, from one listaccts call."""
    data = panel.query(panel.whm("listaccts", [("want", "user,owner")]))
    accts = data.get("acct") if isinstance(data, dict) else None
    if accts is None:
        return {}
    if not isinstance(accts, list) or not all(isinstance(a, dict) for a in accts):
        raise StepError("listaccts: data.acct is not a list of account records")
    found: dict[str, str] = {}
    for acct in accts:
        user, owner = acct.get("user"), acct.get("owner")
        if not isinstance(user, str) or not isinstance(owner, str) or not owner:
            raise StepError(f"listaccts: the record of {user!r} has no user and owner names")
        found[user] = owner
    return found


def _children(owner_of: dict[str, str]) -> dict[str, list[str]]:
    by_owner: dict[str, list[str]] = {}
    for user, owner in sorted(owner_of.items()):
        by_owner.setdefault(owner, []).append(user)
    return by_owner


def _checked(names: Iterable[str], reseller: str, server: str) -> None:
    # Every name becomes a step's target: one the agent's own rules refuse (A13) stops the
    # tree before anything is changed, never an account silently left out of the case.
    for name in names:
        try:
            account_name(name)
        except BadInput as exc:
            raise StepError(f"the tree of reseller {reseller!r} on {server} holds an account "
                            f"the agent cannot target ({exc}); nothing was changed") from None


def walk(name: str, owner_of: dict[str, str], reseller_names: set[str]
         ) -> tuple[list[str], list[str], list[str]]:
    """Return (resellers, accounts, loops) of `name`'s tree: resellers top first (breadth
    first), accounts with `name`'s own first, then each reseller's accounts in name order,
    each once; `loops` the owner links that lead back into the tree (self-ownership not
    counted)."""
    by_owner = _children(owner_of)
    tree_resellers, accounts, loops = [name], [name], []
    seen = {name}
    at = 0
    while at < len(tree_resellers):
        owner = tree_resellers[at]
        at += 1
        for user in by_owner.get(owner, []):
            if user in seen:
                if user != owner:
                    loops.append(f"{user} (owned by {owner})")
                continue
            seen.add(user)
            accounts.append(user)
            if user in reseller_names:
                tree_resellers.append(user)
    return tree_resellers, accounts, loops


def reseller_tree(panel: Panel, name: str, login_step: str) -> Tree:
    """Return reseller `name`'s tree as the panel reports it now (read-only).

    Ensures: `name` is a reseller with an account on the server (BadInput otherwise, before
    any change); `resellers` and `logins` hold it and every sub-reseller at any depth, top
    first; `accounts` holds every account of the tree once, the resellers' own accounts
    included (they are cPanel accounts with their own sites and mailboxes, so they get the
    playbook's stages, the landing page too); `notes` say what the login lock takes down
    besides logins.
    """
    name = account_name(name)
    server = panel.server.name
    known = resellers(panel)
    owner_of = owners(panel)
    if name not in known:
        what = ("an account but not a reseller; suspend it as an account" if name in owner_of
                else "no account")
        raise BadInput(f"{name!r} is not a reseller on {server}: WHM listresellers does not "
                       f"list it ({what})")
    if name not in owner_of:
        raise BadInput(f"reseller {name!r} on {server} has no account (listresellers lists "
                       "it, listaccts does not); nothing to suspend")
    tree_resellers, accounts, loops = walk(name, owner_of, known)
    _checked(accounts, name, server)
    notes = [
        f"tree walked from listaccts owners: {len(tree_resellers)} reseller(s) "
        f"({', '.join(tree_resellers)}), {len(accounts)} account(s) with the resellers' own; "
        "cPanel's suspendreseller alone would reach only the direct accounts of each",
        f"login lock ({login_step}): WHM suspendreseller reseller-only=1 disallow=1 of each "
        "reseller, a full suspendacct of its own account (A7): besides its WHM, cPanel, "
        "webmail, SSH and FTP logins and open sessions, its own sites (cPanel's suspended "
        "page until the landing page stage), mailboxes, databases, cron jobs and outgoing "
        "mail stop; only root can lift it; the accounts it owns are not touched by it",
    ]
    if owner_of[name] == name:
        notes.append(f"{name} owns its own account (listed once)")
    if loops:
        notes.append("owner loop in the panel's records, each account taken once: "
                     + ", ".join(loops))
    return Tree(reseller=name, logins=tuple(tree_resellers), accounts=tuple(accounts),
                resellers=tuple(tree_resellers), notes=tuple(notes))


def tree_of(server: Any, conn: Any, name: str, login_step: str) -> Tree:
    """Return `name`'s tree on `server`, over the channel its config chooses."""
    return reseller_tree(Panel(server, conn), name, login_step)
