"""The host map edit starting from a map the batch read moments ago (map_edit.KNOWN): one
round trip less, and never a lost name when another process wrote the map in between
(its install checks on the server that the map is still what the edit started from).
Runs on local files through the LocalConnector, no root needed."""

from __future__ import annotations

from pathlib import Path

from agent.config.servers import Server
from agent.connector.local import LocalConnector
from agent.steps import map_edit
from agent.steps.map_edit import KNOWN, MapEdit, parse


def _conn() -> LocalConnector:
    return LocalConnector(Server("here", "linux", "local"))


def _edit(conn: LocalConnector, edit: MapEdit, known: dict | None) -> int:
    """Carry out `edit` with `known` files; return how many commands it ran."""
    count = 0
    real = conn._exec

    def counted(argv, stdin, timeout):  # noqa: ANN001, ANN202
        nonlocal count
        count += 1
        return real(argv, stdin, timeout)

    conn._exec = counted  # type: ignore[method-assign]
    token = KNOWN.set(known)
    try:
        edit.carry_out(conn)
    finally:
        KNOWN.reset(token)
    return count


def test_a_known_map_saves_the_read(tmp_path: Path) -> None:
    path = tmp_path / "hosts.map"
    path.write_bytes(map_edit.render({"a.test"}))
    conn = _conn()
    known = conn.read_many([str(path)])
    assert _edit(conn, MapEdit(str(path), add=("b.test",)), dict(known)) == 1
    assert parse(path.read_bytes(), str(path)) == {"a.test", "b.test"}


def test_a_map_written_since_it_was_read_is_read_again_and_nothing_is_lost(
        tmp_path: Path) -> None:
    path = tmp_path / "hosts.map"
    path.write_bytes(map_edit.render({"a.test"}))
    conn = _conn()
    stale = conn.read_many([str(path)])
    # Another process adds its own name after the batch read the map.
    path.write_bytes(map_edit.render({"a.test", "other.test"}))
    assert _edit(conn, MapEdit(str(path), add=("b.test",), remove=("a.test",)),
                 dict(stale)) == 3  # the refused install, the read, the install
    assert parse(path.read_bytes(), str(path)) == {"other.test", "b.test"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sa-tmp")]


def test_without_known_files_the_edit_reads_first(tmp_path: Path) -> None:
    path = tmp_path / "hosts.map"
    path.write_bytes(map_edit.render(set()))
    conn = _conn()
    assert _edit(conn, MapEdit(str(path), add=("b.test",)), None) == 2
    assert parse(path.read_bytes(), str(path)) == {"b.test"}
