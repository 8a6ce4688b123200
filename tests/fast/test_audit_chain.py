"""The audit events as a hash chain (issue 19 item 5): `audit verify` passes on the journal
of real calls, the table refuses UPDATE and DELETE, and with the triggers dropped (another
tool) a byte changed in one row, a row removed, or two rows swapped are each named."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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


def with_key(world: World) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = world.tmp / "audit.key"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    key.chmod(0o600)
    world.config_path.write_text(world.config_path.read_text()
                                 + f"audit_checkpoint_key: {key}\naudit_checkpoint_every: 1h\n")
    return key


def test_tick_signs_checkpoints_and_verify_checks_them(world: World) -> None:
    with_key(world)
    some_events(world)
    world.cli("tick")
    (first,) = [r for r in world.rows("events") if r["event"] == "audit.checkpoint"]
    world.cli("tick")  # nothing new, and not an hour yet: no second checkpoint
    world.clock.t += 3601
    world.cli("suspend", "web1", "alice")
    world.cli("tick")
    marks = [r for r in world.rows("events") if r["event"] == "audit.checkpoint"]
    assert len(marks) == 2 and marks[0]["seq"] == first["seq"]
    rc, reply, out = world.cli("audit", "verify")
    assert rc == EXIT_OK and reply["checkpoints"] == 2, out
    assert reply["last_checkpoint"]["seq"] == marks[1]["seq"]


def test_a_chain_rewritten_after_a_checkpoint_is_caught_by_it(world: World) -> None:
    from agent.journal import chain

    with_key(world)
    rows = some_events(world)
    rc, reply, _ = world.cli("audit", "checkpoint")
    assert rc == EXIT_OK and reply["checkpoint"]["covers_seq"] == rows[-1]["seq"]
    # Someone edits an early event and recomputes every hash after it: the chain verifies
    # again, but the signed checkpoint still names the old head.
    db = sqlite3.connect(world.state_db)
    db.row_factory = sqlite3.Row
    db.execute("DROP TRIGGER events_append_only_update")
    db.execute("UPDATE events SET outcome='forged' WHERE seq=?", (rows[1]["seq"],))
    prev = chain.GENESIS
    for row in db.execute("SELECT * FROM events ORDER BY seq").fetchall():
        digest = chain.row_hash(prev, dict(row))
        db.execute("UPDATE events SET prev_hash=?, hash=? WHERE seq=?", (prev, digest,
                                                                          row["seq"]))
        prev = digest
    db.commit()
    db.close()
    rc, reply, out = world.cli("audit", "verify")
    assert rc == EXIT_FAILED and "checkpoint" in reply["first_bad"]["problem"], out
    assert "no longer holds the head" in reply["first_bad"]["problem"]


def test_a_checkpoint_needs_a_key_readable_by_its_owner_only(world: World) -> None:
    from agent.cli import EXIT_CONFIG

    rc, _reply, out = world.cli("audit", "checkpoint")
    assert rc == EXIT_CONFIG and "audit_checkpoint_key" in out
    key = with_key(world)
    key.chmod(0o644)
    world.cli("suspend", "web1", "alice")
    rc, _reply, out = world.cli("audit", "checkpoint")
    assert rc == EXIT_CONFIG and "owner only" in out, out
