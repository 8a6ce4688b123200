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
