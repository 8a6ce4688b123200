"""The batch's Memo: a value computed once under its lock may keep files for the next shared
finish (a reentrant use that once deadlocked every worker of a batch)."""

from __future__ import annotations

import threading

from agent.steps.protocol import Memo


def test_a_value_computed_under_the_lock_can_keep_files_and_each_is_taken_once() -> None:
    shared = Memo()
    calls = []

    def compute() -> str:
        calls.append(1)
        shared.saw({"/etc/map": "content"})
        return "value"

    done = threading.Event()

    def worker() -> None:
        assert shared.get(("k",), compute) == "value"
        done.set()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    assert done.wait(5), "Memo.get deadlocked when the computation kept a file"
    assert shared.get(("k",), compute) == "value"
    assert calls == [1]
    assert shared.take_files() == {"/etc/map": "content"}
    assert shared.take_files() == {}


class _Reader:
    """A step that names the files its revert plan and probe read."""

    def revert_reads(self, undo: dict) -> list[str]:
        return undo["files"]

    def verify_reads(self, undo: dict) -> list[str]:
        return undo["files"][:1]


def test_a_batch_reads_every_accounts_files_once_and_each_account_gets_its_own(
        monkeypatch) -> None:
    """_prefetch: one read_many for all the accounts' files; `read` then answers each
    account from it without a command, and reads for itself once the hold is dropped, for
    a path not held, or for a context without a batch."""
    from types import SimpleNamespace

    from agent.engine import batch_stage
    from agent.steps.protocol import read
    from tests.fast.fakes import FakeConnector

    conn = FakeConnector()
    for name in ("a1", "a2", "b1", "c1"):
        conn.put(f"/etc/{name}", name.encode())
    shared = Memo()
    batch = SimpleNamespace(conn=conn, shared=shared, dry_run=False)
    wants = [(_Reader(), "revert_reads", {"files": ["/etc/a1", "/etc/a2"]}),
             (_Reader(), "revert_reads", {"files": ["/etc/b1"]}),
             (None, "revert_reads", {"files": ["/etc/c1"]}),  # no such step: nothing
             (_Reader(), "revert_reads", None)]
    batch_stage._prefetch(batch, wants)
    assert len(conn.log) == 1
    ctx = SimpleNamespace(shared=shared, conn=conn)
    got = read(ctx, ["/etc/b1", "/etc/a1"])
    assert {p: f.data for p, f in got.items()} == {"/etc/b1": b"b1", "/etc/a1": b"a1"}
    assert len(conn.log) == 1
    assert read(ctx, ["/etc/a1", "/etc/c1"])["/etc/c1"].data == b"c1"  # c1 was not held
    assert len(conn.log) == 2
    shared.preload({})
    conn.put("/etc/a1", b"changed")
    assert read(ctx, ["/etc/a1"])["/etc/a1"].data == b"changed"
    assert read(SimpleNamespace(shared=None, conn=conn), ["/etc/a2"])["/etc/a2"].data == b"a2"
    # One account alone: nothing is read ahead (its own read is the same one command).
    batch_stage._prefetch(batch, wants[:1])
    assert len(conn.log) == 4 and shared.preloaded(["/etc/a1"]) is None
