"""Backup and landing page against a real Apache over real SSH; checked as a visitor would."""

from __future__ import annotations

import io
import tarfile

import pytest

from agent.config.servers import Server
from agent.steps.probes import fetch, looks_suspended
from tests.conftest import WATCHED, tree_state
from tests.hosts.provision import ACCOUNTS, site_page
from tests.test_reseller_linux import shows

pytestmark = pytest.mark.testhost

ALICE = [(name, alias) for name, _s, aliases, _h in ACCOUNTS["alice"] for alias in [name, *aliases]]
PATHS = ["/", "/index.html", "/old/page?x=1", "/go", "/deep/a/b.php?q=%3Cscript%3E&r=1",
         "/new/page.html"]


def visitor(host) -> Server:
    return Server(name=host.name, panel="linux", transport="ssh", host=host.address)


def test_suspend_then_unsuspend_round_trip(agent_env, host):
    before = tree_state(host, *WATCHED)
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    assert reply["state"] == "suspended" and reply["holds"] == ["billing"]
    assert {a["step"] for a in reply["applied"] if a["changed"]} == {"backup", "landing_page"}

    srv = visitor(host)
    for site, domain in ALICE:
        for tls in (False, True):
            for path in PATHS:
                resp = fetch(srv, domain, path, tls)
                assert resp.status_code == 503, (domain, path, tls)
                assert resp.headers["Retry-After"] == "1800"
                assert resp.headers["Cache-Control"] == "no-store"
                assert resp.headers["X-Robots-Tag"] == "noindex"
                assert "Temporarily unavailable" in resp.text and "Example Hosting" in resp.text
            acme = fetch(srv, domain, "/.well-known/acme-challenge/token-abc", tls)
            assert acme.status_code == 200 and acme.text == f"acme-token-for-{site}\n"
    # Another customer's site on the same server is untouched.
    bob = fetch(srv, "bob.test", "/", False)
    assert bob.status_code == 200 and bob.text == site_page("bob", "bob.test")

    # The backup is on the server, lists cleanly, and holds the home and the database dump.
    archives = sorted(host.path("/var/backups/suspension-agent").glob("alice-*.tar.gz"))
    assert archives
    with tarfile.open(fileobj=io.BytesIO(archives[-1].read_bytes()), mode="r:gz") as tar:
        names = tar.getnames()
        assert "home/alice/public_html/index.html" in names
        dump = tar.extractfile("databases/alice.sql").read().decode()
    assert "CREATE TABLE `items`" in dump and "'second'" in dump

    # Second suspend: nothing changes, and the reply says so.
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    assert reply["state"] == "suspended"
    assert not any(a["changed"] for a in reply["applied"])

    rc, reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert reply["state"] == "active" and reply["applied"] == []
    for site, domain in ALICE:
        for tls in (False, True):
            resp = fetch(srv, domain, "/index.html", tls)
            assert resp.status_code == 200 and resp.text == site_page("alice", site)
            assert not looks_suspended(resp)
    # The site's own rules work again: its redirect answers, not the landing page.
    assert fetch(srv, "blog.test", "/old/x", False).status_code == 301
    assert tree_state(host, *WATCHED) == before

    rc, reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active" and reply.get("reverted") is None, out
    assert reply["message"] == "nothing to lift"
    assert tree_state(host, *WATCHED) == before


def test_dry_run_and_plan_change_nothing(agent_env, host):
    before = tree_state(host, *WATCHED)
    backups = set(host.path("/var/backups").rglob("*"))
    rc, reply, out = agent_env("--dry-run", "suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    actions = [line for p in reply["plan"] for line in p["actions"]]
    assert any(line.startswith("run   /usr/bin/mysqldump") for line in actions)
    assert any("RewriteRule ^ - [R=503,L]" in line for line in actions)
    assert any(line == "run   /usr/sbin/apache2ctl configtest" for line in actions)
    rc, reply, out = agent_env("plan", host.name, "alice", "--playbook", "standard")
    assert rc == 0, out
    steps = {e["step"]: e for st in reply["stages"] for e in st["steps"]}
    assert all(e["available"] for e in steps.values())
    assert any("lock mailbox info@shop.test" in a for a in steps["mail_block"]["actions"])
    assert not any("SHA512" in a for e in steps.values() for a in e["actions"])
    assert set(steps["landing_page"]["facts"]["domains"]) == {d for _s, d in ALICE}
    assert tree_state(host, *WATCHED) == before
    assert set(host.path("/var/backups").rglob("*")) == backups
    assert fetch(visitor(host), "shop.test", "/", False).status_code == 200
    rc, reply, _ = agent_env("status", host.name, "alice")
    assert reply["state"] == "active" and reply["holds"] == []


def test_unavailable_steps_are_refused(agent_env, host):
    before = tree_state(host, *WATCHED)
    books = agent_env.config.parent.parent / "playbooks"
    (books / "cpanel-only.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, landing_page, panel_suspend]\n")
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "cpanel-only")
    assert rc == 2, out
    assert "not available on the linux driver yet" in reply["errors"][0]["message"]
    # A server step on an account: refused before anything, the whole server is its target.
    (books / "firewall.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, landing_page, firewall_block]\n")
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "firewall")
    assert rc == 2 and "use --whole-server" in reply["errors"][0]["message"], out
    assert tree_state(host, *WATCHED) == before


def test_check_history_and_preview(agent_env, host):
    rc, reply, out = agent_env("check")
    assert rc == 0 and reply["ok"], out
    lines = reply["servers"][0]["lines"]
    assert "reachable" in lines
    assert "vhost files with the suspension-agent hook: 3" in lines
    assert {"yes: Dovecot authenticates mailboxes in a layout the agent knows",
            "mail layout: virtual mailboxes (passwd-file); deny passdb "
            "/etc/dovecot/suspension-agent.deny: not consulted first",
            "Dovecot passdbs not controlled by the agent: none",
            "yes: sshd_config includes /etc/ssh/sshd_config.d",
            "yes: the database server supports ACCOUNT LOCK"} <= set(lines), lines
    assert not [line for line in lines if line.startswith(("missing", "NO"))], lines

    agent_env("suspend", host.name, "alice", "--playbook", "web-now", "--reason", "inv 7")
    agent_env("unsuspend", host.name, "alice")
    rc, reply, out = agent_env("history", host.name, "alice")
    assert rc == 0, out
    events = [(e["event"], e["step"]) for e in reply["events"]]
    assert events[0] == ("case.opened", None)
    assert ("step.applied", "landing_page") in events and events[-1] == ("case.lifted", None)
    assert reply["events"][0]["detail"]["reason"] == "inv 7"
    assert all(e["caller"] for e in reply["events"])
    audit = (agent_env.config.parent / "audit.jsonl").read_text().splitlines()
    assert any('"event": "step.reverted"' in line for line in audit)

    rc, _reply, out = agent_env("preview-landing", "--language", "nl")
    assert rc == 0 and "Tijdelijk niet beschikbaar" in out


def test_a_landing_page_apache_cannot_read_fails_its_verify(host, agent_env) -> None:
    """The folder above the landing pages private (as the first firewall_block once made
    it): Apache answers 503 with its own error text. That is no landing page: the step's
    verify says so and bob's change is rolled back."""
    base = host.path("/var/lib/suspension-agent")
    existed = base.exists()
    base.mkdir(mode=0o700, exist_ok=True)
    mode = base.stat().st_mode & 0o777
    base.chmod(0o700)
    try:
        rc, reply, out = agent_env("suspend", host.name, "bob", "--playbook", "web-now")
        assert rc == 1 and "could not serve it as the ErrorDocument" in out, out
        assert reply["state"] == "active" and set(shows(host, "bob").values()) == {"own"}
    finally:
        base.chmod(mode)
        if not existed:
            host.run(["rm", "-rf", "/var/lib/suspension-agent"])
