"""Load and validate the agent config: every problem reported at once, with its path."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from agent import PROJECT_ROOT, ids
from agent.config import callers, resellers
from agent.config.callers import CallerPolicy
from agent.config.resellers import ResellerEntry
from agent.config.validate import Problems, boolean, integer, join, mapping, string, string_list
from agent.drivers.cpanel import settings as cpanel_settings
from agent.drivers.cpanel.settings import CpanelSettings
from agent.errors import BadInput, ConfigError
from agent.files import private_file_problem

DEFAULT_PATH = "/etc/suspension-agent/config.yaml"
LANGUAGES = ("en", "es", "pt", "nl", "de", "fr")
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
    # Owner-only directory on the server for its own copy of each case (agent/records.py);
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

    @property
    def address(self) -> str:
        """Where visitors' HTTP probes are sent (the server's public address)."""
        return self.probe_address or self.host


@dataclass(frozen=True)
class Branding:
    """What the landing page shows."""

    company: str = "Your hosting provider"
    contact_url: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    language: str = "en"
    retry_after: int = 3600


@dataclass(frozen=True)
class Config:
    """The whole validated config."""

    path: str
    state_db: str
    audit_log: str
    lock_wait_seconds: int
    playbooks_dir: str
    landing_pages_dir: str
    default_playbook: str
    branding: Branding
    protected_accounts: tuple[str, ...]
    servers: dict[str, Server]
    # Accounts below this uid (and `nobody`) are system accounts: never suspended.
    min_uid: int = 1000
    callers: dict[str, CallerPolicy] = field(default_factory=dict)


_TOP = {"state_db", "audit_log", "lock_wait_seconds", "playbooks_dir", "landing_pages_dir",
        "default_playbook", "branding", "protected_accounts", "servers", "min_uid", "callers"}
_SERVER = {"panel", "transport", "host", "port", "user", "key_file", "known_hosts",
           "connect_timeout", "sudo", "probe_address", "records_dir", "http_port",
           "https_port", "protected_accounts", "linux", "cpanel", "resellers"}
_BRANDING = {f.name for f in fields(Branding)}
_LINUX = {f.name for f in fields(LinuxPaths)}


def _server(name: str, doc: object, problems: Problems, base: Path) -> Server | None:
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
    return Server(**kw)


def _branding(doc: object, problems: Problems) -> Branding:
    d = mapping(doc, "branding", problems, _BRANDING)
    kw = {k: string(d, k, "branding", problems) for k in
          ("company", "contact_url", "contact_email", "contact_phone") if k in d}
    kw = {k: v for k, v in kw.items() if v is not None}
    language = string(d, "language", "branding", problems, default="en", choices=LANGUAGES)
    retry = integer(d, "retry_after", "branding", problems, 3600, 1, 30 * 86400)
    return Branding(**kw, language=language or "en", retry_after=retry)


def parse(doc: object, source: str, base: Path) -> Config:
    """Return a Config from a parsed YAML document; raise ConfigError listing every problem."""
    problems = Problems()
    d = mapping(doc, "", problems, _TOP)
    servers: dict[str, Server] = {}
    raw_servers = d.get("servers")
    if not isinstance(raw_servers, dict) or not raw_servers:
        problems.add("servers", "must be a mapping with at least one server")
    else:
        for name, sdoc in raw_servers.items():
            try:
                ids.server_name(name if isinstance(name, str) else "")
            except BadInput as exc:
                problems.add(join("servers", str(name)), str(exc))
                continue
            server = _server(name, sdoc, problems, base)
            if server is not None:
                servers[name] = server

    def where(key: str, default: str) -> str:
        value = string(d, key, "", problems, default=default) or default
        return str(base / value) if not os.path.isabs(value) else value

    config = Config(
        path=source,
        state_db=where("state_db", "/var/lib/suspension-agent/state.db"),
        audit_log=where("audit_log", "/var/log/suspension-agent/audit.jsonl"),
        lock_wait_seconds=integer(d, "lock_wait_seconds", "", problems, 5, 0, 600),
        playbooks_dir=where("playbooks_dir", str(PROJECT_ROOT / "playbooks")),
        landing_pages_dir=where("landing_pages_dir", str(PROJECT_ROOT / "landing_pages")),
        default_playbook=string(d, "default_playbook", "", problems, default="standard") or "",
        branding=_branding(d.get("branding"), problems),
        protected_accounts=tuple(string_list(d, "protected_accounts", "", problems)),
        servers=servers,
        min_uid=integer(d, "min_uid", "", problems, 1000, 0, 1 << 31),
        callers=callers.parse(d.get("callers"), problems),
    )
    if problems:
        raise ConfigError(source, problems.items)
    return config


MAX_FILE = 1 << 20  # a config or playbook is a few KiB; anything past 1 MiB is not one


def read_admin_file(path: str, what: str) -> object:
    """Return the YAML document of an admin's file (config, playbook).

    Ensures it is a regular file (never blocks on a FIFO, never reads a device), at most
    MAX_FILE bytes, not writable by others, UTF-8; a parse error names the line and column
    but never echoes the file's content (it may not be a config at all: /etc/shadow).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(path, [f"cannot read {what}: {exc.strerror}"]) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(path, [f"the {what} is not a regular file"])
        if st.st_mode & 0o002:
            raise ConfigError(path, [f"the {what} is writable by others (mode "
                                     f"{st.st_mode & 0o777:o}); chmod o-w it"])
        data = os.read(fd, MAX_FILE + 1)
        while len(data) <= MAX_FILE and (more := os.read(fd, MAX_FILE + 1 - len(data))):
            data += more
    finally:
        os.close(fd)
    if len(data) > MAX_FILE:
        raise ConfigError(path, [f"the {what} is larger than {MAX_FILE} bytes"])
    try:
        return yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"the {what} is not UTF-8 text"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(path, [f"malformed YAML: {problem}{where}"]) from exc


def load(path: str | None) -> Config:
    """Read and validate the config file; raise ConfigError (exit 78) on any problem."""
    path = path or os.environ.get("SUSPENSION_AGENT_CONFIG") or DEFAULT_PATH
    doc = read_admin_file(path, "config")
    return parse(doc, path, Path(path).resolve().parent)
