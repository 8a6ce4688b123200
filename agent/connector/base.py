"""The connector interface: run an argv, read, write (atomically) and stat files."""

from __future__ import annotations

import hashlib
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass

import structlog

from agent import failpoints
from agent.connector.many import (
    READ_FAILED,
    WRITE_MISMATCH,
    WRITE_STOPPED,
    FileData,
    installed,
    read_command,
    write_operands,
)
from agent.connector.many import READ_SCRIPT as _READ_SCRIPT  # noqa: F401 - the fast tier's fake
from agent.connector.many import WRITE_SCRIPT as _WRITE_MANY_SCRIPT
from agent.connector.many import parse_reads as _parse_reads
from agent.errors import BatchFailed, CommandFailed, StepError, TransferError

log = structlog.get_logger("agent.connector")

# Constant helper scripts run as `sh -c SCRIPT sh ARG...`: the arguments travel as argv
# entries, never spliced into the script, so no input can change what the shell parses.
# Write: the server installs the file only when it received exactly the announced size and
# SHA-256 (a connection dropped half-way ends `cat` like a normal end of input). The temporary
# file goes on every exit, also when the lost link's closed pipes raise SIGPIPE or SIGHUP
# (a signal would otherwise end the shell without running its EXIT trap). chown before chmod:
# a chown clears set-user/group-ID bits. `mv -T`: a target that is a folder is refused, never
# entered.
_WRITE_SCRIPT = (
    't=; trap \'[ -z "$t" ] || rm -f -- "$t"\' EXIT; trap "exit 91" HUP INT TERM PIPE; '
    'set -e; d=$(dirname -- "$1"); t=$(mktemp -- "$d/.sa-tmp.XXXXXXXX"); '
    'cat > "$t"; n=$(wc -c < "$t"); h=$(sha256sum < "$t"); '
    'if [ "$((n))" != "$4" ] || [ "${h%% *}" != "$5" ]; then '
    'echo "received $((n)) bytes, expected $4 (or a different SHA-256)" >&2; exit 90; fi; '
    'chown "$3" "$t"; chmod "$2" "$t"; mv -f -T -- "$t" "$1"; trap - EXIT'
)
# Read and write of many files in one command (_READ_SCRIPT, _WRITE_MANY_SCRIPT; status
# WRITE_MISMATCH for both writes): agent/connector/many.py. The fast tier's fake server
# (tests/fast/fakes.py) answers the helper scripts by their names here.
_STAT_SCRIPT = (
    'for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then '
    'stat -c "%F|%a|%u|%g|%s|%n" -- "$p"; else printf "absent|||||%s\\n" "$p"; fi; done'
)
_READ_ATTEMPTS = 3
# Batch: several argv lists in one round trip. Operands are groups `OK_CODES N ARG1..ARGN`;
# each command is run as "${1}" "${2}" ... (eval only ever sees those references, built from
# numbers, never an argument's text). The first command whose status is not in its OK_CODES
# stops the batch with a marker naming its index and status.
_BATCH_SCRIPT = (
    'i=0; while [ "$#" -gt 0 ]; do ok=$1; n=$2; shift 2; c=; k=1; '
    'while [ "$k" -le "$n" ]; do c="$c \\"\\${$k}\\""; k=$((k+1)); done; '
    'eval "$c" </dev/null; rc=$?; '
    'case ",$ok," in *",$rc,"*) ;; *) echo "SA-BATCH-FAILED $i $rc" >&2; exit 97;; esac; '
    'shift "$n"; i=$((i+1)); done'
)
BATCH_FAILED = 97


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


# Commands a batch runs side by side on a server the agent runs on (no sshd to ask).
LOCAL_CHANNELS = 8


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

    def channels(self, sshd: str = "/usr/sbin/sshd") -> int:
        """Return how many commands may run side by side on this connector (a local
        server: as many as the batch engine uses at most)."""
        return LOCAL_CHANNELS

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 300.0,
        ok_codes: tuple[int, ...] = (0,),
    ) -> Result:
        """Run `argv`; ensure its exit status is in `ok_codes` or raise CommandFailed."""
        result = self._run_any(argv, stdin, timeout)
        if result.rc not in ok_codes:
            raise CommandFailed(quote(argv), result.rc, result.err)
        return result

    def _run_any(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        """Run `argv` as one command (logged, one "command" failpoint) whatever its status."""
        if not argv or not all(isinstance(a, str) for a in argv):
            raise TypeError("argv must be a non-empty list of str")
        log.debug("command", server=self.name, argv=quote(argv))
        result = self._exec(argv, stdin, timeout)
        failpoints.hit("command")
        return result

    def run_batch(self, commands: list[tuple[list[str], tuple[int, ...]]],
                  timeout: float = 300.0) -> None:
        """Run several argv lists in order in one round trip; stop at the first failure.

        Raises BatchFailed naming the failing command and how many finished before it.
        """
        if len(commands) == 1:
            argv, ok = commands[0]
            try:
                self.run(argv, ok_codes=ok, timeout=timeout)
            except CommandFailed as exc:
                raise BatchFailed(exc.argv_display, exc.rc, exc.stderr, 0) from exc
            return
        operands: list[str] = []
        for argv, ok in commands:
            if not argv or not all(isinstance(a, str) for a in argv):
                raise TypeError("argv must be a non-empty list of str")
            operands += [",".join(str(c) for c in ok), str(len(argv)), *argv]
        result = self.run(["sh", "-c", _BATCH_SCRIPT, "sh", *operands], timeout=timeout,
                          ok_codes=(0, BATCH_FAILED))
        if result.rc == 0:
            return
        marker = [line for line in result.err.splitlines() if line.startswith("SA-BATCH-FAILED")]
        if not marker:
            raise CommandFailed("sh -c <batch>", result.rc, result.err)
        index, rc = (int(x) for x in marker[-1].split()[1:3])
        detail = result.err.replace(marker[-1], "").strip()
        raise BatchFailed(quote(commands[index][0]), rc, detail, index)

    def read(self, path: str) -> bytes | None:
        """Return the whole content of `path`, verified; None when it does not exist."""
        found = self.read_many([path])[path]
        if not found.exists:
            return None
        if found.data is None:
            raise StepError(f"{self.name}:{path} is a {found.kind}, not a regular file")
        return found.data

    def read_many(self, paths: list[str]) -> dict[str, FileData]:
        """Return facts and verified content of every path in one round trip.

        Each file's size and SHA-256 are taken on the server in the same command; bytes that
        do not match them are never returned. A file changing meanwhile (or vanishing, or
        changing kind) is read again, up to _READ_ATTEMPTS times in all; then TransferError,
        or CommandFailed if a tool kept failing (an unreadable file). The server starts four
        processes whatever the number of paths (agent/connector/many.py).
        """
        if not paths:
            return {}
        argv = read_command(paths)
        for attempt in range(1, _READ_ATTEMPTS + 1):
            result = self.run(argv, ok_codes=(0, READ_FAILED))
            try:
                return _reads(paths, result)
            except (TransferError, CommandFailed) as exc:
                if attempt == _READ_ATTEMPTS:
                    raise
                log.debug("read again", server=self.name, why=str(exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def write(self, path: str, data: bytes, mode: int = 0o644, owner: str = "0:0") -> None:
        """Ensure `path` holds exactly `data` with `mode` and `owner`, replaced atomically.

        The server installs the file only after checking it received every byte.
        """
        self._install(path, data, mode, owner, len(data), hashlib.sha256(data).hexdigest())

    def _install(self, path: str, data: bytes, mode: int, owner: str, size: int,
                 digest: str) -> None:
        result = self.run(["sh", "-c", _WRITE_SCRIPT, "sh", path, format(mode, "o"), owner,
                           str(size), digest], stdin=data, ok_codes=(0, WRITE_MISMATCH))
        if result.rc == WRITE_MISMATCH:
            raise TransferError(f"{self.name}:{path}: {result.err.strip()}; nothing was "
                                "installed")

    def write_many(self, files: list[tuple[str, bytes, int, str]]) -> None:
        """Ensure each (path, data, mode, owner) holds exactly `data` with `mode` and `owner`,
        every file replaced atomically, all in one command.

        Each file is received beside its path and checked there; only once every file arrived
        whole are modes and owners set and the files renamed into place, in order. So a
        mismatch (TransferError) or a failure before the renames (CommandFailed: a missing
        folder, a path that is a folder, an unknown owner) leaves every path as it was; a
        rename that fails raises BatchFailed, and then files[:finished] are in place and the
        rest untouched. No temporary file is left behind. ValueError for a path that is not a
        file path, a mode out of range, an owner that is not user:group.
        """
        operands, stdin = write_operands(files)
        if len(files) == 1:
            self.write(*files[0])
        elif files:
            result = self._run_any(["sh", "-c", _WRITE_MANY_SCRIPT, "sh", *operands], stdin,
                                   300.0)
            if result.rc != 0 and installed(result.stdout) < len(files):
                raise _write_failure(self.name, [f[0] for f in files], result)

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


def _shown(what: str, paths: list[str]) -> str:
    """Return how a many-file command is named in errors (its script is not worth showing)."""
    more = f" ... ({len(paths)} paths)" if len(paths) > 3 else ""
    return f"sh -c <{what}> sh {quote(paths[:3])}{more}"


def _reads(paths: list[str], result: Result) -> dict[str, FileData]:
    """Return what the read script found; CommandFailed when one of its tools failed."""
    if result.rc == READ_FAILED:
        raise CommandFailed(_shown("read_many", paths), result.rc, result.err)
    return _parse_reads(paths, result.stdout)


def _write_failure(server: str, paths: list[str], result: Result) -> StepError | CommandFailed:
    """Return the error for a write-many script that did not install every file: which
    files are in place follows from its kind (see Connector.write_many)."""
    shown, done = _shown("write_many", paths), installed(result.stdout)
    if result.rc == WRITE_MISMATCH:
        return TransferError(f"{server}: {shown}: {result.err.strip()}; nothing was installed")
    if result.rc == WRITE_STOPPED or done:
        # The renames stopped at paths[done]; those before it are in place.
        return BatchFailed(f"mv -f -T -- <temporary file> {quote([paths[done]])}", result.rc,
                           f"{result.err.strip()}\ninstalled before it: {done} of "
                           f"{len(paths)} files", done)
    return CommandFailed(shown, result.rc, f"{result.err.strip()}\nnothing was installed")
