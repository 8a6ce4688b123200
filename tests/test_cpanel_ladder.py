"""The cpanel driver against the cPanel simulator (tests/hosts/cpanel/): the standard ladder
and its reversal, over SSH (whmapi1/uapi) and over the WHM API with a token, checked from
outside as a visitor or the customer would: every domain 503 with the landing page and ACME
served, mailbox logins refused while port 25 delivers, FTP, MySQL and SSH refused, and
everything back and byte-identical afterwards (issue 10's acceptance)."""

from __future__ import annotations

import pytest

from tests.hosts import clients
from tests.hosts.cpanel import calls
from tests.hosts.cpanel.agent import certificate_for, logins, mail, make_agent, snapshot, web

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-ladder")]
START = 2_000_000_000.0
DAY = 86400.0


@pytest.fixture(scope="module")
def cp():
    """A cPanel host of its own (host index offset 30) whose WHM certificate names it."""
    for host, cpanel in calls.running_host(offset=30):
        yield host, certificate_for(host, cpanel)


@pytest.fixture(params=["cli", "api"])
def agent(request, cp, tmp_path):
    """The agent over SSH, its panel calls by whmapi1/uapi (cli) or by the WHM API with a
    root token (api); the simulator's state is put back afterwards."""
    host, cpanel = cp
    yield make_agent(host, tmp_path, request.param, cpanel.root_token)
    calls.reset(host)


def test_standard_ladder_and_its_reversal(cp, agent):
    host, _cpanel = cp
    before = snapshot(host)
    sites_before = web(host)
    assert {status for status, _retry in sites_before.values()} == {200}, sites_before
    assert set(mail(host).values()) == {"ok"} and set(logins(host).values()) == {"ok"}
    agent.now = START
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "standard")
    assert rc == 0, out
    # Stage 0: every domain answers 503 with Retry-After; ACME tokens are still served;
    # mail and logins still work.
    sites = web(host)
    assert {status for status, _retry in sites.values()} == {503}, sites
    assert all(retry for _status, retry in sites.values()), sites
    assert "Example Hosting" in calls.web(host, "alice-parked.test").text
    assert set(mail(host).values()) == {"ok"}

    agent.now = START + DAY + 60
    rc, reply, out = agent("tick")
    assert rc == 0, out
    # Stage 1: mailbox logins refused, port 25 still delivers; FTP and the rest not yet.
    assert all(v.startswith("auth failed") for v in mail(host).values()), mail(host)
    assert clients.smtp_deliver(host, "info@alice.test", "while suspended") == "ok"
    assert logins(host)["ftp_sub"] == "ok"
    assert clients.imap_login(host, "bob@bob.test", "bob-mail-1") == "ok"

    agent.now = START + 3 * DAY + 60
    rc, reply, out = agent("tick")
    assert rc == 0, out
    now = logins(host)
    assert all(v != "ok" for v in now.values()), now
    assert clients.mysql_login(host, "bob_wp", "bob-db-1") == "ok"

    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert web(host) == sites_before
    assert set(mail(host).values()) == {"ok"}
    assert set(logins(host).values()) == {"ok"}
    inbox = clients.imap_read_messages(host, "info@alice.test", "info-mail-1")
    assert any("Subject: while suspended" in m for m in inbox)
    assert snapshot(host) == before


def test_check_reports_the_panel_and_every_step(cp, agent):
    host, _cpanel = cp
    rc, reply, out = agent("check", host.name)
    assert rc == 0, out
    lines = reply["servers"][0]["lines"]
    assert "cPanel & WHM version 11.118.0.5 (/usr/local/cpanel/version: 11.118.0.5)" in lines
    assert any(line.startswith("API user privileges: all") for line in lines), lines
    assert ("yes: EA4 userdata includes (every vhost includes from "
            "/etc/apache2/conf.d/userdata/{std,ssl}/2_4/; landing_page writes there)") \
        in lines
    assert any(line.startswith("yes: mariadb") and "ACCOUNT LOCK" in line for line in lines)
    for step in ("backup", "landing_page", "mail_block", "ftp_lock", "db_lock", "panel_lock",
                 "panel_suspend"):
        assert f"step {step}: available" in lines, lines


def test_every_step_run_twice_changes_nothing_the_second_time(cp, agent):
    """suspend and unsuspend repeated (a billing system retrying): the second call of each
    finds everything in place, changes nothing and answers the same state."""
    host, _cpanel = cp
    before = snapshot(host)
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "final")
    assert rc == 0, out
    locked = snapshot(host)
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "final")
    assert rc == 0 and reply["state"] == "suspended", out
    assert not [a for a in reply["applied"] if a["changed"]], out
    assert snapshot(host) == locked
    for _ in range(2):
        rc, reply, out = agent("unsuspend", host.name, "alice")
        assert rc == 0 and reply["state"] == "active", out
        assert snapshot(host) == before


def test_the_landing_page_beats_errordocument_conf_and_the_customers_own_503(cp, tmp_path):
    """EA4's errordocument.conf (`ErrorDocument 503 /503.shtml`, server-wide, as the
    simulator's httpd.conf includes it) and a hostile customer's `503.shtml` plus an
    `.htaccess` naming another 503 page: every domain still answers the agent's page, 503
    with its headers, over HTTP and HTTPS; once lifted the customer's files are as they
    were and the site is its own again."""
    host, cpanel = cp
    agent = make_agent(host, tmp_path, "cli", cpanel.root_token)
    docroot = host.path("/home/alice/public_html")
    planted = {"503.shtml": "<h1>CUSTOMER 503 SHTML</h1>\n",
               "mine.html": "<h1>CUSTOMER 503 HTACCESS</h1>\n",
               ".htaccess": "ErrorDocument 503 /mine.html\n"}
    for name, text in planted.items():
        (docroot / name).write_text(text)
    try:
        assert "ErrorDocument 503 /503.shtml" in host.path(
            "/etc/apache2/conf.d/includes/errordocument.conf").read_text()
        assert '/errordocument.conf"' in host.path("/etc/apache2/conf/httpd.conf").read_text()
        rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
        assert rc == 0, out
        for name in ("alice.test", "alice-parked.test", "alice-addon.test", "blog.alice.test"):
            for scheme in ("http", "https"):
                resp = calls.web(host, name, scheme, "/no-such-page")
                assert resp.status_code == 503 and resp.headers.get("Retry-After"), (name, scheme)
                assert "Example Hosting" in resp.text and "CUSTOMER" not in resp.text, resp.text
        rc, _reply, out = agent("unsuspend", host.name, "alice")
        assert rc == 0, out
        assert calls.web(host, "alice.test").status_code == 200
        assert {n: (docroot / n).read_text() for n in planted} == planted
    finally:
        for name in planted:
            (docroot / name).unlink(missing_ok=True)
        calls.reset(host)
