"""What `check` reports about a cPanel server's layout that changes what a suspension does
(cpanel-review.md item 3): ea-nginx and its cache (F5), Force HTTPS Redirect domains (F3),
the FTP daemon (F1, F9), the database prefix setting (F2), SSH's deny group (F9). Read-only:
one read of the settings files, one grep of the account data, `getent group` and `sshd -T`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from agent.connector import Connector
from agent.drivers.cpanel import ea_nginx, ssh_deny
from agent.errors import AgentError

CPANEL_CONFIG = "/var/cpanel/cpanel.config"
_SHOWN = 5  # domains listed before "and N more"


def listed(names: list[str], shown: int) -> str:
    """Return the first `shown` names, comma-separated, and "and N more" for the rest."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more"
                                       if len(names) > shown else "")


def cpanel_config(text: str) -> dict[str, str]:
    """Parse cpanel.config's `key=value` lines (later lines win, as cPanel's loader does)."""
    return {k.strip(): v.strip() for k, _, v in
            (line.partition("=") for line in text.splitlines() if "=" in line)}


def hazard_lines(conn: Connector, server: Any) -> tuple[list[str], dict[str, str]]:
    """Return the lines `check` prints about the server's layout, and why each step it makes
    refuse would refuse (ea-nginx standalone: landing_page; no SSH deny: panel_lock)."""
    s = server.cpanel
    where = ea_nginx.paths(s, "*")
    found = conn.read_many([CPANEL_CONFIG, where["global"], where["standalone"]])
    conf = cpanel_config((found[CPANEL_CONFIG].data or b"").decode("utf-8", "replace"))
    lines: list[str] = []
    refused: dict[str, str] = {}
    if found[where["standalone"]].exists:
        refused["landing_page"] = "ea-nginx serves the sites standalone"
        lines.append(f"NO: ea-nginx serves the sites standalone ({where['standalone']}): no "
                     "Apache behind it for the landing include, landing_page refuses")
    elif found[where["global"]].exists:
        lines.append(_nginx_line(found[where["global"]].data or b"", s))
    else:
        lines.append("ea-nginx: not installed (Apache answers visitors itself)")
    lines.append(_ftp_line(conf.get("ftpserver", "pure-ftpd"), s.ftp_sessions))
    lines.append("database prefixing: " + (
        "off (database_prefix=0): db_lock finds the account's database users in its "
        "database map, not by name" if conf.get("database_prefix", "1") == "0" else
        "on (database users are named after the account, up to 16 characters and _)"))
    lines.append(_force_https_line(conn, s))
    ssh = _ssh_line(conn, server)
    lines.append(ssh)
    if ssh.startswith("NO"):
        refused["panel_lock"] = f"sshd does not deny the group {s.ssh_deny_group}"
    return lines, refused


def _ssh_line(conn: Connector, server: Any) -> str:
    s = server.cpanel
    ctx = SimpleNamespace(server=server, conn=conn)  # what ssh_deny reads of a step's context
    try:
        if ssh_deny.members(ctx) is None:  # type: ignore[arg-type]
            return (f"NO: there is no group {s.ssh_deny_group}: panel_lock refuses, since SSH "
                    "key logins and port forwarding would stay open (cpanel.ssh_deny_group)")
        if not ssh_deny.denied_by_sshd(ctx, "root"):  # type: ignore[arg-type]
            return (f"NO: sshd does not deny the group {s.ssh_deny_group} (add it to "
                    "DenyGroups in sshd_config, as cPanel's install does): panel_lock refuses")
    except AgentError as exc:
        return f"NO: sshd's configuration could not be read ({exc}): panel_lock refuses"
    return (f"yes: sshd denies the group {s.ssh_deny_group}; panel_lock puts the account "
            "in it (SSH key logins and port forwarding stop)")


def _nginx_line(global_cache: bytes, s: Any) -> str:
    import json

    try:
        enabled = json.loads(global_cache).get("enabled", True)
    except (ValueError, AttributeError):
        enabled = True  # ea-nginx falls back to its defaults: caching on
    return ("ea-nginx in front of Apache, caching " + ("on" if enabled else "off")
            + f" by default ({s.ea_nginx_dir}/cache.json): landing_page turns each "
            "suspended account's cache off and empties it (ea-nginx config, clear_cache), "
            "and puts the account's own setting back when lifted")


def _ftp_line(daemon: str, sessions: str) -> str:
    if daemon == "proftpd":
        return ("NOTE: the FTP daemon is ProFTPD (cpanel.config ftpserver=proftpd): ftp_lock "
                "locks its logins in /etc/proftpd/USER as for Pure-FTPd, but pure-ftpwho "
                "sees no ProFTPD session; set `cpanel.ftp_sessions: leave`"
                if sessions == "end" else
                "FTP daemon: ProFTPD; open sessions are left running (ftp_sessions: leave)")
    if daemon == "disabled":
        return "FTP daemon: disabled (cpanel.config ftpserver=disabled)"
    return f"FTP daemon: {daemon} (ftp_lock ends open sessions with pure-ftpwho)"


def _force_https_line(conn: Connector, s: Any) -> str:
    # The Force HTTPS Redirect flag is `ssl_redirect: 1` in the domain's userdata file.
    try:
        out = conn.run(["grep", "-rlE", "^ssl_redirect: *['\"]?1['\"]?$", "--",
                        s.panel_userdata_dir], ok_codes=(0, 1, 2), timeout=120).text
    except AgentError as exc:
        return f"Force HTTPS Redirect domains: could not be read ({exc})"
    names = sorted({p.rsplit("/", 1)[-1].removesuffix("_SSL") for p in out.split()})
    if not names:
        return "Force HTTPS Redirect domains: none"
    return (f"NOTE: {len(names)} domain(s) with Force HTTPS Redirect "
            f"({listed(names, _SHOWN)}): suspended, "
            "their HTTP answers 301 to HTTPS and the landing page shows there")
