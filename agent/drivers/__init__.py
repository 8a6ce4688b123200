"""Drivers: how each step is done on one panel kind. Paths and binaries are data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.errors import BadInput, StepUnavailable

# Steps each panel's driver implements today. `plan` reports the others as "not available on
# this driver yet" and `suspend` refuses a playbook that needs them (exit 2).
AVAILABLE_STEPS: dict[str, frozenset[str]] = {
    "linux": frozenset({"backup", "landing_page", "mail_block", "ftp_lock", "db_lock",
                        "panel_lock"}),
    "cpanel": frozenset(),
    "directadmin": frozenset(),
}


def available(panel: str, step: str) -> bool:
    """Return True when `step` is implemented for servers of `panel` kind."""
    return step in AVAILABLE_STEPS.get(panel, frozenset())


def step(panel: str, name: str) -> Any:
    """Return the implementation of step `name` on servers of `panel` kind.

    Raises StepUnavailable when that driver does not implement it. (The linux driver's
    steps still live in agent/steps; they move into agent/drivers/linux/ with issue 10.)
    """
    if not available(panel, name):
        raise StepUnavailable(f"step {name!r} is not available on the {panel} driver")
    from agent import steps

    return steps.REGISTRY[name]


def ensure_suspendable(server: Any, conn: Any, account: str, min_uid: int) -> None:
    """Raise BadInput when `account` does not exist on the server or is a system account
    (uid below `min_uid`, or `nobody`), by the server's driver; a driver without account
    facts yet checks nothing (its playbooks are refused as "not available")."""
    if server.panel in _FACTS:
        _FACTS[server.panel](server, conn, account, min_uid)


def check(server: Any, conn: Any, lines: list[str]) -> bool:
    """Add the driver's own `check` lines; return False when something it needs is missing."""
    if server.panel not in _CHECKS:
        return True
    return _CHECKS[server.panel](server, conn, lines)


def _linux_facts(server: Any, conn: Any, account: str, min_uid: int) -> None:
    from agent.drivers import linux

    fields = linux.passwd_entry(conn, server.linux, account)
    uid = int(fields[2]) if fields[2].isdigit() else -1
    if uid < min_uid or uid == 65534:
        raise BadInput(f"account {account!r} is a system account on {server.name} (uid {uid}; "
                       f"customers start at min_uid {min_uid}) and may never be suspended")
    linux.home(conn, server.linux, account)


def _linux_check(server: Any, conn: Any, lines: list[str]) -> bool:
    from agent.checks import linux_check

    return linux_check(conn, server.linux, lines)


# The panel kinds whose drivers know accounts and have a `check`, and where.
_FACTS: dict[str, Callable[[Any, Any, str, int], None]] = {"linux": _linux_facts}
_CHECKS: dict[str, Callable[[Any, Any, list[str]], bool]] = {"linux": _linux_check}
