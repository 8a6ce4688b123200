"""Drivers: how each step is done on one panel kind. Paths and binaries are data."""

from __future__ import annotations

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
