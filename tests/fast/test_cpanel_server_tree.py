"""The cpanel driver's whole-server tree, from the fake panel's owner records: every
reseller's login first (an owner before the resellers it owns), every account once, the
protected ones and the agent's own login left out, and hostile names refused before
anything changes (reference/panels.md A5, A9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.drivers import driver
from agent.errors import StepError
from tests.fast.test_cpanel_tree import OWNERS, RESELLERS, panel_calls, tree_world


def test_every_reseller_is_a_login_an_owner_first_and_every_account_once(
        tmp_path: Path) -> None:
    server, fake = tree_world(tmp_path)
    tree = driver("cpanel").server_tree(server, fake, 1000, set())
    assert tree.kind == "server" and tree.reseller == "cp1"
    # Down the owner links from root: r1 and r9 (root's), then s1, s2 (r1's), then ss1.
    assert tree.logins == tree.resellers == ("r1", "r9", "s1", "s2", "ss1")
    assert set(tree.accounts) == set(OWNERS) and len(tree.accounts) == len(OWNERS)
    assert tree.accounts[:5] == tree.logins
    # Deeper than the name order says: a0 is owned by ss1, two resellers down from r1.
    server, fake = tree_world(tmp_path, {**OWNERS, "a0": "ss1"}, RESELLERS | {"a0"})
    tree = driver("cpanel").server_tree(server, fake, 1000, set())
    assert tree.logins == ("r1", "r9", "s1", "s2", "ss1", "a0")
    assert sorted(panel_calls(fake)) == ["listaccts", "listresellers"]
    assert [a for a in fake.changing() if not a[0].endswith("whmapi1")] == []


def test_protected_accounts_and_the_agents_login_are_left_out_and_named(
        tmp_path: Path) -> None:
    server, fake = tree_world(tmp_path)
    tree = driver("cpanel").server_tree(server, fake, 1000, {"s2", "bob"})
    assert "s2" not in tree.children and "bob" not in tree.children
    assert "c1" in tree.accounts
    (left,) = [n for n in tree.notes if n.startswith("left out")]
    assert "bob" in left and "s2" in left


def test_a_reseller_without_an_account_and_an_orphan_account(tmp_path: Path) -> None:
    owners = {**OWNERS, "lost": "gone"}  # owned by a reseller deleted since
    server, fake = tree_world(tmp_path, owners, RESELLERS | {"ghost"})
    tree = driver("cpanel").server_tree(server, fake, 1000, set())
    assert "ghost" not in tree.children and "lost" in tree.accounts
    assert any("ghost" in n and "without an account" in n for n in tree.notes)


@pytest.mark.parametrize("name", ["Bad;Name", "x" * 40])
def test_an_account_the_agent_cannot_target_stops_the_tree(tmp_path: Path,
                                                            name: str) -> None:
    server, fake = tree_world(tmp_path, {**OWNERS, name: "root"})
    with pytest.raises(StepError, match="protected_accounts"):
        driver("cpanel").server_tree(server, fake, 1000, set())
    assert [a for a in fake.changing() if not a[0].endswith("whmapi1")] == []
