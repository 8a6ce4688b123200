"""Give a test host customers: accounts, sites, databases, mailboxes, FTP users, logins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from tests.hosts import ftp, logins, mail, stock
from tests.hosts.testhost import TestHost

HOOK_DIR = "/etc/apache2/suspension-agent"

# account -> list of (vhost name, docroot under home, server aliases, htaccess text or None)
ACCOUNTS = {
    "alice": [
        ("shop.test", "public_html", ["www.shop.test"], None),
        ("blog.test", "blog", ["www.blog.test", "alice-blog.test"],
         # The customer's own rules: a redirect, a front controller and a mod_alias redirect.
         "RewriteEngine On\n"
         "RewriteRule ^old/(.*)$ /new/$1 [R=301,L]\n"
         "RewriteCond %{REQUEST_FILENAME} !-f\n"
         "RewriteRule ^ index.html [L]\n"
         "Redirect 302 /go https://elsewhere.invalid/\n"),
    ],
    "bob": [("bob.test", "public_html", [], None)],
}
DATABASES = {"alice": ["alice_shop"], "bob": ["bob_wp"]}


class Mailbox(NamedTuple):
    """A virtual mailbox; its login name is the full address."""

    address: str
    account: str
    password: str
    enabled: bool = True


class FtpUser(NamedTuple):
    """A Pure-FTPd virtual user, mapped to the account's uid and gid."""

    login: str
    account: str
    password: str
    home: str
    enabled: bool = True


class DbUser(NamedTuple):
    """A MariaDB user of an account, with `privileges` on `database`.*."""

    user: str
    account: str
    password: str
    database: str
    privileges: str
    enabled: bool = True


# Mail domains and their owners (/etc/userdomains); a disabled mailbox starts `*LOCKED*`.
MAIL_DOMAINS = {"shop.test": "alice", "blog.test": "alice", "bob.test": "bob"}
MAILBOXES = [
    Mailbox("info@shop.test", "alice", "info-pass-1"),
    Mailbox("sales@shop.test", "alice", "sales-pass-1", enabled=False),
    Mailbox("me@blog.test", "alice", "me-pass-1"),
    Mailbox("bob@bob.test", "bob", "bob-pass-1"),
]
# A disabled FTP user's hash starts with `!`.
FTP_USERS = [
    FtpUser("alice_ftp", "alice", "ftp-pass-1", "/home/alice/public_html"),
    FtpUser("alice_old", "alice", "old-pass-1", "/home/alice/public_html", enabled=False),
    FtpUser("bob_ftp", "bob", "bob-ftp-1", "/home/bob/public_html"),
]
# A disabled database user is created with ACCOUNT LOCK.
DB_USERS = [
    DbUser("alice_shop", "alice", "db-pass-1", "alice_shop", "ALL PRIVILEGES"),
    DbUser("alice_ro", "alice", "ro-pass-1", "alice_shop", "SELECT", enabled=False),
    DbUser("bob_wp", "bob", "bob-db-1", "bob_wp", "ALL PRIVILEGES"),
]
# The accounts' own unix passwords (SSH, FTP through PAM); alice also gets an SSH key.
LOGIN_PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-1"}


def _vhost(account: str, name: str, docroot: str, aliases: list[str]) -> str:
    alias_line = f"    ServerAlias {' '.join(aliases)}\n" if aliases else ""
    body = (
        f"    ServerName {name}\n{alias_line}"
        f"    # suspension-agent hook: first line after the names, before the site's own rules\n"
        f"    IncludeOptional {HOOK_DIR}/{account}/*.conf\n"
        f"    DocumentRoot {docroot}\n"
        f"    <Directory {docroot}>\n        AllowOverride All\n        Require all granted\n"
        f"    </Directory>\n"
    )
    tls = ("    SSLEngine on\n    SSLCertificateFile /etc/ssl/certs/testhost.pem\n"
           "    SSLCertificateKeyFile /etc/ssl/private/testhost.key\n")
    return (f"<VirtualHost *:80>\n{body}</VirtualHost>\n\n"
            f"<VirtualHost *:443>\n{body}{tls}</VirtualHost>\n")


def site_page(account: str, domain: str) -> str:
    """Return the exact index.html a site serves when it is not suspended."""
    return f"<html><body><h1>{domain}</h1><p>site of {account}</p></body></html>\n"


def provision(host: TestHost, layout: str = "vmail") -> None:
    """Ensure the host has the ACCOUNTS with their sites, DATABASES and DB_USERS,
    LOGIN_PASSWORDS and an SSH key for alice (`host.alice_key`), with every service running.

    Mail and FTP by `layout`: "vmail" gives the MAILBOXES (virtual, Dovecot passwd-files)
    and FTP_USERS (PureDB); "stock" gives Debian's own setup for the accounts' system users
    (tests/hosts/stock.py), not yet prepared for the agent.
    """
    for account, sites in ACCOUNTS.items():
        host.run(["useradd", "--create-home", "--shell", "/bin/bash", account])
        home = Path(f"/home/{account}")
        for name, sub, aliases, htaccess in sites:
            docroot = home / sub
            files = {
                docroot / "index.html": site_page(account, name),
                docroot / ".well-known/acme-challenge/token-abc": f"acme-token-for-{name}\n",
                docroot / "new/page.html": "moved here\n",
            }
            if htaccess:
                files[docroot / ".htaccess"] = htaccess
            for path, text in files.items():
                target = host.path(str(path))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            vhost = host.path(f"/etc/apache2/sites-available/{name}.conf")
            vhost.write_text(_vhost(account, name, str(docroot), aliases))
            host.run(["a2ensite", "-q", name])
        host.run(["chown", "-R", f"{account}:{account}", str(home)])
        host.run(["chmod", "755", str(home)])
        for db in DATABASES.get(account, []):
            host.run(["mysql"], input=(
                f"CREATE DATABASE {db};\n"
                f"CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(40));\n"
                f"INSERT INTO {db}.items VALUES (1, 'first'), (2, 'second');\n").encode())
    host.run(["/usr/sbin/apache2ctl", "graceful"])
    _database_users(host, DB_USERS)
    logins.set_passwords(host, LOGIN_PASSWORDS)
    host.alice_key = logins.install_key(host, "alice")
    logins.check_sshd_layout(host)
    if layout == "stock":
        stock.setup(host, list(ACCOUNTS))
        stock.start(host)
        return
    mail.setup(host, MAIL_DOMAINS, MAILBOXES)
    ftp.setup(host, FTP_USERS)
    mail.start(host)
    ftp.start(host)
    # The boot firewall loads the agent's table while a whole-server case is open, as
    # docs/linux-host.md ("Whole server") prepares it.
    boot = host.path("/etc/nftables.conf")
    boot.write_text(boot.read_text() + '\ninclude "/var/lib/suspension-agent/nft/*.nft"\n')


def _database_users(host: TestHost, users: list[DbUser]) -> None:
    """Ensure each DbUser exists @localhost with its grant; disabled ones ACCOUNT LOCK.

    A TCP login from 127.0.0.1 matches @localhost: MariaDB resolves the address by name.
    """
    sql = []
    for u in users:
        lock = "" if u.enabled else " ACCOUNT LOCK"
        sql.append(f"CREATE USER '{u.user}'@'localhost' IDENTIFIED BY '{u.password}'{lock};\n"
                   f"GRANT {u.privileges} ON {u.database}.* TO '{u.user}'@'localhost';\n")
    host.run(["mysql"], input="".join(sql).encode())


def grant_ssh(host: TestHost, folder: Path, port: int | None = None) -> tuple[Path, Path]:
    """Create a client key allowed as root on the host; return (key file, known_hosts).

    With `port`, the host key is listed for 127.0.0.1:`port` (a delay proxy in front of it).
    """
    key_file = folder / "id_ed25519"
    public = logins.new_key(key_file)
    ssh_dir = host.path("/root/.ssh")
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(public + " suspension-agent-tests\n")
    os.chmod(ssh_dir / "authorized_keys", 0o600)
    host_key = host.path("/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    known_hosts = folder / "known_hosts"
    who = f"[127.0.0.1]:{port}" if port else host.address
    known_hosts.write_text(f"{who} {' '.join(host_key)}\n")
    return key_file, known_hosts


def write_config(host: TestHost, folder: Path, linux: dict | None = None,
                 proxy_port: int | None = None, **extra: str) -> Path:
    """Write an agent config that reaches `host` over SSH; return its path.

    With `proxy_port`, SSH goes through a delay proxy on 127.0.0.1 (HTTP probes still go to
    the host's own address, as a visitor's would).
    """
    key_file, known_hosts = grant_ssh(host, folder, proxy_port)
    lines = [
        f"state_db: {folder / 'state.db'}",
        f"audit_log: {folder / 'audit.jsonl'}",
        "lock_wait_seconds: 2",
        "branding:",
        "  company: Example Hosting",
        "  contact_url: https://billing.example.invalid/",
        "  contact_email: billing@example.invalid",
        "  language: en",
        "  retry_after: 1800",
        "protected_accounts: [root, admin]",
        "servers:",
        f"  {host.name}:",
        "    panel: linux",
        "    transport: ssh",
        f"    host: {'127.0.0.1' if proxy_port else host.address}",
        f"    port: {proxy_port or 22}",
        f"    probe_address: {host.address}",
        "    user: root",
        f"    key_file: {key_file}",
        f"    known_hosts: {known_hosts}",
        "    connect_timeout: 5",
    ]
    if linux:
        lines += ["    linux:"] + [f"      {k}: {v}" for k, v in linux.items()]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path
