"""The accounts' own logins on a test host: unix passwords and an SSH key.

sshd already allows passwords (the image's sshd_config.d/10-testhost.conf); the agent adds
`sshd_config.d/suspension-agent-<account>.conf` files and reloads sshd with SIGHUP to the pid
in /run/sshd.pid.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.hosts import hostfs
from tests.hosts.testhost import TestHost


def set_passwords(host: TestHost, passwords: dict[str, str]) -> None:
    """Ensure each account's unix password is the given one (chpasswd, via stdin)."""
    host.run(["chpasswd"], input="".join(f"{a}:{p}\n" for a, p in passwords.items()).encode())


def key_path(host: TestHost, account: str) -> Path:
    """Return where the CI side keeps the account's SSH private key (outside the host tree)."""
    return host.folder / "keys" / f"{account}_ed25519"


def new_key(private: Path) -> str:
    """Write a fresh ed25519 private key to `private` (mode 0600); return its public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))
    os.chmod(private, 0o600)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def install_key(host: TestHost, account: str) -> Path:
    """Ensure the account has a fresh SSH key in its authorized_keys; return the private key."""
    private = key_path(host, account)
    public = new_key(private)
    owner = hostfs.user_ids(host, account)
    hostfs.make_dirs(host, f"/home/{account}/.ssh", 0o700, owner)
    hostfs.write(host, f"/home/{account}/.ssh/authorized_keys",
                 f"{public} {account}@suspension-agent-tests\n", mode=0o600, owner=owner)
    return private


def check_sshd_layout(host: TestHost) -> None:
    """Fail early when sshd would not read the agent's drop-ins or write its pid file."""
    config = host.path("/etc/ssh/sshd_config").read_text().splitlines()
    if "Include /etc/ssh/sshd_config.d/*.conf" not in config:
        raise RuntimeError("the host's sshd_config does not include sshd_config.d/*.conf")
    if not host.path("/run/sshd.pid").exists():
        raise RuntimeError("sshd wrote no /run/sshd.pid")
