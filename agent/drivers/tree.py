"""A tree target as a driver reports it (a reseller's tree, or a whole server): whose logins
are locked first, which accounts get the playbook's stages. Panel-neutral data; each driver
builds it its own way (linux: from config and the passwd database, cPanel: the owner tree
walked from the panel's account list)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tree:
    """One reseller and everything under it (or one whole server), as found now.

    `logins`: the login names locked before anything else (the reseller's own, then each
    sub-reseller's, top first); `accounts`: every account that gets the playbook's stages,
    in a stable order; `resellers`: the reseller names of the tree, top first; `notes`: what
    `plan` should say about the tree (what a login lock also takes down, say); `kind`:
    "reseller", or "server" for a whole server (`reseller` is then the server's name and
    `logins` its admins and resellers).
    """

    reseller: str
    logins: tuple[str, ...]
    accounts: tuple[str, ...]
    resellers: tuple[str, ...]
    notes: tuple[str, ...] = ()
    kind: str = "reseller"

    @property
    def children(self) -> tuple[str, ...]:
        """Every account name the case has a child for: logins first, then accounts."""
        return tuple(dict.fromkeys(self.logins + self.accounts))
