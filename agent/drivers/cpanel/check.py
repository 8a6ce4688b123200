"""The cpanel driver's `check`: panel and version, the API channel and what its user may do,
and for each step whether the server has what it needs, and why not (read-only)."""

from __future__ import annotations

from typing import Any

from agent.connector import Connector
from agent.drivers.cpanel import db_lock, hazards, webmail
from agent.drivers.cpanel.facts import Panel
from agent.errors import AgentError
from agent.steps import programs, smtp_auth, sql, throttle
from agent.steps.api import ApiRefused

# WHM ACLs the driver's WHM functions need (docs: "Guide to WHM Plugins - ACL Reference
# Chart"; review F6: UAPI through WHM needs cpanel-api, and cPanel's API dispatch table
# gates version, myprivs and listsuspended as below, Whostmgr/XMLUI/Meta.pm in 11.120); a
# token of a user with `all` (root) has every one of them.
NEEDED_ACLS = {"acct-summary": "accountsummary",
               "suspend-acct": "suspendacct/unsuspendacct/listsuspended, outgoing mail",
               "cpanel-api": "UAPI through WHM: domains, mailboxes, FTP, databases",
               "basic-system-info": "version", "basic-whm-functions": "myprivs"}


def needs(s: Any) -> dict[str, list[str]]:
    """Return, per step, the paths on the server it cannot work without."""
    return {
        "backup": [s.pkgacct, s.tar, s.sha256sum],
        "landing_page": [s.userdata_dir, s.rebuildhttpdconf, s.restartsrv_httpd],
        "mail_block": [s.doveadm],
        "ftp_lock": [s.ftp_passwd_dir, s.ftpupdate]
        + ([s.pure_ftpwho] if s.ftp_sessions == "end" else []),
        "db_lock": [s.mysql],
        "panel_lock": [s.usermod, s.getent, s.noshell, s.gpasswd, s.sshd],
        "panel_suspend": [],
        # Reads the hash (getent) and re-locks it after the unsuspend (usermod, reapply.py).
        "reseller_lock": [s.getent, s.usermod],
    }


def cpanel_check(server: Any, conn: Connector, lines: list[str]) -> bool:
    """Report what the cpanel driver finds on `server`; return False when a step cannot run.

    Raises TokenRefused (exit 78) when WHM refuses the token, Unreachable when the API does
    not answer: the CLI maps those as for any other verb.
    """
    s = server.cpanel
    panel = Panel(server, conn)
    how = (f"WHM API 1 over HTTPS at {s.api_host or server.host}:{s.api_port} as {s.api_user}"
           f" (token from {s.token_file}; CA: {s.ca_file or 'system'})"
           if s.transport == "api" else f"{s.whmapi1} and {s.uapi} as root on the server")
    lines.append(f"panel calls: {how}")
    if s.transport == "cli":
        missing = [p for p, st in conn.stat_many([s.whmapi1, s.uapi]).items() if not st.exists]
        if missing:
            lines.append("NO: not a cPanel server (missing " + ", ".join(missing) + ")")
            return False
    try:
        version = panel.query(panel.whm("version"))
    except ApiRefused as exc:
        lines.append(f"NO: WHM refuses `version` ({exc}): the API user lacks the "
                     "basic-system-info privilege")
        _privileges(panel, lines)
        return False
    on_disk = (conn.read(s.version_file) or b"").decode("utf-8", "replace").strip()
    lines.append(f"cPanel & WHM version {(version or {}).get('version', 'unknown')}"
                 + (f" ({s.version_file}: {on_disk[:40]})" if on_disk else ""))
    ok = _privileges(panel, lines)
    paths = sorted({p for wanted in needs(s).values() for p in wanted})
    stats = conn.stat_many(paths)
    absent = {p for p, st in stats.items() if not st.exists}
    lines.append(("yes" if s.userdata_dir not in absent else "NO") + ": EA4 userdata includes ("
                 + _include_base(conn, s) + ")")
    layout, refused = hazards.hazard_lines(conn, server)
    lines += layout
    account_lock = _account_lock(conn, server, lines) if s.mysql not in absent else False
    doveadm = programs.program_problem(conn, s.doveadm, stats[s.doveadm])
    lines.append(f"NO: {doveadm} (cpanel.doveadm)" if doveadm else
                 f"yes: Dovecot's doveadm ({s.doveadm}) ends open IMAP/POP sessions")
    if s.ftp_sessions == "leave":
        lines.append("NOTE: ftp_lock leaves open FTP sessions running (cpanel.ftp_sessions: "
                     "leave)")
    for step, wanted in needs(s).items():
        missing = [p for p in wanted if p in absent]
        why = "missing " + ", ".join(missing) if missing else ""
        if step == "mail_block" and doveadm:
            # Email::suspend_login alone leaves connected mail clients reading mail.
            why = (f"{doveadm} (cpanel.doveadm): without doveadm, mail_block cannot end the "
                   "open IMAP/POP sessions of the mailboxes it locks, so it refuses")
        elif step == "ftp_lock" and s.pure_ftpwho in missing:
            # The edited file alone leaves connected FTP clients uploading.
            why += (" (cpanel.pure_ftpwho: without pure-ftpwho, ftp_lock cannot end the open "
                    "FTP sessions of the logins it locks, so it refuses)")
        elif step in refused and not why:
            why = refused[step]
        elif step == "db_lock" and not why and not account_lock:
            why = "the database server has no ACCOUNT LOCK"
        lines.append(f"step {step}: " + (f"NOT available: {why}" if why else "available"))
        ok = ok and not why
    # Only whole-server playbooks need these: said, but not a problem of this host.
    lines.append(throttle.check_line(conn, server.linux))
    if conn.stat(s.exim).exists:
        where = smtp_auth.cpanel_exim(server)
        withdrawn, _shown = smtp_auth.prepared(conn, where)
        lines.append("firewall_block withdraws SMTP AUTH on 25: " + (
            "yes" if withdrawn else f"no: add `{smtp_auth.option_line(where)}` in WHM, Exim "
            "Configuration Manager, Advanced Editor (docs/cpanel.md, 'Whole server'), or "
            "close 25 too"))
    lines.append(webmail.check_line(conn))
    return ok


def _include_base(conn: Connector, s: Any) -> str:
    """Say which include base EA4's templates use on this server (review F7): the first
    existing of std/<apache_dir>/ and std/2/, the same for every vhost."""
    bases = [f"{s.userdata_dir}/std/{v}" for v in dict.fromkeys((s.apache_dir, "2"))]
    stats = conn.stat_many(bases)
    there = [b for b in bases if stats[b].exists]
    if not there:
        return (f"no base yet; landing_page makes {s.userdata_dir}/{{std,ssl}}/"
                f"{s.apache_dir}/<user>/")
    base = there[0].rsplit("/", 1)[1]
    return (f"every vhost includes from {s.userdata_dir}/{{std,ssl}}/{base}/; landing_page "
            "writes there")


def _privileges(panel: Panel, lines: list[str]) -> bool:
    """Report the API user's WHM privileges (`myprivs`); False when one the steps need is
    missing."""
    try:
        data = panel.query(panel.whm("myprivs"))
    except ApiRefused as exc:
        lines.append(f"NO: cannot read the API user's privileges ({exc}): it lacks the "
                     "basic-whm-functions privilege (myprivs)")
        return False
    privs = (data or {}).get("privileges") if isinstance(data, dict) else None
    granted = {k for p in (privs or []) if isinstance(p, dict) for k, v in p.items()
               if str(v) == "1"}
    if "all" in granted:
        lines.append("API user privileges: all (root-level; disallowun and unsuspending a "
                     "locked account need it)")
        return True
    missing = [f"{acl} ({used})" for acl, used in NEEDED_ACLS.items() if acl not in granted]
    lines.append("API user privileges: " + (", ".join(sorted(granted)) or "none")
                 + ("; missing " + ", ".join(missing) if missing else "")
                 + "; without `all`, abuse holds cannot use disallowun, and reseller targets "
                 "need it (listresellers, suspendreseller disallow=1)")
    return not missing


def _account_lock(conn: Connector, server: Any, lines: list[str]) -> bool:
    try:
        version = conn.run(db_lock.mysql_argv_for(server.cpanel),
                           stdin=b"SELECT VERSION();\n").text.strip()
        kind, number = sql.server_kind(version)
    except AgentError as exc:
        lines.append(f"NO: cannot ask the database server its version: {exc}")
        return False
    good = number >= sql.MIN_VERSION[kind]
    lines.append(("yes" if good else "NO") + f": {kind} {'.'.join(map(str, number))} "
                 "supports ACCOUNT LOCK")
    return good
