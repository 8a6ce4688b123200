"""Drivers: how each step is done on one panel kind. Paths and binaries are data."""

from __future__ import annotations

import importlib
from typing import Any

from agent.errors import BadInput, StepUnavailable

# The panel kinds and the module of each one's driver (imported on first use). A panel
# kind without a driver module yet has no steps: `plan` shows them "not available on this
# driver yet" and `suspend` refuses a playbook that needs them (exit 2).
_MODULES: dict[str, str | None] = {"linux": "agent.drivers.linux.driver",
                                   "cpanel": "agent.drivers.cpanel.driver",
                                   "directadmin": None}


def driver(panel: str) -> Any:
    """Return the driver object of `panel`, or None when that panel has none yet."""
    module = _MODULES.get(panel)
    return importlib.import_module(module).DRIVER if module else None


def step_names(panel: str) -> list[str]:
    """Return the names of the steps `panel`'s driver implements, sorted."""
    found = driver(panel)
    return sorted(found.steps) if found else []


def available(panel: str, step: str) -> bool:
    """Return True when `step` is implemented for servers of `panel` kind."""
    found = driver(panel)
    return bool(found) and step in found.steps


def step(panel: str, name: str) -> Any:
    """Return `panel`'s implementation of step `name`; StepUnavailable when it has none."""
    if not available(panel, name):
        raise StepUnavailable(f"step {name!r} is not available on the {panel} driver")
    return driver(panel).steps[name]


def ensure_suspendable(server: Any, conn: Any, account: str, min_uid: int) -> None:
    """Raise BadInput when `account` does not exist on the server or is a system account,
    by the server's driver; a panel without a driver checks nothing (its playbooks are
    refused as "not available")."""
    found = driver(server.panel)
    if found is not None:
        found.ensure_suspendable(server, conn, account, min_uid)


def check(server: Any, conn: Any, lines: list[str]) -> bool:
    """Add the driver's own `check` lines; return False when something it needs is missing."""
    found = driver(server.panel)
    return found.check(server, conn, lines) if found is not None else True


def reseller_tree(server: Any, conn: Any, name: str) -> Any:
    """Return reseller `name`'s Tree (agent.drivers.tree) on the server, by its driver;
    BadInput when the driver has no reseller target or does not know `name`."""
    found = driver(server.panel)
    if found is None or not hasattr(found, "reseller_tree"):
        raise BadInput(f"reseller targets are not available on the {server.panel} driver "
                       "yet; nothing was changed")
    return found.reseller_tree(server, conn, name)


def server_tree(server: Any, conn: Any, min_uid: int, protected: set[str]) -> Any:
    """Return the whole server's Tree (agent.drivers.tree), by its driver: its admins' and
    resellers' logins, then every customer account on it but the `protected` ones (root
    and the agent's own login are never in it); BadInput when the driver has no
    whole-server target."""
    found = driver(server.panel)
    if found is None or not hasattr(found, "server_tree"):
        raise BadInput(f"whole-server targets are not available on the {server.panel} "
                       "driver yet; nothing was changed")
    return found.server_tree(server, conn, min_uid, protected)


def batch_files(server: Any) -> list[str]:
    """Return the files a batch of the server's accounts reads up front for its shared
    finish (none unless the driver names some)."""
    named = getattr(driver(server.panel), "batch_files", None)
    return list(named(server)) if named is not None else []


def login_step(panel: str) -> str:
    """Return the step that locks a reseller's own login on `panel` (applied first)."""
    return getattr(driver(panel), "login_step", "panel_lock")


def check_accounts(server: Any, conn: Any, names: list[str], min_uid: int) -> dict[str, str]:
    """Return why each of `names` may not be suspended (empty: all may), by the driver's
    one-call check; a driver whose tree comes from the panel itself checks nothing."""
    found = driver(server.panel)
    check_many = getattr(found, "check_accounts", None)
    return check_many(server, conn, names, min_uid) if check_many else {}
