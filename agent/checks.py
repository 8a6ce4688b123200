"""`check`: read-only look at each server: reachable, binaries and hooks of every step."""

from __future__ import annotations

from typing import Any

from agent import drivers
from agent.config import LinuxPaths
from agent.connector import Connector
from agent.drivers import linux
from agent.errors import AgentError, Unreachable
from agent.steps import service_probes
from agent.steps.db_lock import MIN_VERSION, server_kind


def check_servers(engine: Any, only: str | None) -> list[dict[str, Any]]:
    """Return one report per server; never changes anything on a server."""
    names = [engine.server(only).name] if only else sorted(engine.config.servers)
    reports = []
    for name in names:
        server = engine.config.servers[name]
        lines = [f"panel {server.panel}, transport {server.transport}, steps available: "
                 + (", ".join(sorted(drivers.AVAILABLE_STEPS.get(server.panel, ()))) or "none")]
        ok, unreachable = True, False
        try:
            conn = engine._conn(server)
            conn.run(["true"])
            lines.append("reachable")
            ok = drivers.check(server, conn, lines) and ok
        except Unreachable as exc:
            ok, unreachable = False, True
            lines.append(f"unreachable: {exc}")
        except AgentError as exc:
            ok = False
            lines.append(f"error: {exc}")
        reports.append({"server": name, "ok": ok, "unreachable": unreachable, "lines": lines})
    return reports


def linux_check(conn: Connector, p: LinuxPaths, lines: list[str]) -> bool:
    """Report what each step of the linux driver needs; return False when something is missing."""
    ok = True
    needed = [p.apachectl, p.mysql, p.mysqldump, p.tar, p.sha256sum, p.getent, p.doveadm,
              p.doveconf, p.exim, p.pure_pw, p.usermod, p.nologin_shell, p.sshd,
              p.apache_sites_dir, p.userdomains, p.exim_hook_dir, p.pureftpd_passwd,
              p.ftpusers, p.sshd_config_dir]
    for path, st in conn.stat_many(needed).items():
        if not st.exists:
            ok = False
            lines.append(f"missing: {path}")
    hooked = conn.run(["grep", "-RlF", "--", p.apache_hook_dir + "/", p.apache_sites_dir],
                      ok_codes=(0, 1, 2)).text.split()
    lines.append(f"vhost files with the suspension-agent hook: {len(hooked)}")
    probes = [
        (f"Dovecot's passdb reads {p.vmail_dir}/%d/shadow",
         lambda: service_probes.dovecot_reads(conn, p.doveconf, f"{p.vmail_dir}/%d/shadow")),
        (f"sshd_config includes {p.sshd_config_dir}",
         lambda: conn.run(["grep", "-qsF", "--", p.sshd_config_dir, "/etc/ssh/sshd_config"],
                          ok_codes=(0, 1, 2)).rc == 0),
        ("the database server supports ACCOUNT LOCK", lambda: _account_lock(conn, p)),
    ]
    passdbs = service_probes.dovecot_passdbs(conn, p.doveconf)
    others = service_probes.foreign_passdbs(passdbs, f"{p.vmail_dir}/%d/shadow")
    lines.append(f"Dovecot passdbs: {len(passdbs)}; not controlled by the agent: "
                 + ("; ".join(others) or "none"))
    ftp = service_probes.pureftpd_logins(conn, p.pureftpd_auth_dir, p.pureftpd_logins)
    foreign = service_probes.foreign_ftp_logins(ftp, p.pureftpd_pdb)
    lines.append("Pure-FTPd login methods: " + (", ".join(ftp) or "none found")
                 + "; not controlled by the agent: " + (", ".join(foreign) or "none"))
    smtp = service_probes.exim_foreign_authenticators(conn, p.exim)
    lines.append("Exim authenticators not going through Dovecot: " + (", ".join(smtp) or "none"))
    ok = ok and not others and not foreign and not smtp
    for text, probe in probes:
        detail = ""
        try:
            good = probe()
        except AgentError as exc:
            good, detail = False, f": {exc}"
        ok = ok and good
        lines.append(("yes: " if good else "NO: ") + text + detail)
    return ok


def _account_lock(conn: Connector, p: LinuxPaths) -> bool:
    version = conn.run(linux.mysql_argv(p), stdin=b"SELECT VERSION();\n").text.strip()
    kind, number = server_kind(version)
    return number >= MIN_VERSION[kind]
