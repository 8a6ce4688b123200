"""The simulator's code and daemons on a cPanel test host, and the tests' handles on them.

install_sim() copies tests/hosts/cpanel/sim/ to /usr/local/cpanel/sim/cpsim/ and writes the
command wrappers; start_*() start Dovecot, Exim, pure-authd + Pure-FTPd and the WHM HTTPS
daemon (port 2087) chrooted in the host; create_token() and set_faults() are how a test
gets a WHM API token and injects faults.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.hosts import hostfs, mail
from tests.hosts.testhost import TestHost

SIM_SRC = Path(__file__).parent / "sim"
ETC = Path(__file__).parent / "etc"
SIM_ROOT = "/usr/local/cpanel/sim"
BIN = "/usr/local/cpanel/bin"
SCRIPTS = "/usr/local/cpanel/scripts"
SIM_BIN = f"{SIM_ROOT}/bin"
FAULTS = "/var/cpanel/sim/faults.json"
WHM_PORT = 2087
AUTHD_SOCKET = "/run/ftpd.sock"

_WRAPPER = ("#!/usr/bin/python3\nimport sys\nsys.path.insert(0, {root!r})\n"
            "from cpsim.cli import main\nsys.exit(main({name!r}, sys.argv[1:]))\n")
_SERVER = ("#!/usr/bin/python3\nimport sys\nsys.path.insert(0, {root!r})\n"
           "from cpsim.server import serve\nserve()\n")
SCRIPT_NAMES = ("pkgacct", "rebuildhttpdconf", "restartsrv_httpd", "suspendacct",
                "unsuspendacct", "suspendmysqlusers", "unsuspendmysqlusers", "ftpupdate",
                "ea-nginx", "restartsrv_nginx")


def install_sim(host: TestHost) -> None:
    """Ensure the simulator's package and every command wrapper exist in the host, with
    /usr/sbin/whmapi1, /usr/bin/uapi and /scripts pointing at them (panels.md A3)."""
    package = host.path(f"{SIM_ROOT}/cpsim")
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    for source in SIM_SRC.glob("*.py"):
        shutil.copyfile(source, package / source.name)
    wrappers = {f"{BIN}/whmapi1": "whmapi1", f"{BIN}/uapi": "uapi",
                **{f"{SCRIPTS}/{n}": n for n in SCRIPT_NAMES},
                **{f"{SIM_BIN}/{n}": n for n in ("pureauth", "pkgacct-session", "sim-token")}}
    for path, name in wrappers.items():
        hostfs.write(host, path, _WRAPPER.format(root=SIM_ROOT, name=name), mode=0o755)
    hostfs.write(host, f"{SIM_BIN}/cpsrvd", _SERVER.format(root=SIM_ROOT), mode=0o755)
    for link, target in (("/usr/sbin/whmapi1", f"{BIN}/whmapi1"), ("/usr/bin/uapi", f"{BIN}/uapi"),
                         ("/scripts", SCRIPTS), (f"{BIN}/noshell", "/usr/sbin/nologin")):
        path = host.path(link)
        if path.is_symlink() or path.exists():
            path.unlink()
        os.symlink(target, path)
    hostfs.write(host, "/usr/local/cpanel/version", "11.118.0.5\n")
    # /var/cpanel itself is world-searchable (Exim checks /var/cpanel/suspended/USER).
    hostfs.make_dirs(host, "/var/cpanel", 0o755, (0, 0))
    hostfs.make_dirs(host, "/var/cpanel/sim", 0o700, (0, 0))


def start_mail(host: TestHost) -> None:
    """Start Dovecot and Exim with the cPanel-layout configs; return when they answer."""
    hostfs.write(host, "/etc/dovecot/dovecot.conf", (ETC / "dovecot.conf").read_text())
    hostfs.write(host, "/etc/exim4/exim4.conf", (ETC / "exim4.conf").read_text())
    hostfs.write(host, "/etc/exim4/outside-local-parts", "*: outside\n")
    hostfs.make_dirs(host, "/var/spool/outside", 0o755, hostfs.user_ids(host, "Debian-exim"))
    mail.start(host)


def start_ftp(host: TestHost) -> None:
    """Start pure-authd (running the simulator's pureauth on each login, which reads
    /etc/proftpd/USER) and Pure-FTPd using only it; return when port 21 answers."""
    host.daemon(["/usr/sbin/pure-authd", "-B", "-s", AUTHD_SOCKET, "-r", f"{SIM_BIN}/pureauth"])
    host.wait(lambda: host.path(AUTHD_SOCKET).exists(), "pure-authd socket")
    host.daemon(["/usr/sbin/pure-ftpd", "--daemonize", "--login", f"extauth:{AUTHD_SOCKET}",
                 "--noanonymous", "--chrooteveryone", "--minuid", "1000", "--dontresolve",
                 "--passiveportrange", "30000:30099"])
    host.wait(lambda: host.port_open(21), "Pure-FTPd")


def start_whm(host: TestHost) -> subprocess.Popen:
    """Start the WHM API HTTPS daemon (port 2087) in the host; return its process, which is
    also in host.started so the host's teardown reaps it."""
    log = host.path("/var/log/cpsim-cpsrvd.log").open("ab")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.netns, "chroot", str(host.root), f"{SIM_BIN}/cpsrvd"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    log.close()
    host.started.append(proc)
    host.wait(lambda: host.port_open(WHM_PORT), "WHM API on 2087")
    return proc


def stop_whm(host: TestHost, proc: subprocess.Popen) -> None:
    """Stop exactly the WHM daemon `proc` started by start_whm."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    if proc in host.started:
        host.started.remove(proc)


def create_token(host: TestHost, user: str = "root", name: str = "tests",
                 acls: tuple[str, ...] = ("all",)) -> str:
    """Create a WHM API token for `user` (root or a reseller) with `acls`; return it."""
    out = host.run([f"{SIM_BIN}/sim-token", user, name, *acls]).stdout.decode().strip()
    if len(out) != 32:
        raise RuntimeError(f"sim-token gave {out!r}")
    return out


def set_faults(host: TestHost, faults: dict | None) -> None:
    """Make named functions misbehave (see sim/store.py fault()); None: faithful again."""
    path = host.path(FAULTS)
    if faults is None:
        path.unlink(missing_ok=True)
        return
    hostfs.write(host, FAULTS, json.dumps(faults), mode=0o600)
