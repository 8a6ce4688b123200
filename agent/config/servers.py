"""The servers of the config (`servers:`): how the agent reaches each one and where its
driver finds things there."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from agent import ids
from agent.config import resellers
from agent.config.resellers import ResellerEntry
from agent.config.validate import Problems, boolean, integer, join, mapping, string, string_list
from agent.drivers.cpanel import settings as cpanel_settings
from agent.drivers.cpanel.settings import CpanelSettings
from agent.errors import BadInput
from agent.files import private_file_problem

PANELS = ("linux", "cpanel", "directadmin")


@dataclass(frozen=True)
class LinuxPaths:
    """Where the `linux` driver finds things on a Debian/Ubuntu host (all overridable)."""

    apache_sites_dir: str = "/etc/apache2/sites-enabled"
    apache_hook_dir: str = "/etc/apache2/suspension-agent"
    landing_dir: str = "/var/lib/suspension-agent/landing"
    # The host map (docs/linux-host.md, "The host map"): installed once, it puts any set of
    # sites behind the landing page by one write of `host_map`, without a reload.
    host_map_conf: str = "/etc/apache2/conf-enabled/suspension-agent.conf"
    host_map: str = "/etc/apache2/suspension-agent/hosts.map"
    host_map_landing: str = "/var/lib/suspension-agent/hostmap-landing"
    backup_dir: str = "/var/backups/suspension-agent"
    apachectl: str = "/usr/sbin/apache2ctl"
    mysql: str = "/usr/bin/mysql"
    mysqldump: str = "/usr/bin/mysqldump"
    tar: str = "/bin/tar"
    sha256sum: str = "/usr/bin/sha256sum"
    getent: str = "/usr/bin/getent"
    # SQL LIKE pattern of an account's databases and database users (cPanel: `<account>_x`).
    db_pattern: str = "{account}\\_%"
    # Client options file on the server with the admin credentials (`[client] user/password`);
    # empty: the client's own defaults (e.g. root over the unix socket).
    mysql_defaults_file: str = ""
    # Mail: `domain: account` lines, and Dovecot passwd-files <vmail_dir>/<domain>/shadow.
    userdomains: str = "/etc/userdomains"
    vmail_dir: str = "/etc/vmail"
    doveadm: str = "/usr/bin/doveadm"
    doveconf: str = "/usr/bin/doveconf"
    exim: str = "/usr/sbin/exim4"
    exim_hook_dir: str = "/etc/exim4/suspension-agent"
    # Logins listed here are refused by Dovecot whatever passdb would accept them: a
    # passwd-file passdb with `deny = yes`, consulted first (system-user mailboxes; see
    # docs/linux-host.md). Empty: no such passdb; system-user mail cannot be blocked.
    dovecot_deny_file: str = "/etc/dovecot/suspension-agent.deny"
    # FTP: Pure-FTPd virtual users (PureDB) and the PAM deny list for system users.
    pure_pw: str = "/usr/bin/pure-pw"
    pureftpd_passwd: str = "/etc/pure-ftpd/pureftpd.passwd"  # noqa: S105 - a path
    pureftpd_pdb: str = "/etc/pure-ftpd/pureftpd.pdb"
    ftpusers: str = "/etc/ftpusers"
    # How Pure-FTPd authenticates. Empty: read Debian's wrapper config (the auth/ links that
    # pure-ftpd-wrapper turns into -l options); else the -l methods it runs with, comma-
    # separated (e.g. "puredb:/etc/pure-ftpd/pureftpd.pdb,pam"). ftp_lock refuses others.
    pureftpd_auth_dir: str = "/etc/pure-ftpd/auth"
    pureftpd_logins: str = ""
    # Lists Pure-FTPd's open sessions (`-s`): ftp_lock ends those of the logins it locked.
    # Debian's pure-ftpd package installs it here; ftp_lock refuses when it cannot be run.
    pure_ftpwho: str = "/usr/sbin/pure-ftpwho"
    # Logins: the account's password and shell, and an sshd drop-in denying the account.
    usermod: str = "/usr/sbin/usermod"
    nologin_shell: str = "/usr/sbin/nologin"
    sshd: str = "/usr/sbin/sshd"
    sshd_config_dir: str = "/etc/ssh/sshd_config.d"
    sshd_pid_file: str = "/run/sshd.pid"
    # firewall_block: the nft binary and the agent's own folder for its table's file.
    nft: str = "/usr/sbin/nft"
    nft_dir: str = "/var/lib/suspension-agent/nft"
    # throttle: tc, and ip for the routes that name the public interfaces (/sbin/ip is
    # iproute2's path on Debian and on RHEL alike).
    tc: str = "/usr/sbin/tc"
    ip: str = "/sbin/ip"


@dataclass(frozen=True)
class Server:
    """One hosting server from `servers:`."""

    name: str
    panel: str
    transport: str
    host: str = "127.0.0.1"
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    known_hosts: str | None = None
    connect_timeout: int = 10
    sudo: bool = False
    probe_address: str | None = None
    # Owner-only directory on the server for its own copy of each case (agent/engine/records.py);
    # not beside landing_dir, so neither step ever makes a folder the other one uses.
    records_dir: str = "/var/lib/suspension-agent-cases"
    http_port: int = 80
    https_port: int = 443
    protected_accounts: tuple[str, ...] = ()
    linux: LinuxPaths = field(default_factory=LinuxPaths)
    # The cpanel driver's paths, binaries and API channel (agent/drivers/cpanel/settings.py).
    cpanel: CpanelSettings = field(default_factory=CpanelSettings)
    # Reseller trees declared in config (panels without a tree of their own:
    # agent/config/resellers.py).
    resellers: dict[str, ResellerEntry] = field(default_factory=dict)
    # The server's own panel admins (linux: logins the customer renting the whole server
    # uses), locked first by `suspend --whole-server`; cPanel's are its resellers.
    admins: tuple[str, ...] = ()
    # Addresses and networks firewall_block leaves open (the hoster's monitoring, its NOC):
    # IPv4 and IPv6, with or without a prefix length; loopback is always left open.
    firewall_exempt: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """Where visitors' HTTP probes are sent (the server's public address)."""
        return self.probe_address or self.host


_SERVER = {"panel", "transport", "host", "port", "user", "key_file", "known_hosts",
           "connect_timeout", "sudo", "probe_address", "records_dir", "http_port",
           "https_port", "protected_accounts", "linux", "cpanel", "resellers", "admins",
           "firewall_exempt"}
_LINUX = {f.name for f in fields(LinuxPaths)}


def parse(name: str, doc: object, problems: Problems, base: Path) -> Server | None:
    """Return server `name` from its `servers:` entry (None when it is not a mapping); add
    every problem found to `problems`."""
    path = join("servers", name)
    d = mapping(doc, path, problems, _SERVER)
    if not isinstance(doc, dict):
        return None
    panel = string(d, "panel", path, problems, required=True, choices=PANELS)
    transport = string(d, "transport", path, problems, default="ssh", choices=("local", "ssh"))
    kw: dict = {"name": name, "panel": panel or "linux", "transport": transport or "ssh"}
    kw["port"] = integer(d, "port", path, problems, 22, 1, 65535)
    kw["http_port"] = integer(d, "http_port", path, problems, 80, 1, 65535)
    kw["https_port"] = integer(d, "https_port", path, problems, 443, 1, 65535)
    kw["connect_timeout"] = integer(d, "connect_timeout", path, problems, 10, 1, 600)
    kw["sudo"] = boolean(d, "sudo", path, problems, False)
    kw["user"] = string(d, "user", path, problems, default="root")
    kw["protected_accounts"] = tuple(string_list(d, "protected_accounts", path, problems))
    for key in ("host", "probe_address", "records_dir"):
        value = string(d, key, path, problems, required=(key == "host" and transport == "ssh"))
        if value is not None:
            kw[key] = value
    if not re.fullmatch(r"/[A-Za-z0-9._/-]*", kw.get("records_dir", "/")):
        problems.add(join(path, "records_dir"), "must be an absolute path on the server "
                     "(letters, digits, '.', '_', '-' and '/')")
    if transport == "ssh":
        for key in ("key_file", "known_hosts"):
            value = string(d, key, path, problems, required=True)
            if value is None:
                continue
            full = str((base / value) if not os.path.isabs(value) else Path(value))
            kw[key] = full
            if key == "key_file" and (why := private_file_problem(full)):
                problems.add(join(path, key), why)
            elif key == "known_hosts" and not os.path.isfile(full):
                problems.add(join(path, key), f"{full} does not exist")
            elif key == "known_hosts" and os.stat(full).st_mode & 0o022:
                # Whoever can write it can make the agent trust their host as this server.
                problems.add(join(path, key), f"{full} is writable by group or others; "
                             "chmod go-w it")
    lx = mapping(d.get("linux"), join(path, "linux"), problems, _LINUX)
    paths = {k: string(lx, k, join(path, "linux"), problems) for k in _LINUX if k in lx}
    kw["linux"] = LinuxPaths(**{k: v for k, v in paths.items() if v is not None})
    kw["cpanel"] = cpanel_settings.parse(d.get("cpanel"), join(path, "cpanel"), problems, base)
    kw["resellers"] = resellers.parse(d.get("resellers"), join(path, "resellers"),
                                      kw["panel"], problems)
    kw["admins"] = _admins(d, path, kw["panel"], kw["user"] or "root", problems)
    kw["firewall_exempt"] = _networks(d, path, problems)
    return Server(**kw)


def _networks(d: dict, path: str, problems: Problems) -> tuple[str, ...]:
    """Return `firewall_exempt:` as normalised networks (192.0.2.7 -> 192.0.2.7/32)."""
    found = []
    for i, text in enumerate(string_list(d, "firewall_exempt", path, problems)):
        try:
            found.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            problems.add(join(join(path, "firewall_exempt"), i),
                         f"{text!r} is not an IPv4 or IPv6 address or network")
    return tuple(dict.fromkeys(found))


def _admins(d: dict, path: str, panel: str, user: str, problems: Problems) -> tuple[str, ...]:
    """Return the server's `admins:` (linux only), each a valid account name that is
    neither root nor the login the agent itself connects as."""
    names = string_list(d, "admins", path, problems)
    if names and panel != "linux":
        problems.add(join(path, "admins"), f"only for panel linux: a {panel} server's admins "
                     "are the ones its panel lists (its resellers)")
        return ()
    for i, name in enumerate(names):
        where = join(join(path, "admins"), i)
        try:
            ids.account(name, panel)
        except BadInput as exc:
            problems.add(where, str(exc))
            continue
        if name in ("root", user):
            problems.add(where, f"{name!r} is the login the agent itself uses on this server "
                         "(or root); it is never locked")
    return tuple(dict.fromkeys(names))
