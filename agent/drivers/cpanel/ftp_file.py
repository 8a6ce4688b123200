"""An account's FTP password file on cPanel (`/etc/proftpd/USER`), as ftpupdate keeps it.

Lines are `login:hash:uid:gid:gecos:homedir:shell`. cPanel's `ftpupdate` rebuilds the file
whenever the account or the file changed (cpanel-review.md F1; bin/ftpupdate, processuser):
the main and `USER_logs` lines are written again from the system password entry, and a
sub-account line keeps its name, hash, home and shell but gets `@maindomain` when it had no
domain and the account's uid, gid and gecos. A single `!` before a sub-account's hash
survives, so that is the lock; the main login cannot be locked in this file at all.

`FtpHashes` changes only hash fields of named logins, recomputed on the file as it is when
carried out (so a line ftpupdate rewrote meanwhile is found by its login, and every other
line is left as it is), and keeps no hash: what is ours is recognised by a digest.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.connector import Connector
from agent.drivers.cpanel import safefile
from agent.errors import StepError
from agent.steps.edit_lines import file_lines
from agent.steps.login_hash import digest

LOCKED = ("!", "*")


def login_key(name: str, main_domain: str) -> str:
    """Return the login as ftpupdate and `Ftp::list_ftp` name it: `name@domain`."""
    return name if "@" in name else f"{name}@{main_domain}"


def hashes(data: bytes | None, main_domain: str) -> dict[str, str]:
    """Return login -> hash of the sub-account lines (names as `login_key` gives them)."""
    found = {}
    for line in file_lines(data):
        fields = line.split(":")
        if len(fields) >= 2 and fields[0] and not line.startswith("#"):
            found.setdefault(login_key(fields[0], main_domain), fields[1])
    return found


@dataclass(frozen=True)
class FtpHashes:
    """Lock (`!` before the hash) or unlock named logins' hashes in one FTP password file.

    `logins` maps a login (as `login_key` names it) to the digest of its hash unlocked.
    Locking prefixes `!` to a login whose hash is still that one; unlocking strips the `!`
    from a login whose hash is `!` and that one. Anything else (already so, changed by
    someone meanwhile, gone) is left as it is, so carrying it out twice changes nothing and
    a password changed meanwhile is never replaced.
    """

    path: str
    main_domain: str
    logins: tuple[tuple[str, str], ...]
    lock: bool
    summary: tuple[str, ...]
    wait: float = 60.0  # seconds to wait for cPanel's lock of the file (cpanel.safefile_wait)

    def describe(self) -> list[str]:
        return [f"edit  {self.path}: {line}" for line in self.summary]

    def carry_out(self, conn: Connector) -> None:
        """Edit the file as read now, in one atomic write under cPanel's own locks
        (safefile.py) with its mode and owner kept; read again if it changed meanwhile."""
        for _attempt in range(3):
            found = conn.read_many([self.path])[self.path]
            if not found.exists or found.data is None:
                raise StepError(f"{self.path} does not exist on {conn.name} as a regular file")
            data = self._edited(found.data)
            if data == found.data or safefile.install(
                    conn, self.path, data, found.data, found.mode, f"{found.uid}:{found.gid}",
                    self.wait):
                return
        raise StepError(f"{self.path} kept changing while it was edited; left as it is")

    def _edited(self, data: bytes) -> bytes:
        wanted = dict(self.logins)
        lines = file_lines(data)
        for at, line in enumerate(lines):
            fields = line.split(":")
            if len(fields) < 2 or line.startswith("#"):
                continue
            key = login_key(fields[0], self.main_domain)
            if key not in wanted:
                continue
            hashed = fields[1]
            if self.lock and not hashed.startswith(LOCKED) and digest(hashed) == wanted[key]:
                fields[1] = "!" + hashed
            elif (not self.lock and hashed.startswith("!")
                  and digest(hashed[1:]) == wanted[key]):
                fields[1] = hashed[1:]
            lines[at] = ":".join(fields)
        tail = "\n" if data.endswith(b"\n") else ""
        return ("\n".join(lines) + (tail if lines else "")).encode("utf-8", "surrogateescape")
