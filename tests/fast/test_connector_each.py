"""run_each and Held through the local connector (the real script, a real shell; no root):
each command's own status, stdout and stderr, odd arguments untouched, one command in all,
a reply that does not add up refused, and a held read answered without a second command."""

from __future__ import annotations

import os

import pytest

from agent.config.servers import Server
from agent.connector import each
from agent.connector.base import Result
from agent.connector.local import LocalConnector
from agent.errors import CommandFailed, TransferError

ODD = ["a b", "-n", "--", "new\nline", "ünïcødé", "back\\slash", "'q'", "$(id)", "*", ""]


class Counting(LocalConnector):
    def __init__(self) -> None:
        super().__init__(Server("here", "linux", "local"))
        self.execs: list[list[str]] = []

    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        self.execs.append(argv)
        return super()._exec(argv, stdin, timeout)


@pytest.fixture
def conn() -> Counting:
    return Counting()


def test_each_command_gets_its_own_status_and_output_in_one_command(conn, tmp_path):
    commands = [["printf", "%s\\0", *ODD], ["sh", "-c", "echo oops >&2; exit 3"], ["false"],
                ["cat", str(tmp_path / "absent")], ["true"], ["head", "-c", "3"]]
    results = each.run_each(conn, commands)
    assert len(conn.execs) == 1
    assert [r.rc for r in results] == [0, 3, 1, 1, 0, 0]
    assert results[0].stdout == b"".join(a.encode() + b"\0" for a in ODD)
    assert results[1].stderr == b"oops\n" and results[1].stdout == b""
    assert b"absent" in results[3].stderr
    assert results[4].stdout == results[4].stderr == b""
    assert results[5].stdout == b""  # stdin is /dev/null: nothing is read from the link


def test_the_commands_run_side_by_side(conn, tmp_path):
    # The first waits for a file only the second makes: run one after the other, it would
    # wait out its whole timeout instead.
    flag = tmp_path / "flag"
    wait = f"i=0; while [ ! -e {flag} ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; " \
           f"[ -e {flag} ]"
    results = each.run_each(conn, [["sh", "-c", wait], ["touch", str(flag)]])
    assert [r.rc for r in results] == [0, 0]


def test_no_temporary_folder_is_left(conn, tmp_path):
    env_before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path)
    try:
        each.run_each(conn, [["true"], ["echo", "x"]])
    finally:
        if env_before is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = env_before
    assert list(tmp_path.iterdir()) == []


def test_a_reply_that_does_not_add_up_is_a_transfer_error(conn):
    whole = conn.run(["sh", "-c", each.EACH_SCRIPT, "sh",
                      *each.operands([["echo", "one"], ["echo", "two"]])]).stdout
    assert [r[1] for r in each.parse(2, whole)] == [b"one\n", b"two\n"]
    for bad in (whole[:-1], whole + b"x", whole.replace(b"0 0 ", b"0 "), b""):
        with pytest.raises(TransferError):
            each.parse(2, bad)
    with pytest.raises(TransferError):
        each.parse(3, whole)


def test_held_answers_the_held_reads_and_passes_everything_else_on(conn):
    held = each.held(conn, [["echo", "held"], ["sh", "-c", "exit 2"]])
    assert len(conn.execs) == 1
    assert held.run(["echo", "held"]).stdout == b"held\n"
    assert held.run(["echo", "held"]).stdout == b"held\n"  # as often as asked
    assert held.run(["sh", "-c", "exit 2"], ok_codes=(0, 2)).rc == 2
    with pytest.raises(CommandFailed):
        held.run(["sh", "-c", "exit 2"])
    assert len(conn.execs) == 1
    assert held.run(["echo", "other"]).stdout == b"other\n"
    # A command with input is never answered from the held read.
    assert held.run(["echo", "held"], stdin=b"x").stdout == b"held\n"
    assert len(conn.execs) == 3
    assert held.name == conn.name  # the rest of the connector is the connector's


def test_a_failed_read_ahead_holds_nothing(conn):
    class Broken(Counting):
        def _exec(self, argv, stdin, timeout):
            if argv[:2] == ["sh", "-c"] and argv[2] == each.EACH_SCRIPT:
                self.execs.append(argv)
                return Result(0, b"garbage", b"")
            return super()._exec(argv, stdin, timeout)

    broken = Broken()
    held = each.held(broken, [["echo", "x"]])
    assert held.run(["echo", "x"]).stdout == b"x\n"
    assert len(broken.execs) == 2
