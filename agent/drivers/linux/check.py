"""The linux driver's `check`: the binaries, files and hooks each of its steps needs, and
every way in that the agent's locks do not cover (read-only)."""

from __future__ import annotations

from agent.config.servers import LinuxPaths
from agent.connector import Connector
from agent.drivers import linux
from agent.drivers.linux import dovecot_auth, host_map, server_landing, service_probes
from agent.errors import AgentError
from agent.steps import firewall, smtp_auth, throttle
from agent.steps.sql import MIN_VERSION, server_kind


def linux_check(conn: Connector, p: LinuxPaths, lines: list[str]) -> bool:
    """Report what each step of the linux driver needs; return False when something is missing."""
    ok = True
    auth = dovecot_auth.read(conn, p)
    ftp = service_probes.pureftpd_logins(conn, p.pureftpd_auth_dir, p.pureftpd_logins)
    needed = [p.apachectl, p.mysql, p.mysqldump, p.tar, p.sha256sum, p.getent, p.doveadm,
              p.doveconf, p.exim, p.pure_pw, p.usermod, p.nologin_shell, p.sshd,
              p.apache_sites_dir, p.exim_hook_dir, p.ftpusers, p.sshd_config_dir,
              # Without it ftp_lock refuses: it could not end the open FTP sessions.
              p.pure_ftpwho]
    # What each layout reads: the virtual mailboxes' domains, the deny passdb's list, the
    # PureDB source file.
    needed += [p.userdomains] if auth.vmail else []
    needed += [p.dovecot_deny_file] if auth.system or auth.deny_first else []
    needed += [p.pureftpd_passwd] if f"puredb:{p.pureftpd_pdb}" in ftp else []
    for path, st in conn.stat_many(needed).items():
        if not st.exists:
            ok = False
            lines.append(f"missing: {path}")
    # Only whole-server playbooks need it: said, but not a problem of this host.
    has_nft = conn.stat(p.nft).exists
    lines.append(f"firewall_block (whole-server playbooks): {p.nft} "
                 + ("present" if has_nft else "missing (Debian: apt-get install nftables)"))
    boot = [f for f, data in conn.read_many(list(firewall.SAVED_RULESETS)).items()
            if data.exists and firewall.boot_include(p.nft_dir) in data.data.decode(
                "utf-8", "replace")]
    lines.append("firewall_block's table kept across reloads and reboots: " + (
        f"yes ({', '.join(boot)})" if boot else
        f"no: add `{firewall.boot_include(p.nft_dir)}` at the end of /etc/nftables.conf "
        "(docs/linux-host.md, 'Whole server'); until then the next tick puts it back"))
    lines.append(throttle.check_line(conn, p))
    if conn.stat(p.exim).exists:
        withdrawn, _shown = smtp_auth.prepared(conn, p)
        lines.append("firewall_block withdraws SMTP AUTH on 25: " + (
            "yes" if withdrawn else f"no: add `{smtp_auth.option_line(p)}` to Exim's main "
            "configuration (docs/linux-host.md, 'Whole server'), or close 25 too"))
    hooked = conn.run(["grep", "-RlF", "--", p.apache_hook_dir + "/", p.apache_sites_dir],
                      ok_codes=(0, 1, 2)).text.split()
    lines.append(f"vhost files with the suspension-agent hook: {len(hooked)}")
    why, _names = host_map.why_not(conn, p, None, [])
    lines.append("landing pages: " + ("through the host map (no reload)" if why is None else
                                      f"per-account include and a reload ({why}; "
                                      "docs/linux-host.md, 'The host map')"))
    if why is None:
        bare, defaults, _names = server_landing.readiness(conn, p)
        lines.append("whole server: its bare addresses go behind the landing page: " + (
            f"yes (default vhosts {', '.join(f'{a} {n}' for a, n, _f, _l in defaults)})"
            if bare is None else f"NO: {bare}"))
    else:
        lines.append("whole server: its bare addresses go behind the landing page: NO: it "
                     "needs the host map (a whole-server web stage fails without it)")
    probes = [
        ("Dovecot authenticates mailboxes in a layout the agent knows",
         lambda: auth.vmail or auth.system),
        (f"sshd_config includes {p.sshd_config_dir}",
         lambda: conn.run(["grep", "-qsF", "--", p.sshd_config_dir, "/etc/ssh/sshd_config"],
                          ok_codes=(0, 1, 2)).rc == 0),
        ("the database server supports ACCOUNT LOCK", lambda: _account_lock(conn, p)),
    ]
    lines.append(f"mail layout: {auth.layout}; deny passdb {p.dovecot_deny_file or '(none)'}: "
                 + ("consulted first" if auth.deny_first else "not consulted first"))
    others = auth.uncovered()
    lines.append("Dovecot passdbs not controlled by the agent: " + ("; ".join(others) or "none"))
    if auth.lookups:
        lines.append("Dovecot passdbs that authenticate nobody (they only look up fields; "
                     "not a way in): " + "; ".join(auth.lookups))
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
