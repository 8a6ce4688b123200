"""The audit events as a hash chain (issue 19 item 5): `audit verify` passes on the journal
of real calls, the table refuses UPDATE and DELETE, and with the triggers dropped (another
tool) a byte changed in one row, a row removed, or two rows swapped are each named."""

from __future__ import annotations

import sqlite3

import pytest

from agent.cli import EXIT_FAILED, EXIT_OK
from agent.journal import database
from agent.journal.journal import Journal
from tests.fast.conftest import World


def some_events(world: World) -> list[dict]:
    world.cli("suspend", "web1", "alice", "--invoice", "1077")
    world.cli("suspend", "web1", "bob", "--hold", "abuse")
    world.cli("unsuspend", "web1", "alice")
    rows = world.rows("events")
    assert len(rows) >= 8
    return rows


def tamper(world: World, *sql: tuple) -> None:
    """Change the state database as another tool could, the triggers dropped first."""
    db = sqlite3.connect(world.state_db)
    db.execute("DROP TRIGGER events_append_only_update")
    db.execute("DROP TRIGGER events_append_only_delete")
    for statement, params in sql:
        db.execute(statement, params)
    db.commit()
    db.close()


def test_an_untouched_trail_verifies_and_shows_its_head(world: World) -> None:
    rows = some_events(world)
    rc, reply, out = world.cli("audit", "verify")
    assert rc == EXIT_OK and reply["checked"] == len(rows), out
    assert reply["head"] == rows[-1]["hash"] and reply["head_seq"] == rows[-1]["seq"]
    rc, _none, text = world.cli("audit", "verify", as_json=False)
    assert rc == EXIT_OK and text.startswith("audit trail intact")


def test_the_events_table_is_append_only(world: World) -> None:
    some_events(world)
    db = sqlite3.connect(world.state_db)
    for statement in ("UPDATE events SET outcome='done' WHERE seq=2",
                      "DELETE FROM events WHERE seq=2"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(statement)
    db.close()


def test_one_changed_byte_is_named(world: World) -> None:
    rows = some_events(world)
    victim = rows[3]
    tamper(world, ("UPDATE events SET at=? WHERE seq=?", (victim["at"] + 1, victim["seq"])))
    rc, reply, out = world.cli("audit", "verify")
    assert rc == EXIT_FAILED and reply["first_bad"]["seq"] == victim["seq"], out
    assert "changed" in reply["first_bad"]["problem"] and reply["checked"] == 3


def test_a_removed_event_is_named_by_the_one_after_it(world: World) -> None:
    rows = some_events(world)
    tamper(world, ("DELETE FROM events WHERE seq=?", (rows[2]["seq"],)))
    rc, reply, out = world.cli("audit", "verify")
    assert rc == EXIT_FAILED and reply["first_bad"]["seq"] == rows[3]["seq"], out
    assert "removed" in reply["first_bad"]["problem"]


def test_two_swapped_events_are_named(world: World) -> None:
    rows = some_events(world)
    a, b = rows[4], rows[5]
    cols = ("event", "case_id", "step", "outcome", "detail", "prev_hash", "hash")
    swap = [(f"UPDATE events SET {', '.join(f'{c}=?' for c in cols)} WHERE seq=?",  # noqa: S608
             (*[y[c] for c in cols], x["seq"])) for x, y in ((a, b), (b, a))]
    tamper(world, *swap)
    rc, reply, out = world.cli("audit", "verify")
    assert rc == EXIT_FAILED and reply["first_bad"]["seq"] == a["seq"], out


def test_events_from_before_the_chain_are_counted_and_the_chain_starts_after(tmp_path
                                                                            ) -> None:
    path = tmp_path / "s.db"
    old = sqlite3.connect(path)
    old.executescript(database.SCHEMA_V1)
    for step in range(1, 7):
        database.MIGRATIONS[step](old)
    old.execute("PRAGMA user_version = 7")
    old.execute("INSERT INTO events (at, event) VALUES (1.0, 'case.opened')")
    old.commit()
    old.close()
    journal = Journal(str(path))
    journal.event(2.0, "case.lifted", server="web1", kind="account", name="alice")
    from agent.journal import chain

    verdict = chain.verify(journal.db)
    journal.close()
    assert (verdict.checked, verdict.unchained, verdict.bad_seq) == (1, 1, None)
