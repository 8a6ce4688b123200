"""A whole cPanel server as one tree, from the same two reads as a reseller's tree
(listresellers and one listaccts want=user,owner; panels.md A5).

Logins locked first: every reseller (WHM's users other than root are resellers: A5, A9), by
how many resellers own it (a reseller that owns itself, as WHM makes them, or is owned by
root: none), so that a reseller is locked before the resellers it owns, then by name.
Accounts: every account listaccts returns, each once, the resellers' own first (the order
their logins were locked), then the rest by name. Left out, and said so in `plan`: the
protected accounts of the config and the login the agent itself connects as; root is no
cPanel account and is never listed.
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.facts import Panel, account_name
from agent.drivers.cpanel.reseller_tree import owners, resellers
from agent.drivers.tree import Tree
from agent.errors import BadInput, StepError


def _checked(names: list[str], server: str) -> None:
    # Every name becomes a step's target: one the agent's rules refuse (A13) stops the
    # call before anything changes, never an account silently left running.
    bad = []
    for name in names:
        try:
            account_name(name)
        except BadInput as exc:
            bad.append(f"{name!r} ({exc})")
    if bad:
        raise StepError(f"{server} holds account(s) the agent cannot target: "
                        f"{'; '.join(bad)}; add them to protected_accounts to leave them out; "
                        "nothing was changed")


def _depth(name: str, owner_of: dict[str, str], known: set[str]) -> int:
    """Return how many resellers own `name` above it (a self-owned reseller, one owned by
    root or by a deleted reseller: 0); an owner loop counts each reseller once."""
    depth, seen, at = 0, {name}, owner_of.get(name)
    while at in known and at not in seen:
        seen.add(at)
        depth, at = depth + 1, owner_of.get(at)
    return depth


def server_tree(panel: Panel, login_step: str, protected: set[str]) -> Tree:
    """Return the whole server's tree as the panel reports it now (read-only).

    Ensures: `logins` and `resellers` hold every reseller with an account but the protected
    ones, an owner before the resellers it owns; `accounts` every account once, the
    resellers' own first; nothing of root, the agent's own login or a protected account.
    """
    server = panel.server.name
    known = resellers(panel)
    owner_of = owners(panel)
    skip = set(protected) | {"root", panel.server.user}
    ordered = sorted(known, key=lambda r: (_depth(r, owner_of, known), r))
    # A reseller listed without an account has no login to lock (no system user, no
    # cPanel or WHM session): suspendreseller would only fail on it.
    logins = [r for r in ordered if r not in skip and r in owner_of]
    accounts = list(logins)
    accounts += sorted(set(owner_of) - set(accounts) - skip)
    _checked(logins + accounts, server)
    left = sorted((set(owner_of) | known) & skip)
    notes = [
        f"every account of listaccts ({len(accounts)}) and every reseller of listresellers "
        f"({len(logins)}), resellers locked down the owner links from root",
        f"login lock ({login_step}) of each reseller: WHM suspendreseller reseller-only=1 "
        "disallow=1, a full suspendacct of its own account (A7): its WHM, cPanel, webmail, "
        "SSH and FTP logins and open sessions, and its own sites, mail, databases and cron "
        "stop; only root can lift it",
    ]
    if no_account := [r for r in ordered if r not in owner_of and r not in skip]:
        notes.append("listed by listresellers without an account (no login to lock, "
                     "left out): " + ", ".join(no_account))
    if left:
        notes.append("left out (protected or the agent's own login): " + ", ".join(left))
    return Tree(server, tuple(logins), tuple(accounts), tuple(logins), tuple(notes),
                kind="server")


def tree_of(server: Any, conn: Any, login_step: str, protected: set[str]) -> Tree:
    """Return `server`'s whole tree, over the channel its config chooses."""
    return server_tree(Panel(server, conn), login_step, protected)
