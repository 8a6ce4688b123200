"""The reference reseller workload on a linux test host (bench/reseller_bench.py): reseller
R with 3 sub-resellers, 88 accounts (22 under each), 104 domains (one site per account, 16
accounts with an addon domain), each with its `www.` alias, over HTTP and HTTPS, and the
host map installed (docs/linux-host.md)."""

from __future__ import annotations

import os

from agent.config.config import Branding
from tests.hosts import hostmap_prep
from tests.hosts.provision import HOOK_DIR
from tests.hosts.testhost import TestHost

RESELLERS = ("rsl0", "rsl1", "rsl2", "rsl3")
ACCOUNTS = tuple(f"u{i:03d}" for i in range(1, 89))
ADDONS = ACCOUNTS[:16]


def owner(account: str) -> str:
    """Return the reseller that owns `account` (22 each, in order)."""
    return RESELLERS[ACCOUNTS.index(account) // 22]


def sites(account: str) -> list[str]:
    """Return the vhost names (ServerName) of the account: its site, and maybe an addon."""
    return [f"{account}.test"] + ([f"{account}-addon.test"] if account in ADDONS else [])


def domains() -> list[str]:
    """Every host name of the workload: 104 sites and their www aliases."""
    return [d for a in ACCOUNTS for s in sites(a) for d in (s, f"www.{s}")]


def page(account: str, site: str) -> str:
    return f"<html><body><h1>{site}</h1><p>site of {account}</p></body></html>\n"


def tree_config() -> str:
    """The `resellers:` block of the workload, as a server's config lines."""
    lines = ["    resellers:"]
    for r in RESELLERS:
        mine = [a for a in ACCOUNTS if owner(a) == r]
        subs = list(RESELLERS[1:]) if r == RESELLERS[0] else []
        lines.append(f"      {r}: {{accounts: [{', '.join(mine)}], "
                     f"resellers: [{', '.join(subs)}]}}")
    return "\n".join(lines) + "\n"


def _vhost(account: str, name: str, docroot: str) -> str:
    body = (f"    ServerName {name}\n    ServerAlias www.{name}\n"
            f"    IncludeOptional {HOOK_DIR}/{account}/*.conf\n"
            f"    DocumentRoot {docroot}\n"
            f"    <Directory {docroot}>\n        AllowOverride All\n"
            "        Require all granted\n    </Directory>\n")
    tls = ("    SSLEngine on\n    SSLCertificateFile /etc/ssl/certs/testhost.pem\n"
           "    SSLCertificateKeyFile /etc/ssl/private/testhost.key\n")
    return (f"<VirtualHost *:80>\n{body}</VirtualHost>\n\n"
            f"<VirtualHost *:443>\n{body}{tls}</VirtualHost>\n")


def provision(host: TestHost, branding: Branding) -> None:
    """Ensure the workload's users, sites and vhosts exist and the host map is installed.

    The test host must already carry the base provisioning (Apache with SSL, sshd).
    """
    users = "".join(f"{n}:x-{n}-pass:::{n}:/home/{n}:/bin/bash\n"
                    for n in RESELLERS + ACCOUNTS)
    # newusers makes every user and home in one process (useradd once each is slow).
    host.run(["newusers"], input=users.replace(":x-", ":").encode())
    for account in ACCOUNTS:
        for site in sites(account):
            docroot = f"/home/{account}/{site}"
            target = host.path(docroot)
            (target / ".well-known/acme-challenge").mkdir(parents=True, exist_ok=True)
            (target / "index.html").write_text(page(account, site))
            (target / ".well-known/acme-challenge/token-abc").write_text(f"acme-{site}\n")
            host.path(f"/etc/apache2/sites-available/{site}.conf").write_text(
                _vhost(account, site, docroot))
            link = host.path(f"/etc/apache2/sites-enabled/{site}.conf")
            if not link.exists():
                os.symlink(f"../sites-available/{site}.conf", link)
    host.run(["sh", "-c", 'for a do chown -R "$a:$a" "/home/$a" && chmod 755 "/home/$a"; done',
              "sh", *ACCOUNTS])
    hostmap_prep.install(host, branding, list(ACCOUNTS))
