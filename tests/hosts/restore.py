"""Put a test host back as it was after provisioning, whatever a failed test left behind.

The baseline holds every file the agent may touch (content, mode, owner) and the lock flag of
every database user. Restoring writes back what differs, removes what was added, and makes
the services take it (graceful Apache, sshd HUP, a fresh PureDB file, ACCOUNT (UN)LOCK).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.hosts.testhost import TestHost

# Folders and files the agent's steps read or write on the linux driver.
FOLDERS = ("/etc/apache2", "/var/lib/suspension-agent", "/var/lib/suspension-agent-cases",
           "/home/alice", "/home/bob",
           "/etc/vmail", "/etc/exim4/suspension-agent", "/etc/pure-ftpd",
           "/etc/ssh/sshd_config.d")
FILES = ("/etc/passwd", "/etc/shadow", "/etc/passwd-", "/etc/shadow-", "/etc/group",
         "/etc/gshadow", "/etc/ftpusers", "/etc/userdomains")
_LOCKS_SQL = ("SELECT User, Host, IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') "
              "FROM mysql.global_priv WHERE User <> '' ORDER BY User, Host;")


@dataclass(frozen=True)
class Entry:
    """One path: a regular file's bytes, a folder, or a symlink's target."""

    kind: str
    data: bytes
    mode: int
    uid: int
    gid: int


def _entries(host: TestHost) -> dict[str, Entry]:
    found: dict[str, Entry] = {}

    def add(path: Path) -> None:
        st = path.lstat()
        inside = "/" + str(path.relative_to(host.root))
        if path.is_symlink():
            found[inside] = Entry("link", os.readlink(path).encode(), 0, st.st_uid, st.st_gid)
        elif path.is_dir():
            found[inside] = Entry("dir", b"", st.st_mode & 0o7777, st.st_uid, st.st_gid)
        elif path.is_file():
            found[inside] = Entry("file", path.read_bytes(), st.st_mode & 0o7777, st.st_uid,
                                  st.st_gid)

    for folder in FOLDERS:
        base = host.path(folder)
        if not base.exists():
            continue
        add(base)
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                # Mail stores change on every login (indexes): not the agent's to restore.
                if "/mail/" not in str(p):
                    add(p)
    for file in FILES:
        if host.path(file).exists():
            add(host.path(file))
    return found


def _db_locks(host: TestHost) -> dict[tuple[str, str], str]:
    out = host.run(["mysql", "-N", "-B"], input=_LOCKS_SQL.encode()).stdout.decode()
    rows = [line.split("\t") for line in out.splitlines() if line]
    return {(r[0], r[1]): r[2] for r in rows}


@dataclass
class Baseline:
    """The host as provisioned; `restore` puts it back and says what it had to change."""

    files: dict[str, Entry]
    db_locks: dict[tuple[str, str], str]

    @classmethod
    def take(cls, host: TestHost) -> Baseline:
        return cls(_entries(host), _db_locks(host))

    def restore(self, host: TestHost) -> list[str]:
        """Ensure files and database locks equal the baseline; return what was put back."""
        changed = []
        now = _entries(host)
        for path in sorted(set(now) - set(self.files), key=len, reverse=True):
            target = host.path(path)
            if now[path].kind != "dir":
                target.unlink()
            elif not any(target.iterdir()):
                target.rmdir()
            changed.append(f"removed {path}")
        for path, want in sorted(self.files.items()):
            if now.get(path) == want:
                continue
            target = host.path(path)
            if want.kind == "dir":
                target.mkdir(parents=True, exist_ok=True)
            elif want.kind == "link":
                target.unlink(missing_ok=True)
                os.symlink(want.data.decode(), target)
            else:
                target.write_bytes(want.data)
            if want.kind != "link":
                os.chown(target, want.uid, want.gid)
                os.chmod(target, want.mode)
            changed.append(f"restored {path}")
        sql = []
        for (user, hostname), locked in _db_locks(host).items():
            want = self.db_locks.get((user, hostname))
            if want is not None and want != locked:
                how = "LOCK" if want == "true" else "UNLOCK"
                sql.append(f"ALTER USER '{user}'@'{hostname}' ACCOUNT {how};\n")
                changed.append(f"database user {user}: ACCOUNT {how}")
        if sql:
            host.run(["mysql"], input="".join(sql).encode())
        if changed:
            _reload(host)
        return changed


def _reload(host: TestHost) -> None:
    """Make Apache, sshd and Pure-FTPd take the restored files."""
    host.run(["/usr/sbin/apache2ctl", "graceful"], check=False)
    host.run(["pure-pw", "mkdb", "/etc/pure-ftpd/pureftpd.pdb", "-f",
              "/etc/pure-ftpd/pureftpd.passwd"], check=False)
    try:
        pid = int(host.path("/run/sshd.pid").read_text().strip())
    except (OSError, ValueError):
        return
    if pid in host.pids():  # only a process of this host's tree
        # The agent's own reload (locked, waits for sshd to settle and to restart): a bare
        # SIGHUP here could land while an agent's reload has sshd re-executing, and kill it.
        from agent.drivers.linux.panel_lock import _HUP_SSHD

        host.run(["sh", "-c", _HUP_SSHD, "sh", "/run/sshd.pid"], check=False)
