"""The fake server answers the real connector's helper scripts faithfully (else every other
fast test would prove nothing)."""

from __future__ import annotations

import pytest

from agent.errors import BatchFailed, CommandFailed, TransferError, Unreachable
from agent.steps.actions import FileState, Run, Write, carry_out
from tests.fast.fakes import FakeConnector, is_


def test_read_write_stat_go_through_the_real_connector_code() -> None:
    fake = FakeConnector()
    fake.write("/etc/x", b"one\ntwo\n", 0o640, "33:34")
    assert fake.read("/etc/x") == b"one\ntwo\n"
    assert fake.read("/etc/none") is None
    st = fake.stat("/etc/x")
    assert (st.kind, st.mode, st.uid, st.gid, st.size) == ("regular file", 0o640, 33, 34, 8)
    assert not fake.stat("/etc/none").exists
    assert fake.log == [["write", "/etc/x"], ["read", "/etc/x"], ["read", "/etc/none"],
                        ["stat", "/etc/x"], ["stat", "/etc/none"]]
    assert fake.changing() == [["write", "/etc/x"]]


def test_a_write_that_arrives_short_is_not_installed() -> None:
    fake = FakeConnector()
    with pytest.raises(TransferError):
        fake._install("/etc/x", b"abc", 0o644, "0:0", 4, "0" * 64)
    assert "/etc/x" not in fake.files


def test_a_batch_stops_at_the_first_failure_and_names_it() -> None:
    fake = FakeConnector()
    fake.put("/a", b"a")
    fake.fail(is_("reload", "b"), 5)
    with pytest.raises(BatchFailed) as err:
        fake.run_batch([(["rm", "-f", "--", "/a"], (0,)), (["reload", "b"], (0,)),
                        (["reload", "c"], (0,))])
    assert err.value.finished == 1 and err.value.rc == 5
    assert "/a" not in fake.files
    assert ["reload", "c"] not in fake.log
    fake.run_batch([(["reload", "b"], (0,)), (["reload", "c"], (0,))])  # used up
    assert fake.log[-2:] == [["reload", "b"], ["reload", "c"]]


def test_failures_skip_count_and_raise_exceptions() -> None:
    fake = FakeConnector()
    fake.fail(is_("x"), Unreachable("gone"), skip=1, times=2)
    fake.run(["x"])
    for _ in range(2):
        with pytest.raises(Unreachable):
            fake.run(["x"])
    fake.run(["x"])
    fake.fail(is_("y"), 3, times=-1)
    for _ in range(3):
        with pytest.raises(CommandFailed):
            fake.run(["y"])
    fake.heal()
    assert fake.run(["y"]).rc == 0


def test_carry_out_counts_what_was_completed_before_a_failure() -> None:
    fake = FakeConnector()
    before = FileState("/f", False)
    actions = [Write(before, FileState("/f", True, b"x")), Run(["reload", "f"])]
    fake.fail(is_("reload"), 1)
    with pytest.raises(CommandFailed) as err:
        carry_out(fake, actions)
    assert err.value.completed == 1  # type: ignore[attr-defined]
    assert fake.files["/f"].data == b"x"


def test_getent_knows_only_the_fake_accounts() -> None:
    fake = FakeConnector(accounts={"alice": "/home/alice"})
    assert fake.run(["getent", "passwd", "alice"]).text.split(":")[5] == "/home/alice"
    assert fake.run(["getent", "passwd", "eve"], ok_codes=(0, 2)).rc == 2
