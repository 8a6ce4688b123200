"""The cpanel driver's settings: every path, binary and API setting as data (`cpanel:` block).

agent.config.servers imports this module to parse a server's `cpanel:` block, the same way
it parses `linux:` into LinuxPaths, so it imports only leaf modules (agent.config.validate,
agent.files), never the config's loader or its servers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from agent.config.validate import integer, join, mapping, string
from agent.files import private_file_problem

# How panel calls travel (reference/panels.md A1, A3): `cli` runs whmapi1/uapi as root on the
# server through the server's connector; `api` calls WHM API 1 over HTTPS with a token
# (UAPI through WHM's uapi_cpanel). Files (EA4 includes, archives, case records) always go
# through the connector: no WHM function writes /etc/apache2 or lists an archive.
API_TRANSPORTS = ("cli", "api")


@dataclass(frozen=True)
class CpanelSettings:
    """Where the `cpanel` driver finds things on a cPanel & WHM server (all overridable)."""

    transport: str = "cli"
    # WHM API over HTTPS (transport: api). The token file lives on the agent's host, is
    # owner-only, and holds the token alone; it is sent only in the Authorization header.
    api_host: str = ""  # default: the server's host
    api_port: int = 2087
    api_user: str = "root"
    token_file: str = ""
    ca_file: str = ""  # CA bundle for a self-signed WHM certificate; default: system CAs
    api_timeout: int = 60
    # Command lines (A3: full paths, CloudLinux has other binaries on PATH).
    whmapi1: str = "/usr/local/cpanel/bin/whmapi1"
    uapi: str = "/usr/local/cpanel/bin/uapi"
    pkgacct: str = "/usr/local/cpanel/scripts/pkgacct"
    # suspendacct's script: only for --force, when the agent's own panel_lock makes cPanel see
    # the account as suspended already (panel_suspend.py); otherwise the API function.
    suspendacct: str = "/usr/local/cpanel/scripts/suspendacct"
    rebuildhttpdconf: str = "/usr/local/cpanel/scripts/rebuildhttpdconf"
    restartsrv_httpd: str = "/usr/local/cpanel/scripts/restartsrv_httpd"
    ftpupdate: str = "/usr/local/cpanel/scripts/ftpupdate"
    # Seconds ftp_lock waits for cPanel's own lock of /etc/proftpd/USER (USER.lock and
    # flock, Cpanel::SafeFile; review F17) before it gives up, changing nothing.
    safefile_wait: int = 60
    # In its team mode (`OWNER_TEAMUSER 1`) it locks one team user's MySQL user (team_lock).
    suspendmysqlusers: str = "/usr/local/cpanel/scripts/suspendmysqlusers"
    version_file: str = "/usr/local/cpanel/version"
    # EA4 userdata includes (A12): <userdata_dir>/{std,ssl}/<apache_dir>/<user>/*.conf
    userdata_dir: str = "/etc/apache2/conf.d/userdata"
    apache_dir: str = "2_4"
    landing_dir: str = "/var/lib/suspension-agent/landing"
    # cPanel's own per-account data (/var/cpanel/userdata/USER/: main, one file per vhost,
    # nginx-cache.json), not the EA4 include folders above.
    panel_userdata_dir: str = "/var/cpanel/userdata"
    # EA4's ea-nginx in front of Apache (review F5): its settings folder (cache.json, the
    # enable.standalone flag), its script and NGINX's restart script.
    ea_nginx_dir: str = "/etc/nginx/ea-nginx"
    ea_nginx: str = "/usr/local/cpanel/scripts/ea-nginx"
    restartsrv_nginx: str = "/usr/local/cpanel/scripts/restartsrv_nginx"
    # suspendacct's own record: /var/cpanel/suspended/USER holds the reason while the
    # account is fully suspended (Cpanel/AcctUtils/Suspended.pm:48-50; review F4, F11).
    suspended_dir: str = "/var/cpanel/suspended"
    # Each account's database map, /var/cpanel/databases/USER.json (Cpanel/DB/Map.pm): where
    # cPanel's temporary phpMyAdmin users (cpses_*) are listed (review F13).
    databases_dir: str = "/var/cpanel/databases"
    # pkgacct archives go to <backup_dir>/<user>-<time>-<case>/cpmove-<user>.tar.gz (A11).
    backup_dir: str = "/home/suspension-agent-backups"
    tar: str = "/bin/tar"
    sha256sum: str = "/usr/bin/sha256sum"
    # FTP accounts of a user: /etc/proftpd/<user> (what suspendacct rewrites, A7 step 12).
    ftp_passwd_dir: str = "/etc/proftpd"  # noqa: S105 - a path
    # Pure-FTPd's session lister: ftp_lock ends the open sessions of the logins it locked
    # (`pure-ftpwho -s`), which the edited file alone leaves running. The path is NOT
    # confirmed for cPanel: no cPanel document found names it. Pure-FTPd's own build installs
    # it with its daemons (src/Makefile.am sbin_PROGRAMS: /usr/sbin for --prefix=/usr), and
    # Debian's pure-ftpd package and the test hosts have it there. `check` says if it is.
    pure_ftpwho: str = "/usr/sbin/pure-ftpwho"
    # `end` (default): ftp_lock ends the open sessions of the logins it locks, and refuses
    # without pure-ftpwho. `leave`: it does not, for a server whose FTP daemon is not
    # Pure-FTPd (cPanel also offers ProFTPD), where pure-ftpwho would see no session; every
    # plan then says that open sessions are left running.
    ftp_sessions: str = "end"
    # Logins: the account's shadow hash and shell (cPanel's own no-shell binary, A8).
    getent: str = "/usr/bin/getent"
    usermod: str = "/usr/sbin/usermod"
    noshell: str = "/usr/local/cpanel/bin/noshell"
    # SSH key logins and port forwarding (review F9): cPanel's install denies this group in
    # sshd_config (install/SSHD.pm), and suspendacct adds the account to it
    # (Whostmgr/Accounts/Suspension/SSH.pm); panel_lock does the same.
    ssh_deny_group: str = "cpanelsuspended"
    gpasswd: str = "/usr/bin/gpasswd"
    sshd: str = "/usr/sbin/sshd"
    # Reads files in a customer's home as the customer (util-linux; left_open.py).
    setpriv: str = "/usr/bin/setpriv"
    # Database users: the mysql client as root (cPanel keeps root's credentials in
    # /root/.my.cnf, read by the client itself); an extra defaults file if set.
    mysql: str = "/usr/bin/mysql"
    mysql_defaults_file: str = ""
    # Dovecot's admin tool: mail_block ends the open IMAP/POP sessions of the mailboxes it
    # locked (`doveadm kick`), which Email::suspend_login leaves running. The path is NOT
    # confirmed for cPanel: no cPanel document found names it. A cPanel/Exim/Dovecot
    # runbook runs a bare `doveadm quota recalc` as root, i.e. from root's PATH
    # (https://perciocastelo.com.br/blog/en/fixing-email-quota-conflicts-smtputf8-errors.html);
    # /usr/bin/doveadm is where Dovecot's packages install it (Debian's dovecot-core) and
    # where the test hosts have it. `check` says whether it is there.
    doveadm: str = "/usr/bin/doveadm"
    # firewall_block with port 25 open: cPanel's Exim, and the flag file on which its
    # auth_advertise_hosts expands once prepared (docs/cpanel.md, "Whole server").
    exim: str = "/usr/sbin/exim"
    exim_no_auth_flag: str = "/etc/exim_suspension_agent_no_auth"


CHOICES = {"transport": API_TRANSPORTS, "ftp_sessions": ("end", "leave")}
_INTS = {"api_port": (1, 65535), "api_timeout": (1, 3600), "safefile_wait": (1, 600)}
KEYS = {f.name for f in fields(CpanelSettings)}


def parse(doc: object, path: str, problems: Any, base: Path) -> CpanelSettings:
    """Return the settings of one server's `cpanel:` block; record every problem found.

    Ensures `transport: api` names an owner-only token file (relative to the config's
    folder) and, when given, an existing CA file; the token itself is not read here.
    """
    d = mapping(doc, path, problems, KEYS)
    kw: dict[str, Any] = {}
    for key in KEYS - set(_INTS):
        if key in d:
            value = string(d, key, path, problems,
                           choices=CHOICES.get(key))
            if value is not None:
                kw[key] = value
    for key, (low, high) in _INTS.items():
        kw[key] = integer(d, key, path, problems, getattr(CpanelSettings, key), low, high)
    for key in ("token_file", "ca_file"):
        if kw.get(key) and not os.path.isabs(kw[key]):
            kw[key] = str(base / kw[key])
    if kw.get("transport") == "api":
        if not kw.get("token_file"):
            problems.add(join(path, "token_file"), "is required with transport: api")
        elif why := private_file_problem(kw["token_file"]):
            problems.add(join(path, "token_file"), why)
    if kw.get("ca_file") and not os.path.isfile(kw["ca_file"]):
        problems.add(join(path, "ca_file"), f"{kw['ca_file']} does not exist")
    return CpanelSettings(**kw)
