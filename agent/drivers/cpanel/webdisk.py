"""An account's Web Disk logins on cPanel (review F9), locked by ftp_lock.

Web Disk (cpdavd, WebDAV on 2077/2078) lets file logins in by two files:
- `~/etc/webdav/shadow`, the account's Web Disk logins, one line each,
  `login@domain:crypthash:days::::::md5digest` (Cpanel/WebDisk.pm:115; the digest, for
  Digest authentication, is MD5 of `login:cPanel:password`, Cpanel/Auth/Digest/Realm.pm);
- `/etc/digestshadow`, `user:md5digest`, the account's own Digest login, which does not go
  through the system hash that panel_lock and ftp_lock lock (Cpanel/Auth/Digest/DB.pm).
suspendacct puts `*LOCKED*` before fields 1 and 8 of every Web Disk line and before the
account's digest entry, and unsuspendacct strips every leading `*LOCKED*` there
(scripts/suspendacct:153, 205-207, 396-440; scripts/unsuspendacct:250, 259-261, 455-475).
The agent puts a `!` there instead, after any `*LOCKED*`, so someone else's unsuspendacct
does not lift it, and takes off exactly that `!` again, recognised by a digest of the field
(the journal keeps no hash).

The shadow file is the customer's: it is read and written as the customer (`setpriv`, the
reduced privileges suspendacct also uses), never as root, so a link there to a file of
root's is neither read nor replaced. The write goes to a temporary file beside it and is
renamed over it only if the file is still exactly what was read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from agent.connector import Connector
from agent.errors import StepError, TransferError
from agent.steps.edit_lines import file_lines
from agent.steps.login_hash import digest

DIGEST_DB = "/etc/digestshadow"
SUSPENDED = "*LOCKED*"  # suspendacct's marker, kept in front of ours
# As the customer: install the new file only if it came complete and the file is still the
# one read ($5 its SHA-256; `-` when it was absent). Fixed text, arguments as argv.
_INSTALL = (
    't=; trap \'[ -z "$t" ] || rm -f -- "$t"\' EXIT; trap "exit 91" HUP INT TERM PIPE; '
    'set -e; d=$(dirname -- "$1"); t=$(mktemp -- "$d/.sa-tmp.XXXXXXXX"); '
    'cat > "$t"; n=$(wc -c < "$t"); h=$(sha256sum < "$t"); '
    'if [ "$((n))" != "$3" ] || [ "${h%% *}" != "$4" ]; then exit 90; fi; chmod "$2" "$t"; '
    'cur=$(sha256sum < "$1") || exit 93; [ "${cur%% *}" = "$5" ] || exit 93; '
    'mv -f -T -- "$t" "$1"; trap - EXIT'
)


def _split(value: str) -> tuple[str, str]:
    """Return (suspendacct's leading markers, the rest)."""
    head = ""
    while value.startswith(SUSPENDED):
        head, value = head + SUSPENDED, value[len(SUSPENDED):]
    return head, value


def is_locked(value: str) -> bool:
    """True when a hash or digest field cannot log in: empty, or behind `!` or `*`."""
    return not value or value.startswith(("!", "*"))


def lock_field(value: str, want: str) -> str:
    """`!` before the field (after any `*LOCKED*`) while it is open and digests to `want`."""
    head, rest = _split(value)
    return f"{head}!{rest}" if rest and not is_locked(rest) and digest(rest) == want else value


def unlock_field(value: str, want: str) -> str:
    """The field without our `!` (kept after any `*LOCKED*`) when what follows is `want`."""
    head, rest = _split(value)
    return head + rest[1:] if rest.startswith("!") and digest(rest[1:]) == want else value


def open_fields(data: bytes | None, fields: tuple[int, ...]) -> dict[str, dict[int, str]]:
    """Return login -> {field: digest} of the fields that can log in now."""
    found: dict[str, dict[int, str]] = {}
    for line in file_lines(data):
        parts = line.split(":")
        if not parts[0] or line.startswith("#"):
            continue
        for at in fields:
            if at < len(parts) and not is_locked(parts[at]):
                found.setdefault(parts[0], {})[at] = digest(parts[at])
    return found


def still_ours(data: bytes | None, name: str, fields: dict[str, str]) -> bool:
    """True when a named field of login `name` is still our `!` before the recorded value."""
    for line in file_lines(data):
        parts = line.split(":")
        if parts[0] != name:
            continue
        for at, want in fields.items():
            rest = _split(parts[int(at)])[1] if int(at) < len(parts) else ""
            if rest.startswith("!") and digest(rest[1:]) == want:
                return True
    return False


def edit(data: bytes, logins: dict[str, dict[str, str]], lock: bool) -> bytes:
    """Return `data` with the named logins' fields locked or unlocked, the rest as it is."""
    change = lock_field if lock else unlock_field
    lines = file_lines(data)
    for i, line in enumerate(lines):
        parts = line.split(":")
        for at, want in (logins.get(parts[0]) or {}).items():
            if int(at) < len(parts):
                parts[int(at)] = change(parts[int(at)], want)
        lines[i] = ":".join(parts)
    tail = "\n" if data.endswith(b"\n") else ""
    return ("\n".join(lines) + (tail if lines else "")).encode("utf-8", "surrogateescape")


def as_user(setpriv: str, uid: str, gid: str) -> list[str]:
    """The argv prefix that runs a command as the customer, without root's groups."""
    return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]


def read_as(conn: Connector, prefix: list[str], path: str) -> tuple[bytes | None, str]:
    """Return the file read as the customer (None when absent), and why it could not be
    read ("" when it could)."""
    result = conn.run([*prefix, "cat", "--", path], ok_codes=(0, 1))
    if result.rc == 0:
        return result.stdout, ""
    text = result.err.strip() or result.text.strip()
    return None, "" if "No such file" in text else (text[-200:] or "unreadable")


@dataclass(frozen=True)
class WebdiskEdit:
    """Lock or unlock named Web Disk logins in the customer's shadow file, as the customer."""

    path: str
    prefix: tuple[str, ...]
    logins: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    lock: bool

    def describe(self) -> list[str]:
        verb = "lock" if self.lock else "unlock"
        return [f"edit  {self.path} (as the customer): {verb} Web Disk login {name}"
                for name, _fields in self.logins]

    def carry_out(self, conn: Connector) -> None:
        """Edit the file as read now; give up after three tries if it keeps changing."""
        wanted = {name: dict(fields) for name, fields in self.logins}
        for _attempt in range(3):
            data, why = read_as(conn, list(self.prefix), self.path)
            if why:
                raise StepError(f"{self.path} could not be read as the customer: {why}")
            if data is None:
                return  # the customer deleted it: nothing left to lock or unlock
            mode = conn.run([*self.prefix, "stat", "-c", "%a", "--", self.path]).text.strip()
            new = edit(data, wanted, self.lock)
            if new == data:
                return
            result = conn.run([*self.prefix, "sh", "-c", _INSTALL, "sh", self.path, mode,
                               str(len(new)), hashlib.sha256(new).hexdigest(),
                               hashlib.sha256(data).hexdigest()],
                              stdin=new, ok_codes=(0, 90, 93))
            if result.rc == 0:
                return
            if result.rc == 90:
                raise TransferError(f"{self.path}: the new file did not arrive complete")
        raise StepError(f"{self.path} kept changing while it was edited; left as it is")


@dataclass(frozen=True)
class DigestEntry:
    """Lock or unlock the account's own Digest login in /etc/digestshadow (root's file)."""

    user: str
    want: str
    lock: bool
    path: str = DIGEST_DB

    def describe(self) -> list[str]:
        return [f"edit  {self.path}: {'lock' if self.lock else 'unlock'} the Web Disk Digest "
                f"login of {self.user}"]

    def carry_out(self, conn: Connector) -> None:
        """Edit the file as read now, in one atomic write with its mode and owner kept."""
        found = conn.read_many([self.path])[self.path]
        if not found.exists or found.data is None:
            return
        new = edit(found.data, {self.user: {"1": self.want}}, self.lock)
        if new != found.data:
            conn.write(self.path, new, found.mode, f"{found.uid}:{found.gid}")
