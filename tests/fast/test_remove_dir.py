"""RemoveDirs: a folder the agent made goes when empty; one already gone (another account of
the batch removed it first, also between any check and the rmdir) is what was wanted; a
folder with content stays; a link or a file in its place is an error, never removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.servers import Server
from agent.connector.local import LocalConnector
from agent.errors import CommandFailed
from agent.steps.actions import carry_out
from agent.steps.landing_include import RemoveDirs


def _remove(path: Path) -> None:
    carry_out(LocalConnector(Server("here", "linux", "local")), [RemoveDirs((str(path),))])


def test_empty_goes_missing_is_fine_full_stays(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _remove(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    _remove(tmp_path / "empty")  # gone already: the second account of the batch
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    _remove(tmp_path / "full")
    assert (tmp_path / "full" / "x").exists()


@pytest.mark.parametrize("kind", ["link", "file"])
def test_a_link_or_a_file_in_its_place_is_an_error(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "d"
    target.mkdir()
    path = tmp_path / "p"
    if kind == "link":
        path.symlink_to(target)
    else:
        path.write_text("customer data")
    with pytest.raises(CommandFailed):
        _remove(path)
    assert path.exists() and target.exists()


def test_merged_folders_of_a_batch_go_deepest_first(tmp_path: Path) -> None:
    """The shared parent is in one account's list only, listed before the other's own
    folder: merged, it still goes last (as two separate actions it stayed behind)."""
    from agent.steps.protocol import Plan
    from agent.steps.together import merge_finish

    parent = tmp_path / "sa"
    (parent / "alice").mkdir(parents=True)
    (parent / "bob").mkdir()
    first = Plan("landing_page", finish=[RemoveDirs((str(parent / "alice"), str(parent)))])
    second = Plan("landing_page", finish=[RemoveDirs((str(parent / "bob"),))])
    merged = merge_finish([first, second])
    assert len(merged) == 1
    carry_out(LocalConnector(Server("here", "linux", "local")), merged)
    assert not parent.exists()
