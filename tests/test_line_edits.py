"""Line edits of shared files, version gates and SQL quoting: pure checks on local files."""

from __future__ import annotations

import os

import pytest

from agent.config.servers import Server
from agent.connector.local import LocalConnector
from agent.errors import StepError
from agent.steps.edit_lines import EditLines
from agent.steps.sql import MIN_VERSION, quotable, server_kind, sql_name, sql_string


@pytest.fixture
def conn():
    return LocalConnector(Server("here", "linux", "local"))


def test_edit_replaces_only_its_lines_and_keeps_mode(conn, tmp_path):
    f = tmp_path / "passwd"
    f.write_text("a:h1:1:1::/a::\nb:h2:2:2::/b::\nc:h3:1:1::/c::\n")
    os.chmod(f, 0o640)
    edit = EditLines(str(f), (("a:h1:1:1::/a::", "a:!h1:1:1::/a::"),
                              ("c:h3:1:1::/c::", "c:!h3:1:1::/c::")), ("lock a", "lock c"))
    # Someone else changes b's line between plan and apply: the edit must keep it.
    f.write_text(f.read_text().replace("b:h2", "b:h9"))
    edit.carry_out(conn)
    assert f.read_text() == "a:!h1:1:1::/a::\nb:h9:2:2::/b::\nc:!h3:1:1::/c::\n"
    assert f.stat().st_mode & 0o777 == 0o640
    edit.carry_out(conn)  # twice: nothing changes
    assert f.read_text() == "a:!h1:1:1::/a::\nb:h9:2:2::/b::\nc:!h3:1:1::/c::\n"
    edit.reversed(("unlock",)).carry_out(conn)
    assert f.read_text() == "a:h1:1:1::/a::\nb:h9:2:2::/b::\nc:h3:1:1::/c::\n"


def test_edit_refuses_a_line_changed_since_plan(conn, tmp_path):
    f = tmp_path / "shadow"
    f.write_text("info:{X}new-hash\n")
    edit = EditLines(str(f), (("info:{X}old-hash", "info:*LOCKED*{X}old-hash"),), ("lock",))
    with pytest.raises(StepError, match="changed since it was read"):
        edit.carry_out(conn)
    assert f.read_text() == "info:{X}new-hash\n"


def test_append_and_remove_a_line_without_trailing_newline(conn, tmp_path):
    f = tmp_path / "ftpusers"
    f.write_text("root\ndaemon")
    add = EditLines(str(f), (("", "alice"),), ("add alice",))
    add.carry_out(conn)
    add.carry_out(conn)
    assert f.read_text() == "root\ndaemon\nalice"
    add.reversed(("remove alice",)).carry_out(conn)
    assert f.read_text() == "root\ndaemon"


def test_dry_run_text_never_shows_the_lines():
    edit = EditLines("/etc/vmail/x/shadow", (("info:{SHA512-CRYPT}$6$secret", "info:*L"),),
                     ("lock mailbox info@x",))
    assert "secret" not in "\n".join(edit.describe())


@pytest.mark.parametrize(("version", "kind", "supported"), [
    ("10.11.6-MariaDB-0+deb12u1", "mariadb", True),
    ("10.3.39-MariaDB-0+deb10u1", "mariadb", False),
    ("10.4.2-MariaDB", "mariadb", True),
    ("8.0.36-0ubuntu0.22.04.1", "mysql", True),
    ("5.7.5-m15", "mysql", False),
])
def test_account_lock_version_gate(version, kind, supported):
    found, number = server_kind(version)
    assert found == kind
    assert (number >= MIN_VERSION[kind]) == supported


def test_sql_strings_and_names_hold_any_character_under_any_sql_mode():
    # Hex literals: nothing in the name is ever parsed (quotes, backslashes, NO_BACKSLASH_
    # ESCAPES); backquoted names double their backquotes.
    assert sql_string("a'b\\c") == "_utf8mb4 X'6127625c63'"
    assert sql_string("") == "''"
    assert sql_name("alice_x y`z") == "`alice_x y``z`"
    assert quotable("alice_x y") and not quotable("a\nb") and not quotable("")
