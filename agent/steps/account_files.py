"""Commands that rewrite the system's account files (/etc/passwd, shadow, group, gshadow),
run under one server-side lock.

shadow-utils' tools lock those files without waiting: a usermod or gpasswd started while
another one holds them fails ("cannot lock /etc/group"), and gpasswd reads the group it
changes before it takes the lock, so two run side by side can write one's change away (a
reseller batch runs several at once; seen in CI as a member left in cPanel's SSH deny
group). The agent's own commands therefore wait for each other on this lock (a runtime
file, nothing under /etc; `flock` is util-linux's).
"""

from __future__ import annotations

from agent.steps.actions import Run

LOCK = "/run/suspension-agent-usermod.lock"


def run(argv: list[str]) -> Run:
    """Return `argv` (usermod, gpasswd) as a command that holds the lock while it runs."""
    return Run(["flock", "-w", "60", LOCK, *argv])
