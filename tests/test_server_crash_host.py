"""A whole-server suspend and unsuspend on the linux test host, killed after each of its
journal transitions (kill -9 as in tests/test_reseller_crash_host.py, whose walk this is):
the same host and tree (alice, bob, carol; the declared reseller logins rita and sam locked
first), now as the whole server's case, with the host map installed, so alice's and bob's
pages go up by a map edit, carol's (no map hook in her folder) by her include and a reload,
and the server's own change, `server_landing`, puts its bare address behind the page.

Each next call must converge to what an uncut run gives (every site, the bare address, the
logins, the agent's files), and each unsuspend give back the host byte for byte with the
bare address the default vhost's own site again. An uncut suspend has 26 transitions, an
unsuspend 17 (2.5 minutes for both walks); the fast tier (tests/fast/test_reseller_crash.py)
also cuts after every command.
"""

from __future__ import annotations

import pytest

from tests import test_reseller_crash_host as walks
from tests.hosts import rawhttp
from tests.test_reseller_crash_host import TREE, Walk, walk_suspend, walk_unsuspend, whole

pytestmark = pytest.mark.testhost

SERVER = ("--whole-server",)
tree_host = walks.tree_host  # the walk's host and tree, a fixture of this module too


@pytest.fixture
def server_agent(mapped, agent_env, tree_host):
    text = agent_env.config.read_text()
    agent_env.config.write_text(text.replace("    connect_timeout: 5\n",
                                             "    connect_timeout: 5\n" + TREE))
    yield agent_env
    agent_env("unsuspend", tree_host.name, *SERVER, timeout=120)


def bare_address(host, suspended: bool) -> None:
    """The server's own address over HTTP/1.0 without Host: the landing page while the
    whole server is suspended, the default vhost's own site (blog.test) when it is not."""
    reply = rawhttp.request(host.address, "/", None)
    if suspended:
        assert reply.status == 503 and "Example Hosting" in reply.text, (reply.status,
                                                                         reply.text[:200])
    else:
        assert reply.status == 200 and "<h1>blog.test</h1>" in reply.text, reply.status


def test_a_whole_server_suspend_killed_at_its_transitions_converges(server_agent,
                                                                     tree_host) -> None:
    walk_suspend(Walk(server_agent, tree_host, whole(tree_host), SERVER, bare_address),
                 "whole-server")


def test_a_whole_server_unsuspend_killed_at_its_transitions_converges(server_agent,
                                                                       tree_host) -> None:
    walk_unsuspend(Walk(server_agent, tree_host, whole(tree_host), SERVER, bare_address),
                   "whole-server")
