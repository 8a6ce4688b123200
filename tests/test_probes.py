"""The lean probes (agent/steps/probes.py) against the test host's real Apache: one kept-alive
connection carries many Hosts and each gets its own vhost's reply, HTTPS is one connection per
domain with SNI (no 421), and the reply is the same file a fresh connection (`fetch`) gets.
The landing page side is checked through the agent's own verify in test_landing_map.py and
test_landing_roundtrip.py."""

from __future__ import annotations

import http.client

import pytest

from agent.config.servers import Server
from agent.errors import VerifyFailed
from agent.steps import visitor as lean
from agent.steps.probes import Visitor, check_landing, fetch
from tests.hosts.provision import ACCOUNTS, site_page

pytestmark = pytest.mark.testhost

# (account, site, name) for every name the provisioned vhosts answer.
NAMES = [(account, site, name) for account, sites in ACCOUNTS.items()
         for site, _sub, aliases, _htaccess in sites for name in [site, *aliases]]


def test_a_kept_alive_connection_gets_each_host_its_own_vhost(host, monkeypatch):
    srv = Server(host.name, "linux", "ssh", host=host.address)
    # What a fresh connection per request (requests) sees: each vhost's own index.html.
    # (Apache makes the ETag of a file changed in the last second weak: compare the rest)
    fresh = {(name, tls): fetch(srv, name, "/index.html", tls).headers["ETag"].removeprefix("W/")
             for _a, _s, name in NAMES for tls in (False, True)}
    connects = []
    real = http.client.HTTPConnection.connect
    monkeypatch.setattr(http.client.HTTPConnection, "connect",
                        lambda self: (connects.append(self.__class__.__name__), real(self)))
    with Visitor(srv) as visitor:
        for tls in (False, True):
            # Twice over, each domain's requests in a row (an HTTPS connection is per domain).
            for account, site, name in NAMES:
                for _ in range(2):
                    got = visitor.get(name, "/index.html", tls)
                    assert got.status_code == 200, (name, tls)
                    assert got.headers["ETag"].removeprefix("W/") == fresh[name, tls], (name, tls)
                    assert got.headers["Content-Length"] == str(len(site_page(account, site)))
    # Plain HTTP: one connection for every Host; HTTPS: one per domain, reused.
    assert connects.count("HTTPConnection") == 1
    assert connects.count("_TLSConnection") == len(NAMES)


def test_check_landing_passes_on_the_sites_and_fails_asked_for_the_landing_page(host,
                                                                              monkeypatch):
    srv = Server(host.name, "linux", "ssh", host=host.address)
    targets = [(name, port, tls) for _a, _s, name in NAMES for port, tls in ((80, False),
                                                                             (443, True))]
    monkeypatch.setattr(lean, "WORKERS", 2)
    check_landing(srv, targets, suspended=False, wait=0)
    with pytest.raises(VerifyFailed, match="expected the landing page"):
        check_landing(srv, targets, suspended=True, wait=0)
