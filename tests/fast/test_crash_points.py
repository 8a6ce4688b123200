"""agent.failpoints in-process: the agent "dies" after each journal transition and after each
command of a suspend and of an unsuspend in turn (its kill -9 becomes a Crash exception),
and the next calls converge: everything applied, then everything back byte for byte."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

from agent import failpoints
from tests.fast.conftest import HOUR, START, World, crash_at, make_world
from tests.fast.fakes import Crash

Scenario = Callable[[World], object]


def suspend(world: World) -> object:
    return world.engine().suspend("web1", "alice", "now", "billing", None, False)


def unsuspend(world: World) -> object:
    return world.engine().unsuspend("web1", "alice", "billing", False)


def laddered(world: World) -> None:
    """Suspend with every stage of the ladder applied (six changes)."""
    world.engine().suspend("web1", "alice", "ladder", "billing", None, False)
    world.clock.t = START + 72 * HOUR
    world.engine().tick()


def hits(tmp: Path, monkeypatch: pytest.MonkeyPatch, before: Scenario | None,
         call: Scenario) -> dict[str, int]:
    """Return how many journal transitions and commands `call` makes after `before`."""
    world = make_world(tmp, monkeypatch)
    if before is not None:
        before(world)
    crash_at(monkeypatch, "journal", 10**9)  # counts, never fires
    call(world)
    world.close()
    return dict(failpoints._COUNTS)


def converge(world: World, pristine: dict) -> None:
    """The calls after a crash: suspend until done, then unsuspend until all is back."""
    assert failpoints._TARGET is None
    o = world.engine().suspend("web1", "alice", "now", "billing", None, False)
    assert o.ok and o.state == "suspended", o
    assert set(world.states().values()) == {"done"}
    o = world.engine().unsuspend("web1", "alice", "billing", False)
    assert o.ok and o.state == "active", o
    assert world.engine().journal.active_changes("web1", "account", "alice") == []
    assert world.step_files() == pristine


@pytest.mark.parametrize("kind", ["journal", "command"])
def test_a_suspend_killed_anywhere_converges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             kind: str) -> None:
    total = hits(tmp_path / "count", monkeypatch, None, suspend)[kind]
    assert total >= (8 if kind == "journal" else 10)
    for n in range(1, total + 1):
        world = make_world(tmp_path / f"{kind}-{n}", monkeypatch)
        pristine = world.step_files()
        crash_at(monkeypatch, kind, n)
        with pytest.raises(Crash):
            suspend(world)
        monkeypatch.setattr(failpoints, "_TARGET", None)
        try:
            converge(world, pristine)
        except AssertionError as exc:
            raise AssertionError(f"after a crash at {kind}:{n}: {exc}") from exc
        world.close()


@pytest.mark.parametrize("kind", ["journal", "command"])
def test_an_unsuspend_killed_anywhere_converges(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                kind: str) -> None:
    total = hits(tmp_path / "count", monkeypatch, laddered, unsuspend)[kind]
    assert total >= (12 if kind == "journal" else 10)
    for n in range(1, total + 1):
        world = make_world(tmp_path / f"{kind}-{n}", monkeypatch)
        pristine = world.step_files()
        monkeypatch.setattr(failpoints, "_TARGET", None)
        laddered(world)
        crash_at(monkeypatch, kind, n)
        with pytest.raises(Crash):
            unsuspend(world)
        monkeypatch.setattr(failpoints, "_TARGET", None)
        o = unsuspend(world)
        assert o.ok and o.state == "active", (kind, n, o)  # type: ignore[attr-defined]
        assert world.step_files() == pristine, (kind, n)
        world.close()


def test_the_failpoint_is_read_from_the_environment_once(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    try:
        monkeypatch.setenv(failpoints.ENV, "command:3")
        importlib.reload(failpoints)
        assert failpoints._TARGET == ("command", 3)
        for bad in ("", "journal:0", "disk:1", "journal:x", "journal"):
            monkeypatch.setenv(failpoints.ENV, bad)
            importlib.reload(failpoints)
            assert failpoints._TARGET is None, bad
        failpoints.hit("journal")  # inert: not even counted
        assert failpoints._COUNTS == {"journal": 0, "command": 0}
    finally:
        monkeypatch.delenv(failpoints.ENV, raising=False)
        importlib.reload(failpoints)
