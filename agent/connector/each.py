"""Several read-only commands in one round trip, run side by side on the server, each with
its own status and output; and a connector that answers from such a read.

A step that must read many facts before it may decide (a reseller's summary, suspension
list, passwd and shadow entries, mailboxes, database users) pays one round trip for each
when it reads them one by one: on a 50 ms link with the panel's own CLI that is most of a
reseller login lock (bench/reseller_cpanel.py). `run_each` sends them at once;
`Held` lets the step's own code read them as before, from what that one trip brought back.
"""

from __future__ import annotations

import re
from typing import Any

from agent.connector.base import Connector, Result
from agent.errors import AgentError, TransferError

# Operands: groups `N ARG1..ARGN`. Each command runs in the background with stdin from
# /dev/null and its stdout, stderr and status in files of a private temporary folder
# (mktemp -d: 0700), so that no command can see or change another's. Once all are done:
# one line with the statuses, then a line per stdout and per stderr with its size (one
# `stat`), then every stdout and stderr in that order (one `cat`). `eval` sees only
# references built from numbers ("${3}"), never an argument's text. The folder goes on
# every exit.
EACH_SCRIPT = (
    'd=$(mktemp -d) || exit 1; trap \'rm -rf -- "$d"\' EXIT; trap "exit 91" HUP INT TERM PIPE; '
    'i=0; while [ "$#" -gt 0 ]; do n=$1; shift; c=; k=1; '
    'while [ "$k" -le "$n" ]; do c="$c \\"\\${$k}\\""; k=$((k+1)); done; '
    '( eval "$c" </dev/null >"$d/$i.o" 2>"$d/$i.e"; echo "$?" >"$d/$i.r" ) & '
    'shift "$n"; i=$((i+1)); done; wait; '
    'j=0; s=; while [ "$j" -lt "$i" ]; do read -r r < "$d/$j.r" || r=255; s="$s$r "; '
    'set -- "$@" "$d/$j.o" "$d/$j.e"; j=$((j+1)); done; printf "%s\\n" "$s"; '
    'stat -c %s -- "$@" && cat -- "$@"'
)

_NUMBERS = re.compile(rb"(?:\d+ )*")


def operands(commands: list[list[str]]) -> list[str]:
    """Return the script's operands for `commands` (each a non-empty list of str)."""
    out: list[str] = []
    for argv in commands:
        if not argv or not all(isinstance(a, str) for a in argv):
            raise TypeError("argv must be a non-empty list of str")
        out += [str(len(argv)), *argv]
    return out


def parse(count: int, reply: bytes) -> list[tuple[int, bytes, bytes]]:
    """Return (status, stdout, stderr) of each of `count` commands from the script's reply;
    TransferError for a reply that is cut or does not add up."""
    lines = reply.split(b"\n", 1 + 2 * count)
    if len(lines) != 2 + 2 * count or not _NUMBERS.fullmatch(lines[0]) or not all(
            x.isdigit() for x in lines[1:-1]):
        raise TransferError("run_each: the reply does not start with the statuses and sizes "
                            f"of {count} commands")
    codes = [int(x) for x in lines[0].split()]
    lengths = [int(x) for x in lines[1:-1]]
    body = lines[-1]
    if len(codes) != count or sum(lengths) != len(body):
        raise TransferError(f"run_each: the reply holds {len(body)} bytes for {len(codes)} "
                            f"statuses and sizes adding up to {sum(lengths)}; expected "
                            f"{count} commands")
    out, at = [], 0
    for i, code in enumerate(codes):
        o, e = lengths[2 * i], lengths[2 * i + 1]
        out.append((code, body[at:at + o], body[at + o:at + o + e]))
        at += o + e
    return out


def run_each(conn: Connector, commands: list[list[str]], timeout: float = 300.0
             ) -> list[Result]:
    """Run `commands` side by side on the server in one round trip; return each one's
    Result (its status is not judged here). CommandFailed when the script itself failed,
    TransferError when its reply does not add up."""
    if not commands:
        return []
    reply = conn.run(["sh", "-c", EACH_SCRIPT, "sh", *operands(commands)], timeout=timeout)
    return [Result(rc, out, err) for rc, out, err in parse(len(commands), reply.stdout)]


def held(conn: Connector, commands: list[list[str]]) -> Held:
    """Return `conn` holding what `commands` answer now, read in one round trip; when that
    read fails, holding nothing (each command then runs on its own and meets its error)."""
    try:
        results = run_each(conn, commands)
    except AgentError:
        results = []
    return Held(conn, {tuple(argv): r for argv, r in zip(commands, results, strict=False)})


class Held(Connector):
    """`conn` as the step's code uses it, answering a command read by `run_each` from that
    read (as often as it is asked: nothing changes in between, since a Held connector only
    ever serves one phase of reads) and passing every other command to `conn`. Being a
    Connector, its read_many, stat_many and the rest go through the same check, so a read
    whose command was sent ahead is answered too.

    Never give one to an action that changes anything and then reads: what it holds is the
    state before the change."""

    def __init__(self, conn: Connector, held: dict[tuple[str, ...], Result]) -> None:
        self._conn = conn
        self._held = held
        self.name = conn.name

    def _run_any(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        found = self._held.get(tuple(argv)) if stdin is None else None
        # A held answer is no new command: logged and counted (failpoints) when it was read.
        return found if found is not None else self._conn._run_any(argv, stdin, timeout)

    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        return self._conn._exec(argv, stdin, timeout)  # only through _run_any above

    def channels(self, sshd: str = "/usr/sbin/sshd") -> int:
        return self._conn.channels(sshd)

    def close(self) -> None:
        self._conn.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)
