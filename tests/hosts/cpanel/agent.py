"""The agent against a cPanel test host: its config (cli or api transport), and what a
visitor or the customer sees, probed from outside."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from agent import PROJECT_ROOT
from tests.conftest import Agent, tree_state
from tests.hosts import clients
from tests.hosts.cpanel import calls, layout, services
from tests.hosts.cpanel.provision import CpanelHost
from tests.hosts.provision import write_config
from tests.hosts.testhost import TestHost
from tests.test_ladder import at_once

ALICE = layout.account("alice")
# What a ladder touches, compared byte for byte before and after (mail stores left out:
# logins and deliveries update them; usermod's own backups hold the version before its edit).
WATCHED = ("/etc", "/var/cpanel/users", "/var/cpanel/userdata", "/var/cpanel/suspended",
           "/home/alice/etc", "/home/alice/public_html")
NOT_RESTORED = ("etc/passwd-", "etc/shadow-", "etc/group-", "etc/gshadow-")


def certificate_for(host: TestHost, cpanel: CpanelHost) -> CpanelHost:
    """Give the host a certificate naming its address (the driver's API transport checks
    the name) and restart WHM with it; return the CpanelHost with the new WHM process."""
    host.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
              "-subj", "/CN=cpanel test host", "-addext", f"subjectAltName=IP:{host.address}",
              "-keyout", "/etc/ssl/private/testhost.key", "-out", "/etc/ssl/certs/testhost.pem"])
    host.run(["/usr/sbin/apache2ctl", "graceful"])
    services.stop_whm(host, cpanel.whm_process)
    return cpanel._replace(whm_process=services.start_whm(host))


def make_agent(host: TestHost, folder: Path, transport: str, token: str,
               proxy_port: int | None = None, **cpanel: str) -> Agent:
    """Return an Agent reaching `host` over SSH as a cpanel server (through the delay proxy
    on `proxy_port`, if given), panel calls by `transport` (api: with `token`, the host's
    certificate as CA); extra `cpanel` keys."""
    books = folder / "playbooks"
    shutil.copytree(PROJECT_ROOT / "playbooks", books)
    (books / "final.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, landing_page, mail_block, ftp_lock, "
        "db_lock, panel_lock, panel_suspend]\n")
    (books / "web-now.yaml").write_text("stages:\n  - after: 0s\n    steps: [backup, "
                                        "landing_page]\n")
    config = write_config(host, folder / "agent", playbooks_dir=str(books),
                          proxy_port=proxy_port)
    block = ["    cpanel:", f"      transport: {transport}"]
    if transport == "api":
        token_file = folder / "whm.token"
        token_file.write_text(token + "\n")
        os.chmod(token_file, 0o600)
        ca = folder / "whm-ca.pem"
        ca.write_bytes(host.path("/etc/ssl/certs/testhost.pem").read_bytes())
        block += [f"      api_host: {host.address}", f"      token_file: {token_file}",
                  f"      ca_file: {ca}"]
    block += [f"      {k}: {v}" for k, v in cpanel.items()]
    text = config.read_text().replace("    panel: linux\n", "    panel: cpanel\n")
    config.write_text(text.replace("    connect_timeout: 5\n",
                                   "    connect_timeout: 5\n" + "\n".join(block) + "\n"))
    return Agent(config, host)


def snapshot(host: TestHost) -> dict:
    """Every watched file's content, mode and owner.

    One normalisation: cPanel's unsuspendacct removes the SUSPENDED key from the cpuser
    file (panels.md A8), so an account provisioned with `SUSPENDED=0` comes back without the
    line after a panel_suspend round trip; both mean "not suspended" to cPanel.
    """
    state = {k: v for k, v in tree_state(host, *WATCHED).items()
             if k not in NOT_RESTORED and "/mail/" not in k}
    for key in [k for k in state if k.startswith("var/cpanel/users/")]:
        text = host.path("/" + key).read_bytes().replace(b"SUSPENDED=0\n", b"")
        state[key] = (hashlib.sha256(text).hexdigest(), *state[key][1:])
    return state


def mail(host: TestHost) -> dict:
    """IMAP, POP and SMTP AUTH of three of alice's mailboxes on two domains."""
    return at_once({
        "imap": lambda: clients.imap_login(host, "info@alice.test", "info-mail-1"),
        "pop": lambda: clients.pop_login(host, "news@alice-addon.test", "news-mail-1"),
        "smtp_auth": lambda: clients.smtp_auth(host, "sales@alice.test", "sales-mail-1"),
    })


def logins(host: TestHost) -> dict:
    """alice's FTP (sub-account and main), MySQL and SSH logins."""
    return at_once({
        "ftp_sub": lambda: clients.ftp_login(host, "ftpuser@alice.test", "ftp-pass-1"),
        "ftp_main": lambda: clients.ftp_login(host, "alice", "alice-pass-1"),
        "mysql": lambda: clients.mysql_login(host, "alice_shop", "shop-db-1"),
        "ssh": lambda: clients.ssh_password_login(host, "alice", "alice-pass-1"),
    })


def web(host: TestHost) -> dict:
    """(status, Retry-After) of / on every domain of alice (main, addon, sub, parked), over
    HTTP and HTTPS."""
    found = {}
    for name in layout.web_domains(ALICE):
        for scheme in ("http", "https"):
            resp = calls.web(host, name, scheme)
            found[f"{scheme}://{name}"] = (resp.status_code, resp.headers.get("Retry-After"))
    return found


def summary(host: TestHost, user: str) -> dict:
    """accountsummary of `user`, as the simulator answers it on its command line."""
    return calls.whmapi1(host, "accountsummary", user=user)["data"]["acct"][0]
