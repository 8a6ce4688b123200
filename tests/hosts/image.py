"""Build (once) and cache the Debian bookworm tree the test hosts are made from."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("SA_TESTHOST_CACHE", "/var/cache/suspension-agent-testhost"))
MIRROR = os.environ.get("SA_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# Everything the agent's steps meet on a real Debian hosting server (issue 2 uses sshd,
# Apache and MariaDB; the mail, FTP and firewall steps use the rest). Exim is the heavy
# daemon: only it has the dovecot authenticator (SMTP AUTH against Dovecot's passdb).
PACKAGES = (
    "openssh-server", "apache2", "mariadb-server", "mariadb-client", "openssl",
    "ca-certificates", "dovecot-imapd", "dovecot-pop3d", "exim4-daemon-heavy", "pure-ftpd",
    "nftables", "procps", "iproute2", "netbase", "sudo",
    # cPanel's EA4 "NGINX with reverse proxy" (ea-nginx) in front of Apache (review F5).
    "nginx",
    # The panel simulators (cPanel's whmapi1/uapi command lines and scripts) are Python.
    "python3",
)
# Commands run inside the fresh tree once, to turn it into a web host template.
_CONFIGURE = (
    ["a2enmod", "-q", "ssl", "rewrite", "headers"],
    ["a2dissite", "-q", "000-default"],
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
     "-subj", "/CN=suspension-agent test host", "-keyout", "/etc/ssl/private/testhost.key",
     "-out", "/etc/ssl/certs/testhost.pem"],
    # Password logins for the customers, said explicitly beside the agent's DenyUsers drop-ins.
    ["sh", "-c", "echo 'PasswordAuthentication yes' > /etc/ssh/sshd_config.d/10-testhost.conf"],
)
_VERSION = "5"  # bump to rebuild cached images when _CONFIGURE changes


def image_dir() -> Path:
    """Return the cache folder of the image matching the current package list."""
    key = hashlib.sha256("|".join((_VERSION, SUITE, MIRROR, *PACKAGES)).encode()).hexdigest()
    return CACHE / f"{SUITE}-{key[:12]}"


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def ensure_image() -> Path:
    """Ensure a complete image exists in the cache and return its root folder.

    Builds with debootstrap (about 70 s) when missing; an interrupted build is discarded,
    because only a finished build gets the `.complete` marker.
    """
    folder = image_dir()
    root = folder / "root"
    if (folder / ".complete").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    # Test workers start side by side (pytest -n): one builds, the others wait for it.
    with open(CACHE / ".build.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".complete").exists():
            _build(folder, root)
    return root


def _build(folder: Path, root: Path) -> None:
    """Build the image into `folder` (debootstrap and `_CONFIGURE`), marking it complete."""
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install -y debootstrap)")
    if folder.exists():
        _remove_tree(folder)
    folder.mkdir(parents=True)
    print(f"building test host image in {folder} (debootstrap, about a minute)...",
          file=sys.stderr, flush=True)
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
          str(root), MIRROR])
    for argv in _CONFIGURE:
        _run(["chroot", str(root), *argv])
    (folder / ".complete").write_text("ok\n")


def _remove_tree(path: Path) -> None:
    """Delete `path` without ever crossing into a mounted file system."""
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            target = line.split()[1]
            if target == str(path) or target.startswith(str(path) + "/"):
                raise RuntimeError(f"refusing to delete {path}: {target} is still mounted")
    _run(["rm", "-rf", "--one-file-system", str(path)])
