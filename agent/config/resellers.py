"""Resellers declared in config (`servers.NAME.resellers`), for servers whose panel keeps
no reseller tree of its own (the `linux` driver):

    resellers:
      rita: {login: rita, accounts: [alice, bob], resellers: [sam]}
      sam:  {accounts: [carol]}

Validated when the config loads, every problem with its path: names follow the panel's
account rules, a sub-reseller must be declared too, no reseller may be its own ancestor
(a cycle), and no account may sit under two resellers (the two cases would fight over
it). Whether each account exists is checked on the server before a case opens.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent import ids
from agent.config.validate import Problems, join, mapping, string, string_list
from agent.errors import BadInput, ConfigError

_KEYS = {"login", "accounts", "resellers"}


@dataclass(frozen=True)
class ResellerEntry:
    """One reseller of the config: its own login, its accounts, its sub-resellers."""

    name: str
    login: str
    accounts: tuple[str, ...] = ()
    resellers: tuple[str, ...] = ()


def parse(doc: object, path: str, panel: str, problems: Problems) -> dict[str, ResellerEntry]:
    """Return the server's resellers; record every problem (bad names, unknown
    sub-resellers, cycles, an account under two resellers) under its config path."""
    d = doc if isinstance(doc, dict) else {}
    if doc is not None and not isinstance(doc, dict):
        problems.add(path, "must be a mapping of reseller names")
    found: dict[str, ResellerEntry] = {}
    for name, entry in d.items():
        where = join(path, name if isinstance(name, str) else "<a key>")
        if not _valid(name, panel, where, problems):
            continue
        e = mapping(entry, where, problems, _KEYS)
        login = string(e, "login", where, problems, default=name) or name
        names = {key: string_list(e, key, where, problems) for key in ("accounts", "resellers")}
        ok = _valid(login, panel, join(where, "login"), problems)
        for key, values in names.items():
            for i, value in enumerate(values):
                ok = _valid(value, panel, join(join(where, key), i), problems) and ok
        if ok:
            found[name] = ResellerEntry(name, login, tuple(names["accounts"]),
                                        tuple(names["resellers"]))
    _check_tree(found, path, problems)
    return found


def _valid(name: object, panel: str, where: str, problems: Problems) -> bool:
    try:
        ids.account(name if isinstance(name, str) else "", panel)
    except BadInput as exc:
        problems.add(where, str(exc))
        return False
    return True


def _check_tree(found: dict[str, ResellerEntry], path: str, problems: Problems) -> None:
    owner: dict[str, str] = {}
    for name, entry in found.items():
        for i, sub in enumerate(entry.resellers):
            if sub not in found:
                problems.add(join(join(join(path, name), "resellers"), i),
                             f"sub-reseller {sub!r} is not declared under resellers")
        for i, account in enumerate(entry.accounts):
            if account in owner and owner[account] != name:
                problems.add(join(join(join(path, name), "accounts"), i),
                             f"account {account!r} is already under reseller "
                             f"{owner[account]!r}; an account belongs to one reseller")
            owner.setdefault(account, name)
    parents: dict[str, str] = {}
    for name, entry in found.items():
        for sub in entry.resellers:
            if sub in parents and parents[sub] != name:
                problems.add(join(join(path, name), "resellers"),
                             f"sub-reseller {sub!r} is already under {parents[sub]!r}")
            parents.setdefault(sub, name)
    for name in found:
        seen, at = [name], parents.get(name)
        while at is not None and at not in seen:
            seen.append(at)
            at = parents.get(at)
        if at == name:
            problems.add(join(path, name), "is its own sub-reseller (cycle: "
                         + " -> ".join(reversed(seen + [name])) + ")")


def walk(entries: dict[str, ResellerEntry], name: str, source: str
         ) -> tuple[list[ResellerEntry], list[str]]:
    """Return the resellers of `name`'s tree (top first) and its accounts in order.

    Raises BadInput for a reseller the config does not declare; ConfigError (naming the
    entry) should the tree still hold a cycle (parse refuses those)."""
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise BadInput(f"unknown reseller {name!r} (configured: {known})")
    order: list[ResellerEntry] = []
    queue = [name]
    while queue:
        entry = entries[queue.pop(0)]
        if entry in order:
            raise ConfigError(source, [f"resellers.{entry.name}: appears twice in the tree "
                                       f"of {name!r}"])
        order.append(entry)
        queue += list(entry.resellers)
    accounts = list(dict.fromkeys(a for e in order for a in e.accounts))
    return order, accounts


def where(entries: dict[str, ResellerEntry], name: str, prefix: str) -> str:
    """Return the config path that puts account or login `name` in a tree."""
    for entry in entries.values():
        if name in entry.accounts:
            return f"{prefix}.{entry.name}.accounts[{entry.accounts.index(name)}]"
    for entry in entries.values():
        if name == entry.login:
            return f"{prefix}.{entry.name}.login"
    return prefix
