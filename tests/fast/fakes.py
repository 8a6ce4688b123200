"""An in-memory server for the fast tier: files, accounts, every command recorded, failures
on cue.

FakeConnector subclasses the real Connector and implements only `_exec`, so `run`,
`run_batch`, `read_many`, `write` and `stat_many` are the real code: the fake answers the
connector's own helper scripts (read, write, stat, batch) the way a shell on the server
would, against a dict of files. Each logical command is recorded in `log` as an argv:
`["read", *paths]`, `["stat", *paths]`, `["write", path]`, or the argv itself (batched
commands one by one), and `fail` makes the n-th match of a predicate raise an exception
(Unreachable, CommandTimeout, a crash) or exit with a status.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from agent.connector import base, each
from agent.connector.base import Connector, Result
from agent.drivers.cpanel import safefile

Argv = list[str]
Match = Callable[[Argv], bool]
# Commands that only look: what a dry run may send.
READ_ONLY = ("read", "stat", "getent", "true", "grep", "sshd", "setpriv")


class Crash(BaseException):  # noqa: N818 - stands for a kill -9, not an error to handle
    """Stands for the agent being killed: no `except AgentError` catches it."""


@dataclass
class FakeFile:
    data: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass
class Failure:
    match: Match
    error: BaseException | type[BaseException] | int
    skip: int = 0
    times: int = 1
    stderr: str = "injected failure"


def is_(*words: str) -> Match:
    """Return a predicate matching an argv that starts with `words`."""
    return lambda argv: argv[:len(words)] == list(words)


class FakeConnector(Connector):
    """One fake server; thread-safe (reverts run side by side)."""

    def __init__(self, name: str = "web1", accounts: dict[str, str] | None = None) -> None:
        self.name = name
        self.accounts = accounts if accounts is not None else {"alice": "/home/alice",
                                                                "bob": "/home/bob"}
        self.uids: dict[str, int] = {}  # an account's uid when it is not 1000
        self.files: dict[str, FakeFile] = {}
        self.log: list[Argv] = []
        self.failures: list[Failure] = []
        self.closed = 0
        self._lock = threading.RLock()

    # -- test controls --------------------------------------------------------------------
    def fail(self, match: Match, error: BaseException | type[BaseException] | int = 1, *,
             skip: int = 0, times: int = 1, stderr: str = "injected failure") -> Failure:
        """Fail the (skip+1)-th command matching `match`, and the next `times`-1 ones
        (-1: every one from then on); an int `error` is that exit code with `stderr`."""
        failure = Failure(match, error, skip, times, stderr)
        self.failures.append(failure)
        return failure

    def heal(self) -> None:
        self.failures.clear()

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = FakeFile(data, mode)

    def snapshot(self) -> dict[str, tuple[bytes, int, int, int]]:
        with self._lock:
            return {p: (f.data, f.mode, f.uid, f.gid) for p, f in self.files.items()}

    def changing(self) -> list[Argv]:
        """Return every logged command that could have changed something."""
        # A write as the customer is `setpriv ... -- sh -c SCRIPT` (cPanel's Web Disk file).
        return [a for a in self.log if a[0].rsplit("/", 1)[-1] not in READ_ONLY
                or (a[0].endswith("setpriv") and "-c" in a)]

    def close(self) -> None:
        self.closed += 1

    # -- the transport --------------------------------------------------------------------
    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        with self._lock:
            if argv[0] == "flock" and safefile.SCRIPT in argv:  # cPanel's locked install
                args = argv[argv.index(safefile.SCRIPT) + 2:]
                return self._checked(["write", args[0]], lambda: self._swap(args, stdin))
            if argv[:2] == ["sh", "-c"] and len(argv) >= 4:
                script, args = argv[2], argv[4:]
                if script == base._READ_SCRIPT:
                    return self._checked(["read", *args], lambda: self._read(args))
                if script == base._STAT_SCRIPT:
                    return self._checked(["stat", *args], lambda: self._stat(args))
                if script == base._WRITE_SCRIPT:
                    return self._checked(["write", args[0]], lambda: self._write(args, stdin))
                if script == base._WRITE_MANY_SCRIPT:
                    paths = args[2::4]
                    return self._checked(["write", *paths],
                                         lambda: self._write_many(args, stdin))
                if script == base._BATCH_SCRIPT:
                    return self._batch(args)
                if script == each.EACH_SCRIPT:
                    return self._each(args)
            return self._checked(list(argv), lambda: self._command(list(argv), stdin))

    def _checked(self, logical: Argv, body: Callable[[], Result]) -> Result:
        self.log.append(logical)
        fire: Failure | None = None
        for failure in self.failures:  # each failure counts every command it matches
            if failure.times == 0 or not failure.match(logical):
                continue
            if failure.skip:
                failure.skip -= 1
            elif fire is None:
                failure.times -= 1
                fire = failure
        if fire is not None:
            if isinstance(fire.error, int):
                return Result(fire.error, b"", fire.stderr.encode())
            raise fire.error
        return body()

    def _read(self, paths: list[str]) -> Result:
        # The reply of agent/connector/many.py's read script: one letter a path, the facts
        # of each file, their sizes, their digests, then their contents.
        found = [(path, self.files.get(path)) for path in paths]
        files = [(path, f) for path, f in found if f is not None]
        out = "".join("a" if f is None else "f" for _p, f in found).encode() + b"\n"
        out += b"".join(f"regular file|{f.mode:o}|{f.uid}|{f.gid}\n".encode()
                        for _p, f in files)
        out += b"".join(f"{len(f.data)}\n".encode() for _p, f in files)
        out += b"".join(f"{hashlib.sha256(f.data).hexdigest()}  {p}\n".encode()
                        for p, f in files)
        out += b"".join(f.data for _p, f in files)
        return Result(0, out, b"")

    def _stat(self, paths: list[str]) -> Result:
        lines = []
        for path in paths:
            f = self.files.get(path)
            lines.append(f"absent|||||{path}" if f is None else
                         f"regular file|{f.mode:o}|{f.uid}|{f.gid}|{len(f.data)}|{path}")
        return Result(0, ("\n".join(lines) + "\n").encode(), b"")

    def _write(self, args: list[str], stdin: bytes | None) -> Result:
        path, mode, owner, size, digest = args
        data = stdin or b""
        if len(data) != int(size) or hashlib.sha256(data).hexdigest() != digest:
            return Result(base.WRITE_MISMATCH, b"", b"received other bytes")
        uid, _, gid = owner.partition(":")
        self.files[path] = FakeFile(data, int(mode, 8), int(uid), int(gid))
        return Result(0, b"", b"")

    def _swap(self, args: list[str], stdin: bytes | None) -> Result:
        # agent/drivers/cpanel/safefile.py: installed only while the file is still $6.
        current = self.files.get(args[0])
        if current is None or hashlib.sha256(current.data).hexdigest() != args[5]:
            return Result(safefile.CHANGED, b"", b"")
        return self._write(args[:5], stdin)

    def _write_many(self, args: list[str], stdin: bytes | None) -> Result:
        data, pos, out = stdin or b"", 0, b""
        if hashlib.sha256(data).hexdigest() != args[1]:
            return Result(base.WRITE_MISMATCH, b"", b"received other bytes")
        for i in range(2, len(args), 4):
            path, mode, owner, size = args[i:i + 4]
            uid, _, gid = owner.partition(":")
            self.files[path] = FakeFile(data[pos:pos + int(size)], int(mode, 8), int(uid),
                                        int(gid))
            pos += int(size)
            out += f"{(i - 2) // 4}\n".encode()
        return Result(0, out, b"")

    def _batch(self, operands: list[str]) -> Result:
        index = 0
        while operands:
            ok, n = operands[0], int(operands[1])
            argv, operands = operands[2:2 + n], operands[2 + n:]
            rc = self._checked(argv, lambda a=argv: self._command(a, None)).rc
            if str(rc) not in ok.split(","):
                return Result(base.BATCH_FAILED, b"", f"SA-BATCH-FAILED {index} {rc}\n".encode())
            index += 1
        return Result(0, b"", b"")

    def _each(self, operands: list[str]) -> Result:
        results = []
        while operands:
            n = int(operands[0])
            argv, operands = operands[1:1 + n], operands[1 + n:]
            results.append(self._checked(argv, lambda a=argv: self._command(a, None)))
        head = "".join(f"{r.rc} " for r in results) + "\n"
        sizes = "".join(f"{len(r.stdout)}\n{len(r.stderr)}\n" for r in results)
        body = b"".join(r.stdout + r.stderr for r in results)
        return Result(0, (head + sizes).encode() + body, b"")

    def _command(self, argv: Argv, stdin: bytes | None) -> Result:
        if argv[0].endswith("getent") and argv[1:2] == ["passwd"]:
            # No name: the whole database, as `getent passwd` lists it.
            names = argv[3:] if argv[2:3] == ["--"] else argv[2:3] or list(self.accounts)
            found = [n for n in names if n in self.accounts]
            out = "".join(f"{n}:x:{self.uids.get(n, 1000)}:1000::{self.accounts[n]}:/bin/bash\n"
                          for n in found)
            return Result(0 if len(found) == len(names) else 2, out.encode(), b"")
        if argv[0] == "grep" and argv[1] == "-rlE" and argv[3] == "--":
            # The files under a folder holding a line that matches (check's Force HTTPS).
            import re

            under = argv[4].rstrip("/") + "/"
            hits = [p for p, f in sorted(self.files.items()) if p.startswith(under) and any(
                re.search(argv[2], line) for line in f.data.decode("utf-8", "replace")
                .splitlines())]
            return Result(0 if hits else 1, "".join(h + "\n" for h in hits).encode(), b"")
        if argv[0] == "tar" and argv[1] == "--create":
            self.files[argv[2].removeprefix("--file=")] = FakeFile(f"tar of {argv[3]}".encode())
        if argv[0] == "mv" and argv[2:3] == ["--"] and argv[3] in self.files:
            self.files[argv[4]] = self.files.pop(argv[3])
        if argv[:2] in (["rm", "-f"], ["rm", "-rf"]):
            for path in argv[3:]:
                for known in [p for p in self.files if p == path or p.startswith(path + "/")]:
                    del self.files[known]
        return Result(0, b"", b"")
