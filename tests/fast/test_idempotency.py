"""--idempotency-key through the CLI against the fake server (issue 19, item 1): a retried
call acts once and replays its first reply; another request under the same key, a key
whose first call still runs, a killed first call, failures that must not be kept, callers
kept apart, retention and its purge by tick."""

from __future__ import annotations

import os

import pytest

from agent.cli import EXIT_BUSY, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from agent.journal.idempotency import owner_id, request_hash
from tests.fast.conftest import HOUR, World
from tests.fast.fake_steps import step_path
from tests.fast.fakes import is_

KEY = "whmcs:1:77:suspend:2026-12-01:ab12cd34"


def without_replayed(reply: dict) -> dict:
    return reply | {"idempotency": reply["idempotency"] | {"replayed": None}}


def test_the_same_suspend_three_times_acts_once_and_another_request_is_refused(world: World
                                                                               ) -> None:
    rc, first, _ = world.cli("suspend", "web1", "alice", "--idempotency-key", KEY)
    assert rc == EXIT_OK and first["state"] == "suspended"
    assert first["idempotency"]["key"] == KEY and first["idempotency"]["replayed"] is False
    changed = world.fake.snapshot()
    for _ in range(2):
        world.fake.log.clear()
        rc, again, _ = world.cli("suspend", "web1", "alice", "--idempotency-key", KEY)
        assert rc == EXIT_OK and again["idempotency"]["replayed"] is True
        assert without_replayed(again) == without_replayed(first)
        assert world.fake.log == []  # nothing asked of the server: the reply is replayed
    events = [r for r in world.rows("events") if r["event"] == "idempotency.replayed"]
    assert len(events) == 2
    # The same key with another playbook: exit 2, nothing done, nothing kept.
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--playbook", "now",
                             "--idempotency-key", KEY)
    assert rc == EXIT_USAGE and reply["errors"][0]["code"] == "idempotency_key_mismatch"
    assert world.fake.snapshot() == changed and world.fake.changing() == []
    # The text reply of a replay says it is one.
    rc, _none, text = world.cli("suspend", "web1", "alice", "--idempotency-key", KEY,
                                as_json=False)
    assert rc == EXIT_OK and "replayed: the reply of the first call" in text


def test_an_unsuspend_key_is_its_own_and_callers_do_not_share_keys(world: World) -> None:
    world.cli("suspend", "web1", "alice")
    rc, reply, _ = world.cli("unsuspend", "web1", "alice", "--idempotency-key", "u-1")
    assert rc == EXIT_OK and reply["state"] == "active"
    # Another caller with the same key string is another key: it runs (and finds nothing
    # to lift), its reply not replayed from the first caller's.
    rc, other, _ = world.cli("unsuspend", "web1", "alice", "--idempotency-key", "u-1",
                             env={"SUSPENSION_AGENT_CALLER": "ssh:billing"})
    assert rc == EXIT_OK and other["idempotency"]["replayed"] is False
    rc, again, _ = world.cli("unsuspend", "web1", "alice", "--idempotency-key", "u-1")
    assert rc == EXIT_OK and again["idempotency"]["replayed"] is True


def claim_as(world: World, owner: str, key: str, digest: str) -> None:
    """A key row as another process left it while running the request."""
    from agent.journal.journal import Journal

    journal = Journal(str(world.state_db))
    journal.db.execute("INSERT INTO idempotency (caller, key, request_hash, state, owner, "
                       "created_at) VALUES (?, ?, ?, 'in_flight', ?, ?)",
                       ("admin:test", key, digest, owner, world.clock.t))
    journal.close()


DIGEST = request_hash("suspend", {"server": "web1", "kind": "account", "name": "alice",
                                  "playbook": None, "hold": "billing", "reason": None,
                                  "invoices": [], "grace_until": None})


def test_a_key_whose_first_call_still_runs_is_75_and_a_dead_ones_is_taken_over(
        world: World) -> None:
    env = {"SUSPENSION_AGENT_CALLER": "admin:test"}
    world.cli("status")  # the journal exists
    claim_as(world, owner_id(1), "k-live", DIGEST)  # pid 1 runs: a live first call
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--idempotency-key", "k-live",
                             env=env)
    assert rc == EXIT_BUSY and reply["errors"][0]["code"] == "idempotency_in_flight"
    assert world.fake.changing() == []
    # A first call killed (its owner is gone): the next call takes the key over and runs.
    claim_as(world, "999999999:1", "k-dead", DIGEST)
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--idempotency-key", "k-dead",
                             env=env)
    assert rc == EXIT_OK and reply["state"] == "suspended", reply
    assert reply["idempotency"]["replayed"] is False
    rc, again, _ = world.cli("suspend", "web1", "alice", "--idempotency-key", "k-dead",
                             env=env)
    assert rc == EXIT_OK and again["idempotency"]["replayed"] is True


def test_a_failed_call_is_not_kept_so_its_retry_runs_again(world: World) -> None:
    world.fake.fail(is_("write", step_path("landing_page", "alice")), 1)
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--idempotency-key", "k-fail")
    assert rc == EXIT_FAILED and reply["idempotency"]["replayed"] is False
    assert world.rows("idempotency") == []  # released: exit 1 is never kept
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--idempotency-key", "k-fail")
    assert rc == EXIT_OK and reply["state"] == "suspended"
    assert reply["idempotency"]["replayed"] is False


def test_kept_replies_expire_and_tick_purges_them(world: World) -> None:
    world.cli("suspend", "web1", "alice", "--idempotency-key", "k-old")
    assert [r["state"] for r in world.rows("idempotency")] == ["done"]
    world.clock.t += 35 * 24 * HOUR + 1
    world.cli("tick")
    assert world.rows("idempotency") == []
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--idempotency-key", "k-old")
    assert rc == EXIT_OK and reply["idempotency"]["replayed"] is False  # a new request


@pytest.mark.parametrize("args", [
    ("suspend", "web1", "alice", "--idempotency-key", "bad key"),
    ("suspend", "web1", "alice", "--idempotency-key", "-x"),
    ("suspend", "web1", "alice", "--idempotency-key", "x" * 256),
    ("--dry-run", "suspend", "web1", "alice", "--idempotency-key", "k-dry"),
])
def test_a_bad_key_or_a_dry_run_with_a_key_is_2_and_changes_nothing(world: World,
                                                                     args: tuple) -> None:
    rc, reply, out = world.cli(*args)
    assert rc == EXIT_USAGE, out
    assert world.fake.changing() == [] and world.rows("cases") == []
    assert not os.path.exists(world.state_db) or world.rows("idempotency") == []


def test_the_billing_key_may_send_a_key_over_ssh(world: World) -> None:
    rc, first, out = world.cli("serve-ssh", env={
        "SSH_ORIGINAL_COMMAND": f"suspend web1 alice --idempotency-key {KEY}"})
    assert rc == EXIT_OK and first["idempotency"]["replayed"] is False, out
    rc, again, out = world.cli("serve-ssh", env={
        "SSH_ORIGINAL_COMMAND": f"suspend web1 alice --idempotency-key {KEY}"})
    assert rc == EXIT_OK and again["idempotency"]["replayed"] is True, out


@pytest.mark.parametrize("value, ok", [("2d", True), ("10m", False), ("soon", False)])
def test_the_retention_is_a_delay_of_at_least_an_hour(world: World, value: str, ok: bool
                                                      ) -> None:
    from agent.cli import EXIT_CONFIG

    world.config_path.write_text(world.config_path.read_text()
                                 + f"idempotency_retention: {value}\n")
    rc, reply, out = world.cli("suspend", "web1", "alice", "--idempotency-key", "k-ret")
    if ok:
        assert rc == EXIT_OK, out
        (row,) = world.rows("idempotency")
        assert row["expires_at"] - row["created_at"] == 2 * 24 * HOUR
    else:
        assert rc == EXIT_CONFIG and "idempotency_retention" in out, out
        assert world.fake.changing() == []
