"""A second host layout: mail and FTP as a stock Debian host has them (system users).

Before preparation the host is Debian's packages plus what an admin of such a host
typically adds: Dovecot authenticating system users through PAM with mail in ~/Maildir,
Exim's own Debian configuration (non-split) with the template's dovecot authenticator,
Pure-FTPd started by pure-ftpd-wrapper with `-l unix` switched on. `prepare` then installs
exactly the snippets of docs/linux-host.md ("Preparing a stock Debian host"), read from
that page, so the documentation is what is tested.

The test harness's own settings (plaintext logins over the private veth pair, no failure
delays, log files, daemonizing, the passive port range) live in separate files and are
the same before and after preparation.
"""

from __future__ import annotations

import os
import re
import signal

from agent import PROJECT_ROOT
from tests.hosts import hostfs
from tests.hosts.testhost import TestHost

MAIL_DOMAIN = "stock.test"
DOCS = PROJECT_ROOT / "docs" / "linux-host.md"
_BLOCK = re.compile(r"^```\w* (/\S+)\n(.*?)^```", re.M | re.S)

_DOVECOT_HARNESS = """\
# Test harness only (not part of the layout): plaintext over the private veth pair, no
# failure delay, a log file, Maildir, the socket the Exim template's example names.
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
mail_location = maildir:~/Maildir
log_path = /var/log/dovecot.log
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  unix_listener /var/spool/exim4/dovecot.auth-client {
    mode = 0660
    group = Debian-exim
  }
}
"""
_EXIM_DEBCONF = f"""\
dc_eximconfig_configtype='internet'
dc_other_hostnames='{MAIL_DOMAIN}'
dc_local_interfaces=''
dc_readhost=''
dc_relay_domains=''
dc_minimaldns='false'
dc_relay_nets=''
dc_smarthost=''
CFILEMODE='644'
dc_use_split_config='false'
dc_hide_mailname=''
dc_mailname_in_oh='true'
dc_localdelivery='maildir_home'
"""
_FTP_HARNESS = {"Daemonize": "yes", "ChrootEveryone": "yes", "DontResolve": "yes",
                "PassivePortRange": "30000 30099", "UnixAuthentication": "yes"}


def snippets() -> dict[str, str]:
    """Return docs/linux-host.md's preparation files: path -> whole content."""
    text = DOCS.read_text()
    section = text[text.index("## Preparing a stock Debian host"):]
    return {path: body for path, body in _BLOCK.findall(section)}


def setup(host: TestHost, accounts: list[str]) -> None:
    """Ensure the stock layout (before preparation) for the accounts' system users."""
    for account in accounts:
        uid, gid = hostfs.user_ids(host, account)
        for sub in ("cur", "new", "tmp"):
            hostfs.make_dirs(host, f"/home/{account}/Maildir/{sub}", 0o700, (uid, gid))
    hostfs.write(host, "/etc/dovecot/conf.d/99-testhost.conf", _DOVECOT_HARNESS)
    hostfs.write(host, "/etc/exim4/update-exim4.conf.conf", _EXIM_DEBCONF)
    hostfs.write(host, "/etc/mailname", f"{MAIL_DOMAIN}\n")
    template = host.path("/etc/exim4/exim4.conf.template")
    text = template.read_text()
    example = ("# dovecot_plain_server:\n#   driver = dovecot\n#   public_name = PLAIN\n"
               "#   server_socket = /var/spool/exim4/dovecot.auth-client\n"
               "#   server_set_id = $auth1\n")
    if example not in text:
        raise RuntimeError("the image's Exim template no longer has the dovecot example")
    template.write_text(text.replace(example, example.replace("# ", "")))
    host.run(["update-exim4.conf"])
    for name, value in _FTP_HARNESS.items():
        hostfs.write(host, f"/etc/pure-ftpd/conf/{name}", f"{value}\n")


def start(host: TestHost) -> None:
    """Start Dovecot, Exim and Pure-FTPd (through Debian's wrapper) and wait for them."""
    host.run(["install", "-d", "-o", "Debian-exim", "-g", "Debian-exim", "-m", "755",
              "/run/exim4"])
    host.daemon(["/usr/sbin/dovecot"])
    host.wait(lambda: host.path("/var/spool/exim4/dovecot.auth-client").exists(),
              "Dovecot's socket for Exim")
    host.daemon(["/usr/sbin/exim4", "-bd", "-q30m"])
    _start_ftp(host)
    host.wait(lambda: all(host.port_open(p) for p in (143, 110, 25)), "Dovecot and Exim")


def _start_ftp(host: TestHost) -> None:
    host.run(["install", "-d", "-m", "755", "/run/pure-ftpd"])
    host.daemon(["/usr/sbin/pure-ftpd-wrapper"])
    host.wait(lambda: host.port_open(21), "Pure-FTPd")


def prepare(host: TestHost) -> None:
    """Install docs/linux-host.md's snippets and reload each service as the page says."""
    for path, body in snippets().items():
        hostfs.write(host, path, body)
    hostfs.make_dirs(host, "/etc/exim4/suspension-agent", 0o755, (0, 0))
    host.run(["doveadm", "reload"])
    host.run(["update-exim4.conf"])
    _signal(host, "/run/exim4/exim.pid", signal.SIGHUP)
    # A restart, as `systemctl restart pure-ftpd`: the wrapper reads its config at start.
    _signal(host, "/run/pure-ftpd/pure-ftpd.pid", signal.SIGTERM)
    host.wait(lambda: not host.port_open(21), "Pure-FTPd to stop")
    _start_ftp(host)
    host.wait(lambda: host.port_open(25), "Exim after its reload")


def _signal(host: TestHost, pid_file: str, sig: signal.Signals) -> None:
    """Signal the daemon whose pid `pid_file` names, if it is one of this host's processes."""
    pid = int(host.path(pid_file).read_text().split()[0])
    if pid not in host.pids():
        raise RuntimeError(f"{pid_file} names pid {pid}, not a process of {host.name}")
    os.kill(pid, sig)
