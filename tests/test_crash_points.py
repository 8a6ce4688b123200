"""Killed at any journal transition, the next call converges (agent/failpoints.py).

For every N, the agent is SIGKILLed right after its N-th journal transition, and in a second
walk right after its N-th remote command, of an `immediate` suspend (then unsuspended), and of
an unsuspend (then suspended again, then unsuspended);
each time the host is compared from outside with what it should be: files, lock states,
HTTP, and the customer's own logins.
"""

from __future__ import annotations

import pytest

from agent.failpoints import ENV
from tests.test_ladder import at_once, logins, mail_works, snapshot, web_suspended

pytestmark = pytest.mark.testhost

KILLED = -9
RETRY_LATER = 75


def converge(agent, *args: str) -> tuple[int, dict | None, str]:
    """Call as the billing system does: exit 75 means "retry later", so retry (twice)."""
    for _attempt in range(3):
        rc, reply, out = agent(*args)
        if rc != RETRY_LATER:
            break
    return rc, reply, (reply or {}).get("errors") or out


def _all_locked(host) -> None:
    web, mail, other = at_once({"web": lambda: web_suspended(host),
                                "mail": lambda: mail_works(host), "other": lambda: logins(host)}
                               ).values()
    assert web
    assert all(v.startswith("auth failed") for v in mail.values()), mail
    assert all(v != "ok" for v in other.values()), other


def _all_open(host, before) -> None:
    web, mail, other = at_once({"web": lambda: web_suspended(host),
                                "mail": lambda: mail_works(host), "other": lambda: logins(host)}
                               ).values()
    assert not web
    assert mail == {"imap": "ok", "pop": "ok", "smtp_auth": "ok"}
    assert other == dict.fromkeys(other, "ok"), other
    assert snapshot(host) == before


# Upper bounds of the walks; each walk fails if the run is never left unkilled before them.
LIMIT = {"journal": 40, "command": 120}
# Fewer crash points than this means the hook did not count what it should.
AT_LEAST = {"journal": 12, "command": 20}


def _why(n: int, rc: int, reply: dict | None, out: str) -> str:
    """A failure message that names the error in full (pytest shortens a tuple's repr)."""
    errors = "; ".join(e.get("message", "") for e in (reply or {}).get("errors") or [])
    return f"after failpoint {n}: exit {rc}: {errors or out[-3000:]}"


def walk_suspend(agent_env, host, kind: str, first: int = 1, step: int = 1) -> None:
    """Kill an `immediate` suspend after its N-th `kind` event for every N (from `first`,
    every `step`-th); unsuspend each time."""
    before = snapshot(host)
    for n in range(first, LIMIT[kind], step):
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate",
                                   env={ENV: f"{kind}:{n}"})
        if rc != KILLED:  # every point walked
            assert rc == 0 and n > AT_LEAST[kind], _why(n, rc, reply, out)
            _all_locked(host)
            rc, _reply, out = agent_env("unsuspend", host.name, "alice")
            assert rc == 0, out
            break
        rc, reply, out = converge(agent_env, "unsuspend", host.name, "alice")
        assert rc == 0 and reply["state"] == "active", (n, out)
        _all_open(host, before)
    else:
        pytest.fail("the suspend never finished")
    _all_open(host, before)


def walk_unsuspend(agent_env, host, kind: str, first: int = 1, step: int = 1) -> None:
    """Kill an unsuspend after its N-th `kind` event for every N (from `first`, every
    `step`-th); suspend again each time."""
    before = snapshot(host)
    rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    for n in range(first, LIMIT[kind], step):
        rc, reply, out = agent_env("unsuspend", host.name, "alice", env={ENV: f"{kind}:{n}"})
        if rc != KILLED:
            assert rc == 0 and n > AT_LEAST[kind] // 2, _why(n, rc, reply, out)
            _all_open(host, before)
            break
        # Payment bounced after all: suspend again; every step must be in force again.
        rc, reply, out = converge(agent_env, "suspend", host.name, "alice", "--playbook",
                                  "immediate")
        assert rc == 0 and reply["state"] == "suspended", (n, out)
        _all_locked(host)
    else:
        pytest.fail("the unsuspend never finished")


def test_killed_suspend_at_every_transition_then_unsuspend_restores(agent_env, host):
    walk_suspend(agent_env, host, "journal")


def test_killed_unsuspend_at_every_transition_then_resuspend_relocks(agent_env, host):
    walk_unsuspend(agent_env, host, "journal")


# The command walks are the longest tests: each runs as two halves (odd and even N), which
# test workers can take side by side; every iteration starts from the same host state.
@pytest.mark.parametrize("first", [1, 2], ids=["odd", "even"])
def test_killed_suspend_after_every_command_then_unsuspend_restores(agent_env, host, first):
    walk_suspend(agent_env, host, "command", first, 2)


@pytest.mark.parametrize("first", [1, 2], ids=["odd", "even"])
def test_killed_unsuspend_after_every_command_then_resuspend_relocks(agent_env, host, first):
    walk_unsuspend(agent_env, host, "command", first, 2)
