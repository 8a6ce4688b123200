"""Files, ids and password hashes inside a test host's tree, written from the CI side.

Owners are numeric ids read from the host's own /etc/passwd and /etc/group: the CI
machine's names for the same numbers differ (its uid 101 is not the host's Debian-exim).
"""

from __future__ import annotations

import os

from tests.hosts.testhost import TestHost


def _ids(host: TestHost, table: str, name: str) -> list[str]:
    for line in host.path(f"/etc/{table}").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    raise KeyError(f"no {table} entry {name} on test host {host.name}")


def user_ids(host: TestHost, user: str) -> tuple[int, int]:
    """Return (uid, gid) of a unix user of the host."""
    fields = _ids(host, "passwd", user)
    return int(fields[2]), int(fields[3])


def group_id(host: TestHost, group: str) -> int:
    """Return the gid of a group of the host."""
    return int(_ids(host, "group", group)[2])


def write(host: TestHost, path: str, text: str, mode: int = 0o644,
          owner: tuple[int, int] = (0, 0)) -> None:
    """Ensure the host file `path` holds exactly `text` with `mode` and numeric `owner`."""
    target = host.path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    os.chown(target, *owner)
    os.chmod(target, mode)


def make_dirs(host: TestHost, path: str, mode: int, owner: tuple[int, int]) -> None:
    """Ensure the host folder `path` and its missing parents exist with `mode` and `owner`."""
    target = host.path(path)
    missing = []
    while not target.exists():
        missing.append(target)
        target = target.parent
    for folder in reversed(missing):
        folder.mkdir()
        os.chown(folder, *owner)
        os.chmod(folder, mode)
    os.chown(host.path(path), *owner)
    os.chmod(host.path(path), mode)


def sha512_crypt(host: TestHost, passwords: list[str]) -> list[str]:
    """Return one `$6$...` hash per password, in order, made by the host's openssl.

    One process for all of them; the passwords travel on stdin, never in argv.
    """
    if not passwords:
        return []
    out = host.run(["openssl", "passwd", "-6", "-stdin"],
                   input="".join(p + "\n" for p in passwords).encode()).stdout.decode()
    hashes = out.split()
    if len(hashes) != len(passwords) or not all(h.startswith("$6$") for h in hashes):
        raise RuntimeError(f"openssl passwd gave unexpected output: {out!r}")
    return hashes
