"""One test host: an overlay of the image, its own network namespace, real daemons.

Every daemon runs chrooted into the host's tree inside the host's namespace; teardown stops
exactly the processes whose root is that tree, unmounts what it mounted and deletes the
namespace it made.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.hosts.image import _remove_tree, ensure_image

RUN_BASE = Path(os.environ.get("SA_TESTHOST_RUN", "/var/tmp/suspension-agent-testhosts"))
# A /24 per host out of a block used only for these veth pairs, which never leave the machine.
NET_PREFIX = "10.231"


def sh(argv: list[str], *, check: bool = True, netns: str | None = None,
       input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run a command on the CI machine (optionally inside a namespace) and return its result."""
    full = (["ip", "netns", "exec", netns] if netns else []) + argv
    proc = subprocess.run(full, capture_output=True, input=input, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
    return proc


@dataclass
class TestHost:
    """A running test host; use `up()` and `down()` (or the pytest fixture)."""

    name: str
    index: int
    folder: Path = field(init=False)
    root: Path = field(init=False)
    netns: str = field(init=False)
    address: str = field(init=False)
    gateway: str = field(init=False)
    mounts: list[str] = field(default_factory=list)
    started: list[subprocess.Popen] = field(default_factory=list)
    # Set by provisioning: the private key that logs in as alice over SSH (CI side).
    alice_key: Path | None = None

    def __post_init__(self) -> None:
        self.folder = RUN_BASE / self.name
        self.root = self.folder / "root"
        self.netns = f"sa-{self.name}"
        self.gateway = f"{NET_PREFIX}.{self.index}.1"
        self.address = f"{NET_PREFIX}.{self.index}.2"

    # -- commands inside the host -------------------------------------------------------
    def run(self, argv: list[str], *, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess:
        """Run `argv` chrooted into the host, inside its namespace."""
        return sh(["chroot", str(self.root), *argv], check=check, netns=self.netns, input=input)

    def daemon(self, argv: list[str]) -> None:
        """Run a self-forking daemon chrooted into the host; return once its parent exits.

        Its output goes nowhere: a daemon that keeps inherited pipes open would otherwise
        block a caller waiting for their end (Dovecot does).
        """
        full = ["ip", "netns", "exec", self.netns, "chroot", str(self.root), *argv]
        code = subprocess.run(full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=False).returncode
        if code != 0:
            raise RuntimeError(f"{' '.join(argv)} did not start on {self.name} (exit {code})")

    def in_namespaces(self, argv: list[str]) -> subprocess.CompletedProcess:
        """Run `argv` (CI-machine paths) in the mount and network namespaces of the daemons.

        `ip netns exec` gives the daemons their own mount namespace, so a file system mounted
        for a test must be mounted there to be seen by them.
        """
        # Each `ip netns exec` makes its own mount namespace: use sshd's, where the agent works.
        sshd = sorted(p for p in self.pids() if _comm(p) == "sshd")
        if not sshd:
            raise RuntimeError(f"test host {self.name} has no running sshd")
        return sh(["nsenter", "-t", str(sshd[0]), "-m", "-n", *argv])

    def path(self, inside: str) -> Path:
        """Return the CI-machine path of a path inside the host."""
        return self.root / inside.lstrip("/")

    # -- lifecycle ------------------------------------------------------------------------
    def up(self) -> TestHost:
        """Ensure the host is running with sshd, Apache and MariaDB answering."""
        image = ensure_image()
        if self.folder.exists():
            self.down()
        for sub in ("upper", "work", "root"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        layers = f"lowerdir={image},upperdir={self.folder / 'upper'},workdir={self.folder / 'work'}"
        self._mount("overlay", str(self.root), "-t", "overlay", "-o", layers)
        self._mount("proc", str(self.root / "proc"), "-t", "proc")
        self._mount("tmpfs", str(self.root / "dev"), "-t", "tmpfs", "-o", "mode=755,size=1m")
        for node, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
                                   ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)):
            os.mknod(self.root / "dev" / node, 0o666 | 0o020000, os.makedev(major, minor))
            # mknod applies the umask; unprivileged users (Exim, customers) need rw too.
            os.chmod(self.root / "dev" / node, 0o666)
        (self.root / "dev" / "shm").mkdir()
        self._mount("tmpfs", str(self.root / "dev" / "shm"), "-t", "tmpfs", "-o", "size=64m")
        self._mount("tmpfs", str(self.root / "run"), "-t", "tmpfs", "-o", "mode=755,size=64m")
        self._network()
        self._start_services()
        return self

    def _mount(self, source: str, target: str, *options: str) -> None:
        sh(["mount", *options, source, target])
        self.mounts.append(target)

    def _network(self) -> None:
        host_if, ns_if = f"sa{self.index}h", f"sa{self.index}n"
        sh(["ip", "netns", "add", self.netns])
        sh(["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if])
        sh(["ip", "link", "set", ns_if, "netns", self.netns])
        sh(["ip", "addr", "add", f"{self.gateway}/24", "dev", host_if])
        sh(["ip", "link", "set", host_if, "up"])
        sh(["ip", "addr", "add", f"{self.address}/24", "dev", ns_if], netns=self.netns)
        sh(["ip", "link", "set", ns_if, "up"], netns=self.netns)
        sh(["ip", "link", "set", "lo", "up"], netns=self.netns)

    def _start_services(self) -> None:
        for folder, owner in (("/run/sshd", "root"), ("/run/mysqld", "mysql"),
                              ("/run/apache2", "root"), ("/run/lock", "root")):
            self.run(["install", "-d", "-o", owner, "-g", owner, "-m", "755", folder])
        self.run(["/usr/sbin/sshd"])
        self.start_mariadb()
        self.run(["/usr/sbin/apache2ctl", "start"])
        self.wait(lambda: self.port_open(80) and self.port_open(22), "sshd and Apache")

    def start_mariadb(self) -> None:
        """Start mariadbd in the host and wait for its socket."""
        # mariadbd does not fork: keep the Popen pid as one of ours.
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "chroot", str(self.root), "/usr/sbin/mariadbd",
             "--user=mysql", "--skip-networking=0", "--bind-address=127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.started.append(proc)
        self.wait(lambda: self.path("/run/mysqld/mysqld.sock").exists(), "MariaDB socket")

    def stop_mariadb(self) -> None:
        """Stop the host's mariadbd (SIGTERM to exactly the process we started) and wait."""
        # `ip netns exec` and `chroot` exec in place: the Popen pid is mariadbd itself.
        for proc in [p for p in self.started if _comm(p.pid) == "mariadbd"]:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            self.started.remove(proc)
        self.path("/run/mysqld/mysqld.sock").unlink(missing_ok=True)

    def kill_sshd(self) -> None:
        """Kill every sshd of the host (listener and sessions), as a crash would."""
        for pid in self.pids():
            if _comm(pid) == "sshd":
                os.kill(pid, signal.SIGKILL)
        self.wait(lambda: not any(_comm(p) == "sshd" for p in self.pids()), "sshd to die")

    def start_sshd(self) -> None:
        """Start the host's sshd and wait for its port."""
        self.run(["/usr/sbin/sshd"])
        self.wait(lambda: self.port_open(22), "sshd")

    def port_open(self, port: int) -> bool:
        """Return True when a TCP connection to the host's address and `port` succeeds."""
        try:
            with socket.create_connection((self.address, port), timeout=0.5):
                return True
        except OSError:
            return False

    @staticmethod
    def wait(ready, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
        """Return once `ready()` is true; raise RuntimeError naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"test host: {what} did not come up within {timeout:.0f}s")

    def pids(self) -> list[int]:
        """Return the pids of every process whose root is this host's tree."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry}/root") == str(self.root):
                    found.append(int(entry))
            except OSError:
                continue
        return found

    def stop_processes(self) -> None:
        """Stop exactly the processes running inside this host's tree."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.pids():
                time.sleep(0.1)
        if self.pids():
            raise RuntimeError(f"test host {self.name}: processes {self.pids()} did not stop")

    def down(self) -> None:
        """Stop the host's processes, unmount, delete its namespace and its files."""
        if self.root.exists():
            self.stop_processes()
        for proc in self.started:
            proc.wait(timeout=10)  # stopped above with the rest of the tree's processes
        self.started.clear()
        mounted = _mounted_under(self.folder)
        for target in sorted(set(self.mounts) | set(mounted), key=len, reverse=True):
            if target in _mounted_under(self.folder):
                sh(["umount", target])
        self.mounts.clear()
        if self.netns in sh(["ip", "netns", "list"]).stdout.decode():
            sh(["ip", "netns", "delete", self.netns])
        sh(["ip", "link", "delete", f"sa{self.index}h"], check=False)
        if self.folder.exists():
            _remove_tree(self.folder)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _mounted_under(folder: Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        targets = [line.split()[1] for line in mounts]
    return [t for t in targets if t == str(folder) or t.startswith(str(folder) + "/")]
