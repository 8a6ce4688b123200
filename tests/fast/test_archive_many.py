"""Reused backups checked many at once (archive.check_many): one command for several
archives, each still checked whole (size, listing to its end, SHA-256, what it must hold),
and a check that did not pass is never held, so that its own check reports its own error.
Runs the real tar and sha256sum on local files through the LocalConnector, no root."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from agent.config.servers import Server
from agent.connector.local import LocalConnector
from agent.errors import StepError
from agent.steps import archive
from agent.steps.protocol import Memo

TAR, SHA = "/bin/tar", "/usr/bin/sha256sum"


class Counting(LocalConnector):
    """A local connector that keeps the argv of every command it runs."""

    def __init__(self) -> None:
        super().__init__(Server("here", "linux", "local"))
        self.commands: list[list[str]] = []

    def run(self, argv, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        self.commands.append(list(argv))
        return super().run(argv, *args, **kwargs)


def _archive(tmp: Path, name: str) -> Path:
    home = tmp / "src" / name / "home"
    home.mkdir(parents=True)
    (home / "index.html").write_text(f"{name}'s site\n")
    path = tmp / f"{name}.tar.gz"
    subprocess.run([TAR, "--create", "--gzip", "--file", str(path), "-C", str(tmp / "src"),
                    name], check=True)
    return path


def _must(name: str) -> dict[str, str]:
    return {"the home": f"{name}/home/"}


def test_many_archives_one_command_each_checked_whole(tmp_path: Path) -> None:
    conn, shared = Counting(), Memo()
    paths = {n: _archive(tmp_path, n) for n in ("a", "b", "c")}
    # A member name that imitates the check's own lines cannot pass for one of them.
    (tmp_path / "src" / "c" / "home" / "SA-0 ITEM 0").write_text("x")
    (tmp_path / "src" / "c" / "home" / "SA-0 RC 0").write_text("x")
    _archive_again(tmp_path, "c")
    archive.check_many(conn, [str(p) for p in paths.values()], TAR, SHA, shared, workers=4)
    assert len(conn.commands) == 1  # three archives, fewer than PER_COMMAND: one command
    for name, path in paths.items():
        facts = archive.verify_archive(conn, str(path), _must(name), TAR, SHA,
                                       hashlib.sha256(path.read_bytes()).hexdigest(), shared)
        assert facts["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert facts["size"] == path.stat().st_size and facts["entries"] >= 3
    assert len(conn.commands) == 1  # each check was held and used
    # Used once: a second check of the same archive runs again.
    archive.verify_archive(conn, str(paths["a"]), _must("a"), TAR, SHA, None, shared)
    assert len(conn.commands) == 2


def _archive_again(tmp: Path, name: str) -> Path:
    path = tmp / f"{name}.tar.gz"
    subprocess.run([TAR, "--create", "--gzip", "--file", str(path), "-C", str(tmp / "src"),
                    name], check=True)
    return path


@pytest.mark.parametrize("damage", ["missing", "truncated", "changed", "lacks"])
def test_an_archive_that_fails_is_not_held_and_fails_on_its_own(tmp_path: Path,
                                                                damage: str) -> None:
    conn, shared = Counting(), Memo()
    good, bad = _archive(tmp_path, "good"), _archive(tmp_path, "bad")
    known = hashlib.sha256(bad.read_bytes()).hexdigest()
    must = _must("bad")
    if damage == "missing":
        bad.unlink()
    elif damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:-30])
    elif damage == "changed":  # still a whole archive, but not the one taken
        (tmp_path / "src" / "bad" / "home" / "new.html").write_text("new\n")
        _archive_again(tmp_path, "bad")
    else:
        must = {"the database dump": "bad/databases/bad.sql"}
    archive.check_many(conn, [str(good), str(bad)], TAR, SHA, shared, workers=2)
    assert len(conn.commands) == 1
    archive.verify_archive(conn, str(good), _must("good"), TAR, SHA, None, shared)
    assert len(conn.commands) == 1
    expected = {"missing": "is missing or empty", "truncated": "does not list to its end",
                "changed": "changed since it was taken", "lacks": "does not hold"}[damage]
    with pytest.raises(StepError, match=expected):
        archive.verify_archive(conn, str(bad), must, TAR, SHA, known, shared)
    # Held only when it passed the command's own part (size, listing, sum); judged then.
    assert len(conn.commands) == (1 if damage in ("changed", "lacks") else 2)


def test_many_archives_are_split_over_the_workers(tmp_path: Path) -> None:
    conn, shared = Counting(), Memo()
    paths = [str(_archive(tmp_path, f"u{i:02d}")) for i in range(2 * archive.PER_COMMAND + 1)]
    archive.check_many(conn, paths, TAR, SHA, shared, workers=2)
    assert len(conn.commands) == 2
    held = [p for p in paths if shared.take((archive.HELD, p)) is not None]
    assert held == paths
    archive.check_many(conn, paths[:3], TAR, SHA, shared, workers=1)
    assert len(conn.commands) == 3
