"""Several accounts' plans carried out as one (agent/steps/together.py): every plan's
actions in their own order, in as few commands as one plan's; a failure half way mapped
back to the plans, each unfinished plan then finishing alone, so one account's failure
stays that account's. Then the same through the engine: a reseller's tree whose landing
page step is `together`."""

from __future__ import annotations

from typing import Any

import pytest

from agent.drivers.linux import driver as linux_driver
from agent.errors import Unreachable
from agent.steps.actions import FileState, Run, Write
from agent.steps.together import PER_CALL, carry_out_many, merge
from tests.fast.conftest import World
from tests.fast.fake_steps import FileStep, step_path
from tests.fast.fakes import FakeConnector
from tests.fast.test_reseller import ACCOUNTS, with_tree


def _plan(conn: FakeConnector, name: str, dirs: int = 1) -> list:
    """install -d of `dirs` folders, then two files: a landing plan's shape."""
    actions: list = [Run(["install", "-d", f"/srv/{name}/d{i}"]) for i in range(dirs)]
    for leaf in ("page", "conf"):
        path = f"/srv/{name}/{leaf}"
        before = FileState(path, False)
        actions.append(Write(before, FileState(path, True, f"{name} {leaf}\n".encode(),
                                               0o644, "0:0")))
    return actions


def _lines(plan: list) -> list[str]:
    return [line for action in plan for line in action.describe()]


class Counting(FakeConnector):
    """Counts the commands that reach the server (a batch or a write_many is one)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _exec(self, argv, stdin, timeout):  # noqa: ANN001, ANN202
        self.calls += 1
        return super()._exec(argv, stdin, timeout)


def test_merge_keeps_each_plans_order_and_groups_by_kind() -> None:
    conn = Counting()
    plans = [_plan(conn, "a", 2), _plan(conn, "b", 0), _plan(conn, "c", 1)]
    merged, owner = merge(plans)
    assert sorted(map(id, merged)) == sorted(id(a) for p in plans for a in p)
    for i, plan in enumerate(plans):
        assert [a for a, o in zip(merged, owner, strict=True) if o == i] == plan
    kinds = ["run" if isinstance(a, Run) else "write" for a in merged]
    assert kinds == ["run"] * 3 + ["write"] * 6


def test_many_plans_in_two_commands_and_each_done() -> None:
    conn = Counting()
    plans = [_plan(conn, n) for n in ("a", "b", "c")]
    outcomes = carry_out_many(conn, plans)
    assert conn.calls == 2  # one batch of install -d, one write_many
    assert all(exc is None for _lines, exc in outcomes)
    assert [lines for lines, _exc in outcomes] == [_lines(p) for p in plans]
    assert all(conn.files[f"/srv/{n}/page"].data == f"{n} page\n".encode() for n in "abc")


def test_a_failure_is_that_plans_alone_and_the_others_finish() -> None:
    conn = Counting()
    plans = [_plan(conn, n) for n in ("a", "b", "c")]
    # b's folder cannot be made, in the merged batch and again alone.
    conn.fail(lambda argv: argv == ["install", "-d", "/srv/b/d0"], 1, times=2)
    outcomes = carry_out_many(conn, plans)
    (lines_b, exc_b) = outcomes[1]
    assert exc_b is not None and exc_b.completed == 0 and lines_b == []
    for i in (0, 2):
        assert outcomes[i][1] is None and outcomes[i][0] == _lines(plans[i])
    assert "/srv/b/page" not in conn.files and "/srv/c/page" in conn.files


def test_a_write_refused_for_all_is_retried_alone_and_counts_what_is_in_place() -> None:
    conn = Counting()
    plans = [_plan(conn, n, dirs=0) for n in ("a", "b")]
    conn.fail(lambda argv: argv[0] == "write" and len(argv) == 5, 1)  # the merged one
    outcomes = carry_out_many(conn, plans)
    assert [exc for _l, exc in outcomes] == [None, None]
    assert conn.files["/srv/b/conf"].data == b"b conf\n"


def test_a_lost_link_is_every_unfinished_plans_error_and_nothing_more_is_tried() -> None:
    conn = Counting()
    plans = [_plan(conn, n) for n in ("a", "b")]
    conn.fail(lambda argv: argv[0] == "write", Unreachable("gone"))
    outcomes = carry_out_many(conn, plans)
    assert all(isinstance(exc, Unreachable) for _l, exc in outcomes)
    assert conn.calls == 2


def test_a_big_batch_is_split_into_calls_side_by_side() -> None:
    conn = Counting()
    plans = [_plan(conn, f"u{i}") for i in range(PER_CALL + 1)]
    outcomes = carry_out_many(conn, plans, workers=4)
    assert conn.calls == 4 and all(exc is None for _l, exc in outcomes)


class TogetherFileStep(FileStep):
    """The fake landing page as a `together` step: apply is exactly its plan's actions."""

    together = True

    def apply(self, ctx: Any, plan: Any) -> dict[str, Any]:
        from agent.steps.actions import carry_out

        carry_out(ctx.conn, plan.actions)
        return plan.undo


@pytest.fixture
def together_tree(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    with_tree(world)
    monkeypatch.setitem(linux_driver.DRIVER.steps, "landing_page",
                        TogetherFileStep("landing_page"))
    return world


def _landing_writes(world: World) -> list[list[str]]:
    prefix = "/etc/fake/landing_page/"
    return [a for a in world.fake.log if a[0] == "write" and a[1].startswith(prefix)]


def test_the_trees_landing_pages_in_one_write_and_back_in_one_batch(together_tree: World
                                                                    ) -> None:
    w = together_tree
    pristine = w.step_files()
    o = w.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    assert o.ok, o
    (write,) = _landing_writes(w)
    assert sorted(write[1:]) == sorted(step_path("landing_page", a) for a in ACCOUNTS)
    assert [a for a in w.fake.log if a[:2] == ["reload", "landing_page"]] == [
        ["reload", "landing_page"]]
    done = [c for c in w.rows("changes") if c["step"] == "landing_page"]
    assert len(done) == 3 and all(c["state"] == "done" for c in done)
    w.fake.log.clear()
    batches: list[list[str]] = []
    real = w.fake._batch

    def counted(operands: list[str]):  # noqa: ANN202
        batches.append(operands)
        return real(operands)

    w.fake._batch = counted
    o = w.engine().unsuspend_reseller("web1", "rita", "billing", False)
    assert o.ok and o.state == "active", o
    assert w.step_files() == pristine
    removals = [b for b in batches if any(op.startswith("/etc/fake/landing_page/") for op in b)]
    assert len(removals) == 1  # every account's landing file removed in one command


def test_one_accounts_failure_in_the_merged_write_is_its_own(together_tree: World) -> None:
    w = together_tree
    carol = step_path("landing_page", "carol")
    w.fake.fail(lambda argv: argv[0] == "write" and carol in argv, 1, times=2)
    o = w.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    assert not o.ok and not o.partial, o
    kids = {c["account"]: c for c in o.children}
    assert kids["carol"]["state"] == "active" and kids["carol"]["errors"], kids["carol"]
    assert kids["carol"]["errors"][0]["step"] == "landing_page"
    assert all(kids[a]["state"] == "suspended" for a in ("alice", "bob"))
    assert carol not in w.fake.files
    assert all(step_path("landing_page", a) in w.fake.files for a in ("alice", "bob"))
