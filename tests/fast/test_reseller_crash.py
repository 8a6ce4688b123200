"""A reseller suspend and unsuspend over a small tree (3 accounts, 2 logins), and a whole
server's (its admin and every account, with its own firewall_block), killed after every
journal transition and after every command in turn: the next call converges to what an
uncut run gives, and the reversal puts every file back byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import failpoints
from agent.connector import base
from tests.fast.conftest import HOUR, START, World, crash_at, make_world
from tests.fast.fakes import Crash
from tests.fast.test_reseller import with_tree
from tests.fast.test_whole_server import on_server

SERVER_BOOK = ("stages:\n  - after: 0s\n    steps: [backup, landing_page, firewall_block]\n"
               "  - after: 72h\n    steps: [mail_block, ftp_lock, db_lock, panel_lock]\n")


def world_at(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    # One worker: a kill stops the whole batch at one point, as kill -9 would.
    monkeypatch.setattr(base, "LOCAL_CHANNELS", 1)
    world = make_world(tmp, monkeypatch)
    if TARGET["kind"] == "server":
        # As small as the reseller's tree: alice, bob and the admin ops (login+account).
        on_server(world)
        (world.tmp / "playbooks" / "server-now.yaml").write_text(SERVER_BOOK)
    else:
        with_tree(world)
    return world


# The tree under test: a reseller's (rita), or the whole server (its admin, every account
# and its own firewall_block); set per test by the `target` fixture.
TARGET = {"kind": "reseller"}


@pytest.fixture(params=["reseller", "server"], autouse=True)
def target(request: pytest.FixtureRequest):  # noqa: ANN201
    TARGET["kind"] = request.param
    yield request.param
    TARGET["kind"] = "reseller"


def suspend(world: World):  # noqa: ANN201
    if TARGET["kind"] == "server":
        return world.engine().suspend_server("web1", "server-now", "billing", None, False)
    return world.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)


def unsuspend(world: World):  # noqa: ANN201
    if TARGET["kind"] == "server":
        return world.engine().unsuspend_server("web1", "billing", False)
    return world.engine().unsuspend_reseller("web1", "rita", "billing", False)


def laddered(world: World) -> None:
    suspend(world)
    world.clock.t = START + 72 * HOUR
    world.engine().tick()


def count(tmp: Path, monkeypatch: pytest.MonkeyPatch, before, call, kind: str) -> int:  # noqa: ANN001
    world = world_at(tmp, monkeypatch)
    if before is not None:
        before(world)
    crash_at(monkeypatch, kind, 10**9)
    call(world)
    world.close()
    return failpoints._COUNTS[kind]


def uncut(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The step files after an uncut suspend: what every crashed run must converge to."""
    world = world_at(tmp, monkeypatch)
    suspend(world)
    files = {p: v for p, v in world.step_files().items() if "/backup" not in p}
    world.close()
    return files


def without_case_ids(files: dict) -> dict:
    """Case ids differ from run to run; the rest of each file must not."""
    import re

    return {p: re.sub(rb"case \S+", b"case X", v[0]) for p, v in files.items()}


@pytest.mark.parametrize("kind", ["journal", "command"])
def test_a_reseller_suspend_killed_anywhere_converges(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      kind: str) -> None:
    total = count(tmp_path / "count", monkeypatch, None, suspend, kind)
    want = without_case_ids(uncut(tmp_path / "uncut", monkeypatch))
    assert total >= 10
    for n in range(1, total + 1):
        world = world_at(tmp_path / f"{kind}-{n}", monkeypatch)
        pristine = world.step_files()
        crash_at(monkeypatch, kind, n)
        with pytest.raises(Crash):
            suspend(world)
        monkeypatch.setattr(failpoints, "_TARGET", None)
        o = suspend(world)
        assert o.ok and o.state == "suspended", (kind, n, o)
        got = {p: v for p, v in world.step_files().items() if "/backup" not in p}
        assert without_case_ids(got) == want, (kind, n)
        o = unsuspend(world)
        assert o.ok and o.state == "active", (kind, n, o)
        assert world.step_files() == pristine, (kind, n)
        world.close()


@pytest.mark.parametrize("kind", ["journal", "command"])
def test_a_reseller_unsuspend_killed_anywhere_converges(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        kind: str) -> None:
    total = count(tmp_path / "count", monkeypatch, laddered, unsuspend, kind)
    assert total >= 20
    for n in range(1, total + 1):
        world = world_at(tmp_path / f"{kind}-{n}", monkeypatch)
        pristine = world.step_files()
        laddered(world)
        crash_at(monkeypatch, kind, n)
        with pytest.raises(Crash):
            unsuspend(world)
        monkeypatch.setattr(failpoints, "_TARGET", None)
        o = unsuspend(world)
        assert o.ok and o.state == "active", (kind, n, o)
        assert world.step_files() == pristine, (kind, n)
        assert world.engine().journal.targets() == []
        world.close()
