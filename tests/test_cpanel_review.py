"""The cPanel review's findings (../shared/reference/cpanel-review.md, issue 16), one test
each, against a simulator that now behaves as real cPanel does there (each behaviour cites
its source in tests/hosts/cpanel/sim/). Each test says which finding it covers; each was run
against the driver as it was before its fix and failed there (the note of issue 16 says how).
"""

from __future__ import annotations

import pytest

from tests.hosts.cpanel import calls
from tests.hosts.cpanel.agent import make_agent, snapshot

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-review")]

cp, host = calls.fixtures(offset=36)


@pytest.fixture
def agent(cp, host, tmp_path):
    """The agent over SSH with whmapi1/uapi; the simulator's state is reset after."""
    return make_agent(host, tmp_path, "cli", cp[1].root_token)


def _cpuser(host, user: str) -> str:
    return host.path(f"/var/cpanel/users/{user}").read_text()


def test_f14_unsuspend_keeps_the_service_proxy_backends(host, agent) -> None:
    """F14: unsuspendacct drops every service-proxy backend unless told to retain them
    (scripts/unsuspendacct:402-415); the agent's reversal of its own suspendacct keeps them."""
    path = "/var/cpanel/users/bob"
    original = _cpuser(host, "bob")
    # unsuspendacct deletes SUSPENDED (scripts/unsuspendacct:224): an account that was
    # suspended once has none, so the round trip is byte-identical from there.
    proxied = (original.replace("SUSPENDED=0\n", "") + "PROXY_BACKEND=node2.example.net\n"
               "PROXY_BACKEND-Mail=mx2.example.net\n")
    host.path(path).write_text(proxied)
    try:
        before = snapshot(host)
        rc, _reply, out = agent("suspend", host.name, "bob", "--playbook", "final")
        assert rc == 0, out
        rc, _reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert _cpuser(host, "bob") == proxied
        assert snapshot(host) == before
    finally:
        host.path(path).write_text(original)
