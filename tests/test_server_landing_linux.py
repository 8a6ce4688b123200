"""The whole server's web grade on its bare address (issue 17 item 4), on the linux test host
with the host map installed, asked from outside as visitors would.

After `suspend --whole-server` every domain and the server's own address answer the landing
page: HTTP and HTTPS with the address as Host, HTTP/1.0 without any Host, a name no vhost
knows; an ACME challenge file of a domain still answers as a plain file; Apache was not
reloaded. After `unsuspend` the address is the default vhost's own site again and the map is
byte for byte as before. A second layout, Debian's stock default vhost (000-default.conf)
in front without a mod_rewrite directive, is refused before anything changes, naming the
file; with `RewriteEngine On` added to it, its address answers the landing page too.
"""

from __future__ import annotations

import pytest

from agent.config.servers import LinuxPaths
from tests.hosts import rawhttp
from tests.hosts.provision import site_page
from tests.test_hostmap_apache import apache_state
from tests.test_reseller_linux import shows

pytestmark = pytest.mark.testhost

MARK = "Example Hosting"  # the company name the landing page carries
ACME = "/.well-known/acme-challenge/tok-Server_1"
DEFAULT_SITE = """<VirtualHost *:80>
    ServerName default.invalid
    DocumentRoot /var/www/html
@EXTRA@</VirtualHost>
"""


def bare(host) -> dict[str, str]:
    """What the server's own address answers: "landing", "own:<site>" or the status."""
    asks = {"http Host=address": dict(host=host.address),
            "https Host=address": dict(host=host.address, tls=True),
            "http/1.0 no Host": dict(host=None),
            "http unknown name": dict(host="nobody-has-this.test")}
    out = {}
    for label, kw in asks.items():
        reply = rawhttp.request(host.address, "/", **kw)
        if reply.status == 503 and MARK in reply.text and reply.header("retry-after") \
                and "no-store" in reply.header("cache-control"):
            out[label] = "landing"
        elif reply.status == 200:
            out[label] = "own:" + reply.text.split("<h1>")[-1].split("</h1>")[0]
        else:
            out[label] = str(reply.status)
    return out


@pytest.fixture
def acme(host):
    path = host.path(f"/home/bob/public_html{ACME}")
    made = [d for d in (path.parent.parent, path.parent) if not d.exists()]
    for d in made:
        d.mkdir()
    path.write_text("acme-token-for-bob\n")
    yield
    path.unlink()
    for d in reversed(made):
        d.rmdir()


def test_bare_address_and_every_name_answer_the_page_and_come_back(host, mapped, agent_env,
                                                                  acme) -> None:
    agent = agent_env
    blog = site_page("alice", "blog.test").split("<h1>")[1].split("</h1>")[0]
    assert set(bare(host).values()) == {f"own:{blog}"}  # blog.test is read first: default
    rc, reply, out = agent("check", host.name)
    assert "whole server: its bare addresses go behind the landing page: yes (default " \
        "vhosts *:80 blog.test, *:443 blog.test)" in reply["servers"][0]["lines"], out
    map_before = host.path(LinuxPaths().host_map).read_bytes()
    apache = apache_state(host)
    rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook", "immediate")
    assert rc == 0, out
    (own,) = [a for a in reply["applied"] if a["step"] == "server_landing"]
    assert own["scope"] == "server" and own["changed"], reply["applied"]
    assert set(bare(host).values()) == {"landing"}, bare(host)
    assert set(shows(host, "bob").values()) == {"landing"}
    challenge = rawhttp.request(host.address, ACME, host="bob.test")
    assert challenge.status == 200 and challenge.text == "acme-token-for-bob\n"
    now = apache_state(host)
    assert (now["pid"], now["reloads"]) == (apache["pid"], apache["reloads"])  # no reload

    rc, reply, out = agent("unsuspend", host.name, "--whole-server")
    assert rc == 0 and reply["state"] == "active", out
    assert set(bare(host).values()) == {f"own:{blog}"}
    assert set(shows(host, "bob").values()) == {"own"}
    assert host.path(LinuxPaths().host_map).read_bytes() == map_before


@pytest.fixture
def stock_default(host):
    """Debian's default vhost enabled in front of every site (sorted first)."""
    site = host.path("/etc/apache2/sites-enabled/000-default.conf")
    page = host.path("/var/www/html/index.html")
    old_page = page.read_bytes() if page.exists() else None
    page.write_text("<html><body><h1>default.invalid</h1></body></html>\n")

    def write(extra: str = "") -> None:
        site.write_text(DEFAULT_SITE.replace("@EXTRA@", extra))
        host.run(["/usr/sbin/apache2ctl", "graceful"])

    write()
    yield write
    site.unlink()
    if old_page is None:
        page.unlink()
    else:
        page.write_bytes(old_page)
    host.run(["/usr/sbin/apache2ctl", "graceful"])


def test_a_default_vhost_without_a_rewrite_directive_is_refused_then_covered(
        host, mapped, agent_env, stock_default) -> None:
    agent = agent_env
    assert bare(host)["http/1.0 no Host"] == "own:default.invalid"
    map_before = host.path(LinuxPaths().host_map).read_bytes()
    rc, reply, out = agent("check", host.name)
    (said,) = [x for x in reply["servers"][0]["lines"] if x.startswith("whole server: its")]
    assert "NO: " in said and "000-default.conf:1" in said, said
    rc, reply, out = agent("--dry-run", "suspend", host.name, "--whole-server",
                           "--playbook", "immediate")
    assert rc != 0 and "000-default.conf:1 (default.invalid, the default vhost of *:80)" \
        in out and "without a mod_rewrite directive" in out, out
    assert host.path(LinuxPaths().host_map).read_bytes() == map_before
    rc, reply, out = agent("plan", host.name, "--whole-server", "--playbook", "immediate")
    (entry,) = [e for e in reply["server_steps"] if e["step"] == "server_landing"]
    assert "000-default.conf:1" in entry["error"], entry

    stock_default("    RewriteEngine On\n")  # the admin's one line (docs/linux-host.md)
    rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook", "immediate")
    assert rc == 0, out
    assert bare(host)["http/1.0 no Host"] == "landing"
    assert bare(host)["http Host=address"] == "landing"
    rc, reply, out = agent("unsuspend", host.name, "--whole-server")
    assert rc == 0, out
    assert bare(host)["http/1.0 no Host"] == "own:default.invalid"
    assert host.path(LinuxPaths().host_map).read_bytes() == map_before


@pytest.fixture
def loaded(host):
    """Two busy processes in the test host's namespace for the test's length (the server
    is loaded as real ones are); stopped exactly after."""
    import subprocess
    import sys

    burn = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass\n"
    procs = [subprocess.Popen(["ip", "netns", "exec", host.netns, sys.executable, "-c", burn])
             for _ in range(2)]
    yield
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_whole_server_ladder_through_the_delay_proxy_under_load(host, mapped, agent_env,
                                                                   tmp_path, loaded) -> None:
    """server-mail-first over a 25 ms (+-4 ms) link to a loaded host: the mail ports at once,
    the websites and the bare address a day later, everything back exactly after."""
    from tests.hosts.delayproxy import DelayProxy
    from tests.hosts.provision import write_config
    from tests.test_firewall_linux import MAIL_PORTS, answers
    from tests.test_ladder import NOT_RESTORED, snapshot

    before = snapshot(host)
    with DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.004) as proxy:
        agent_env.config = write_config(host, tmp_path / "slow", proxy_port=proxy.port,
                                        playbooks_dir=str(tmp_path / "playbooks"))
        agent = agent_env
        agent.now = 2_000_000_000.0
        rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                               "server-mail-first", timeout=300)
        assert rc == 0, out
        assert [p for p in MAIL_PORTS if answers(host, p)] == []
        assert set(bare(host).values()) == {"own:blog.test"}  # the web grade comes later
        agent.now += 24 * 3600 + 1
        rc, reply, out = agent("tick", timeout=300)
        assert rc == 0, out
        assert set(bare(host).values()) == {"landing"}
        assert set(shows(host, "bob").values()) == {"landing"}
        rc, reply, out = agent("unsuspend", host.name, "--whole-server", timeout=300)
        assert rc == 0 and reply["state"] == "active", out
    assert all(answers(host, p) for p in MAIL_PORTS)
    assert set(bare(host).values()) == {"own:blog.test"}
    assert {k: v for k, v in snapshot(host).items() if k not in NOT_RESTORED} == {
        k: v for k, v in before.items() if k not in NOT_RESTORED}
