"""The connector interface: run an argv, read, write (atomically) and stat files."""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass

import structlog

from agent.errors import CommandFailed

log = structlog.get_logger("agent.connector")

# Constant helper scripts run as `sh -c SCRIPT sh ARG...`: the arguments travel as argv
# entries, never spliced into the script, so no input can change what the shell parses.
_WRITE_SCRIPT = (
    'set -e; d=$(dirname -- "$1"); t=$(mktemp -- "$d/.sa-tmp.XXXXXXXX"); '
    'trap \'rm -f -- "$t"\' EXIT; cat > "$t"; chmod "$2" "$t"; chown "$3" "$t"; '
    'mv -f -- "$t" "$1"; trap - EXIT'
)
_STAT_SCRIPT = (
    'for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then '
    'stat -c "%F|%a|%u|%g|%s|%n" -- "$p"; else printf "absent|||||%s\\n" "$p"; fi; done'
)


def quote(argv: list[str]) -> str:
    """Return the one shell-safe rendering of `argv` (used for SSH exec and for display)."""
    return shlex.join(argv)


@dataclass(frozen=True)
class Result:
    """What a finished command returned."""

    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


@dataclass(frozen=True)
class Stat:
    """File facts; `kind` is 'absent' when the path does not exist."""

    path: str
    kind: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0

    @property
    def exists(self) -> bool:
        return self.kind != "absent"


class Connector(ABC):
    """Run commands and move file contents on one server.

    Subclasses implement `_exec`; everything else is built on it so that local and SSH
    transports behave the same way.
    """

    name: str

    @abstractmethod
    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        """Run `argv` (no shell) and return its result; raise Unreachable on transport loss."""

    def close(self) -> None:  # noqa: B027 - optional hook; local has nothing to release
        """Release the transport (no-op for local)."""

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 300.0,
        ok_codes: tuple[int, ...] = (0,),
    ) -> Result:
        """Run `argv`; ensure its exit status is in `ok_codes` or raise CommandFailed."""
        if not argv or not all(isinstance(a, str) for a in argv):
            raise TypeError("argv must be a non-empty list of str")
        shown = quote(argv)
        log.debug("command", server=self.name, argv=shown)
        result = self._exec(argv, stdin, timeout)
        if result.rc not in ok_codes:
            raise CommandFailed(shown, result.rc, result.err)
        return result

    def read(self, path: str) -> bytes | None:
        """Return the bytes of `path`, or None when it does not exist."""
        result = self.run(
            ["sh", "-c", 'if [ -e "$1" ]; then cat -- "$1"; else exit 3; fi', "sh", path],
            ok_codes=(0, 3),
        )
        return None if result.rc == 3 else result.stdout

    def write(self, path: str, data: bytes, mode: int = 0o644, owner: str = "0:0") -> None:
        """Ensure `path` holds exactly `data` with `mode` and `owner`, replaced atomically."""
        self.run(["sh", "-c", _WRITE_SCRIPT, "sh", path, format(mode, "o"), owner], stdin=data)

    def stat_many(self, paths: list[str]) -> dict[str, Stat]:
        """Return facts for every path in one round trip."""
        if not paths:
            return {}
        out: dict[str, Stat] = {}
        text = self.run(["sh", "-c", _STAT_SCRIPT, "sh", *paths]).text
        for line in text.splitlines():
            kind, mode, uid, gid, size, path = line.split("|", 5)
            if kind == "absent":
                out[path] = Stat(path, "absent")
            else:
                out[path] = Stat(path, kind, int(mode, 8), int(uid), int(gid), int(size))
        return out

    def stat(self, path: str) -> Stat:
        """Return facts about one path."""
        return self.stat_many([path])[path]
