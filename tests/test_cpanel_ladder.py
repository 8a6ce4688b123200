"""The cpanel driver against the cPanel simulator (tests/hosts/cpanel/): the standard ladder
and its reversal, over SSH (whmapi1/uapi) and over the WHM API with a token, checked from
outside as a visitor or the customer would: every domain 503 with the landing page and ACME
served, mailbox logins refused while port 25 delivers, FTP, MySQL and SSH refused, and
everything back and byte-identical afterwards (issue 10's acceptance)."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent import PROJECT_ROOT
from tests.conftest import Agent, tree_state
from tests.hosts import clients
from tests.hosts.cpanel import calls, layout, services
from tests.hosts.provision import write_config

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-ladder")]
ALICE = layout.account("alice")
START = 2_000_000_000.0
DAY = 86400.0
# What the ladder touches, compared byte for byte before and after (mail stores left out:
# logins and deliveries update them; usermod's own backups hold the version before its edit).
WATCHED = ("/etc", "/var/cpanel/users", "/var/cpanel/userdata", "/var/cpanel/suspended",
           "/home/alice/etc", "/home/alice/public_html")
NOT_RESTORED = ("etc/passwd-", "etc/shadow-")


@pytest.fixture(scope="module")
def cp():
    """A cPanel host of its own (host index offset 30) whose WHM certificate names its
    address, as the driver's API transport requires."""
    for found in calls.running_host(offset=30):
        host, cpanel = found
        _certificate_for(host)
        services.stop_whm(host, cpanel.whm_process)
        yield host, cpanel._replace(whm_process=services.start_whm(host))


def _certificate_for(host) -> None:  # noqa: ANN001 - a TestHost
    host.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
              "-subj", "/CN=cpanel test host", "-addext", f"subjectAltName=IP:{host.address}",
              "-keyout", "/etc/ssl/private/testhost.key", "-out", "/etc/ssl/certs/testhost.pem"])
    host.run(["/usr/sbin/apache2ctl", "graceful"])


@pytest.fixture(params=["cli", "api"])
def agent(request, cp, tmp_path):
    """The agent reaching the cPanel host over SSH, its panel calls by whmapi1/uapi (cli)
    or by the WHM API with a root token (api); the host is reset afterwards."""
    host, cpanel = cp
    books = tmp_path / "playbooks"
    shutil.copytree(PROJECT_ROOT / "playbooks", books)
    config = write_config(host, tmp_path / "agent", playbooks_dir=str(books))
    block = ["    cpanel:", f"      transport: {request.param}"]
    if request.param == "api":
        token = tmp_path / "whm.token"
        token.write_text(cpanel.root_token + "\n")
        os.chmod(token, 0o600)
        ca = tmp_path / "whm-ca.pem"
        ca.write_bytes(host.path("/etc/ssl/certs/testhost.pem").read_bytes())
        block += [f"      api_host: {host.address}", f"      token_file: {token}",
                  f"      ca_file: {ca}"]
    text = config.read_text().replace("    panel: linux\n", "    panel: cpanel\n")
    text = text.replace("    connect_timeout: 5\n", "    connect_timeout: 5\n"
                        + "\n".join(block) + "\n")
    config.write_text(text)
    yield Agent(config, host)
    calls.reset(host)


def snapshot(host) -> dict:  # noqa: ANN001
    return {k: v for k, v in tree_state(host, *WATCHED).items()
            if k not in NOT_RESTORED and "/mail/" not in k}


def at_once(probes: dict) -> dict:
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = {name: pool.submit(probe) for name, probe in probes.items()}
    return {name: f.result() for name, f in futures.items()}


def mail(host) -> dict:  # noqa: ANN001
    return at_once({
        "imap": lambda: clients.imap_login(host, "info@alice.test", "info-mail-1"),
        "pop": lambda: clients.pop_login(host, "news@alice-addon.test", "news-mail-1"),
        "smtp_auth": lambda: clients.smtp_auth(host, "sales@alice.test", "sales-mail-1"),
    })


def logins(host) -> dict:  # noqa: ANN001
    return at_once({
        "ftp_sub": lambda: clients.ftp_login(host, "ftpuser@alice.test", "ftp-pass-1"),
        "ftp_main": lambda: clients.ftp_login(host, "alice", "alice-pass-1"),
        "mysql": lambda: clients.mysql_login(host, "alice_shop", "shop-db-1"),
        "ssh": lambda: clients.ssh_password_login(host, "alice", "alice-pass-1"),
    })


def web(host) -> dict:  # noqa: ANN001
    """Status and page of / on every domain of alice (main, addon, sub, parked), HTTP and
    HTTPS, and the ACME token of the main site."""
    found = {}
    for name in layout.web_domains(ALICE):
        for scheme in ("http", "https"):
            resp = calls.web(host, name, scheme)
            found[f"{scheme}://{name}"] = (resp.status_code, resp.headers.get("Retry-After"))
    return found


def test_standard_ladder_and_its_reversal(cp, agent):
    host, _cpanel = cp
    before = snapshot(host)
    sites_before = web(host)
    assert {status for status, _retry in sites_before.values()} == {200}, sites_before
    assert set(mail(host).values()) == {"ok"} and set(logins(host).values()) == {"ok"}
    agent.now = START
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "standard")
    assert rc == 0, out
    # Stage 0: every domain answers 503 with Retry-After; mail and logins still work.
    sites = web(host)
    assert {status for status, _retry in sites.values()} == {503}, sites
    assert all(retry for _status, retry in sites.values()), sites
    assert "Example Hosting" in calls.web(host, "alice-parked.test").text
    assert set(mail(host).values()) == {"ok"}

    agent.now = START + DAY + 60
    rc, reply, out = agent("tick")
    assert rc == 0, out
    # Stage 1: mailbox logins refused, port 25 still delivers; FTP etc. not yet.
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
    assert any("cpanel" in line.lower() for line in lines), lines
