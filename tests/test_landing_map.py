"""The landing page through the host map on the linux test host, over real SSH: once the map
is installed (docs/linux-host.md), suspending and lifting an account or a whole reseller
tree is one write of the map file and no Apache reload at all, with every promise of the
landing page kept (503 and headers over HTTP and HTTPS on every name, the customer's own
.htaccess beaten, ACME files still served as static text), and the host byte-identical
after. A vhost the map cannot cover falls back to the per-account include, and says why.
"""

from __future__ import annotations

import pytest

from agent.config.servers import Server
from agent.steps.probes import fetch, looks_suspended
from tests.hosts.provision import ACCOUNTS, site_page
from tests.test_hostmap_apache import apache_state
from tests.test_ladder import NOT_RESTORED, snapshot
from tests.test_reseller_linux import LOGINS, TREE, shows

pytestmark = pytest.mark.testhost

MAP = "/etc/apache2/suspension-agent/hosts.map"


def state_after(host, before: dict) -> None:
    now = apache_state(host)
    assert (now["pid"], now["start"], now["reloads"]) == (
        before["pid"], before["start"], before["reloads"]), "Apache was reloaded"


def test_an_account_goes_behind_the_page_and_back_without_a_reload(mapped, agent_env) -> None:
    host, agent = mapped, agent_env
    before = snapshot(host)
    rc, reply, out = agent("plan", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    landing = next(s for st in reply["stages"] for s in st["steps"]
                   if s["step"] == "landing_page")
    assert landing["facts"]["mechanism"] == "host map", landing
    (edit,) = [a for a in landing["actions"] if a.startswith(f"map   {MAP}: + ")]
    assert {"shop.test", "www.shop.test", "blog.test", "alice-blog.test"} <= set(edit.split())
    assert not [a for a in landing["actions"] if "graceful" in a]  # no reload at all
    apache = apache_state(host)
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    assert set(shows(host, "alice").values()) == {"landing"}
    assert set(shows(host, "bob").values()) == {"own"}
    server = Server("t", "linux", "ssh", host=host.address)
    # The customer's own rules cannot get around it; ACME files still answer, as text.
    for path in ("/old/x", "/go", "/missing?x=1"):
        assert looks_suspended(fetch(server, "blog.test", path, tls=False)), path
    acme = fetch(server, "shop.test", "/.well-known/acme-challenge/token-abc", tls=False)
    assert acme.status_code == 200 and acme.text == "acme-token-for-shop.test\n"
    assert acme.headers["Content-Type"].startswith("text/plain")
    assert looks_suspended(fetch(server, "shop.test", "/.well-known/acme-challenge/nope",
                                 tls=True))
    state_after(host, apache)
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert set(shows(host, "alice").values()) == {"own"}
    state_after(host, apache)
    assert {k: v for k, v in snapshot(host).items() if k not in NOT_RESTORED} == {
        k: v for k, v in before.items() if k not in NOT_RESTORED}


def test_a_reseller_tree_is_one_map_write_each_way(mapped, agent_env) -> None:
    host, agent = mapped, agent_env
    for name in LOGINS:
        host.run(["useradd", "--create-home", "--shell", "/bin/bash", name])
    try:
        text = agent.config.read_text()
        agent.config.write_text(text.replace("    connect_timeout: 5\n",
                                             "    connect_timeout: 5\n" + TREE))
        apache = apache_state(host)
        rc, reply, out = agent("suspend", host.name, "--reseller", "rita", "--playbook",
                               "web-now")
        assert rc == 0, out
        for account in ACCOUNTS:
            assert set(shows(host, account).values()) == {"landing"}, account
        names = host.path(MAP).read_text().split()
        assert {"shop.test", "www.blog.test", "bob.test"} <= set(names)
        _rc, events, _out = agent("history", host.name, "--reseller", "rita")
        maps = [e for e in events["events"] if e["event"] == "step.applied"
                and e["step"] == "landing_page"]
        assert len(maps) == 2 and all(any(a.startswith("map ") for a in e["detail"]["actions"])
                                      for e in maps)
        rc, reply, out = agent("unsuspend", host.name, "--reseller", "rita")
        assert rc == 0, out
        for account in ACCOUNTS:
            assert set(shows(host, account).values()) == {"own"}, account
        state_after(host, apache)
    finally:
        agent("unsuspend", host.name, "--reseller", "rita")
        for name in LOGINS:
            host.run(["userdel", "--remove", name], check=False)


def test_a_vhost_the_map_cannot_cover_falls_back_to_the_include(mapped, agent_env) -> None:
    host, agent = mapped, agent_env
    vhost = host.path("/etc/apache2/sites-available/bob.test.conf")
    original = vhost.read_bytes()
    # The vhost's own rules only, no inherited ones: the map's rules never run there, the
    # include's (in the vhost itself) do.
    vhost.write_text(original.decode().replace(
        "    DocumentRoot", "    RewriteOptions IgnoreInherit\n    DocumentRoot"))
    host.run(["/usr/sbin/apache2ctl", "graceful"])
    try:
        rc, reply, out = agent("plan", host.name, "bob", "--playbook", "web-now")
        landing = next(s for st in reply["stages"] for s in st["steps"]
                       if s["step"] == "landing_page")
        assert landing["facts"]["mechanism"] == "include", landing
        assert "IgnoreInherit" in landing["facts"]["why not the host map"]
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "web-now")
        assert rc == 0, out
        assert set(shows(host, "bob").values()) == {"landing"}
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0 and set(shows(host, "bob").values()) == {"own"}, out
        server = Server("t", "linux", "ssh", host=host.address)
        own = fetch(server, "bob.test", "/", tls=False)
        assert own.text == site_page("bob", "bob.test")
    finally:
        vhost.write_bytes(original)
        host.run(["/usr/sbin/apache2ctl", "graceful"])
