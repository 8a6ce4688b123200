"""Locks another tool lifted while the case is open, on the fake cPanel: an admin's
`suspendacct --force` then `unsuspendacct` strips every leading `!` of the account's hash
(scripts/unsuspendacct:242-243) and takes it out of the SSH deny group. `status` says so
instead of claiming the locks, and the next `tick` puts them back (agent/engine/drift.py);
a password changed meanwhile is reported, never locked again."""

from __future__ import annotations

from agent.engine import drift
from tests.fast.test_cpanel_ladder import Cp, cp  # noqa: F401 - the fixture


def _admin_suspend_and_unsuspend(cp: Cp, new_hash: str | None = None) -> None:  # noqa: F811
    alice = cp.alice
    alice.hash = new_hash or alice.hash.lstrip("!")
    alice.ssh_denied = False


def _drift(cp: Cp) -> list[str]:  # noqa: F811
    engine = cp.engine()
    server = engine.server("cp1")
    return drift.drifted(engine, server, ("cp1", "account", "alice"))


def test_tick_puts_back_the_locks_an_admins_unsuspendacct_lifted(cp: Cp) -> None:  # noqa: F811
    assert cp.suspend("cp-lock").errors == []
    assert cp.alice.hash == "!$6$salt$hash" and cp.alice.ssh_denied
    assert _drift(cp) == []
    _admin_suspend_and_unsuspend(cp)
    found = _drift(cp)
    assert any(w.startswith("ftp_lock: not in effect as planned (the system hash") for w in
               found), found
    outcomes = cp.engine().tick()
    assert [o.message for o in outcomes] == ["put back: ftp_lock, panel_lock"], outcomes
    assert cp.alice.hash == "!$6$salt$hash" and cp.alice.ssh_denied
    assert _drift(cp) == []
    # Nothing more to do: the next tick finds nothing and says nothing.
    assert cp.engine().tick() == []
    assert cp.unsuspend().errors == []
    assert cp.alice.hash == "$6$salt$hash" and not cp.alice.ssh_denied


def test_a_password_changed_meanwhile_is_reported_not_locked(cp: Cp) -> None:  # noqa: F811
    assert cp.suspend("cp-lock").errors == []
    _admin_suspend_and_unsuspend(cp, new_hash="$6$new$admin")
    outcomes = cp.engine().tick()
    errors = [e["message"] for o in outcomes for e in o.errors]
    assert any("found undone and not put back" in m and "not locked again" in m
               for m in errors), errors
    assert cp.alice.hash == "$6$new$admin"
