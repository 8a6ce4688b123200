"""Invoices on the billing hold, `reconcile` and `--grace-until` (issue 19 item 2) through the
CLI against the fake server: paying one of two invoices lifts nothing and says which remains
(exit 4); no invoice left lifts the hold; another hold placed meanwhile keeps the services
suspended and is named; billing's grace date holds back every further stage; a reseller's
tree the same; bad input changes nothing."""

from __future__ import annotations

import pytest

from agent.cli import EXIT_OK, EXIT_REMAINS, EXIT_USAGE
from tests.fast.conftest import HOUR, START, World
from tests.fast.test_reseller import with_tree


def test_paying_one_of_two_invoices_lifts_nothing_and_none_left_lifts_all(world: World
                                                                          ) -> None:
    pristine = world.step_files()
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--invoice", "1077",
                             "--invoice", "1076")
    assert rc == EXIT_OK and reply["invoices"] == {"billing": ["1076", "1077"]}
    suspended = world.step_files()
    world.fake.log.clear()
    # 1076 paid: billing says only 1077 is overdue now.
    rc, reply, out = world.cli("reconcile", "web1", "alice", "--overdue", "1077")
    assert rc == EXIT_REMAINS and reply["state"] == "suspended", out
    assert reply["not_lifted"] == {"holds": ["billing"], "invoices": ["1077"]}
    assert reply["invoices"] == {"billing": ["1077"]} and "1077" in reply["message"]
    assert world.fake.changing() == [] and world.step_files() == suspended
    rc, _none, text = world.cli("reconcile", "web1", "alice", "--overdue", "1077",
                                as_json=False)
    assert rc == EXIT_REMAINS and "NOT LIFTED: still held by billing; invoices overdue: 1077" \
        in text
    # A later suspend for a new invoice adds it to the hold.
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--invoice", "1080")
    assert rc == EXIT_OK and reply["invoices"] == {"billing": ["1077", "1080"]}
    events = [r["event"] for r in world.rows("events")]
    assert "hold.reconciled" in events and "hold.terms" in events
    # Everything paid: the hold is lifted, every file back.
    rc, reply, out = world.cli("reconcile", "web1", "alice", "--overdue", "none")
    assert rc == EXIT_OK and reply["state"] == "active", out
    assert "not_lifted" not in reply and world.step_files() == pristine


def test_an_abuse_hold_placed_meanwhile_keeps_it_suspended_and_is_named(world: World
                                                                        ) -> None:
    world.cli("suspend", "web1", "alice", "--invoice", "1077")
    world.cli("suspend", "web1", "alice", "--hold", "abuse", "--reason", "phishing")
    rc, reply, out = world.cli("reconcile", "web1", "alice", "--overdue", "none")
    assert rc == EXIT_REMAINS and reply["state"] == "suspended", out
    assert reply["not_lifted"] == {"holds": ["abuse"], "invoices": []}
    assert reply["holds"] == ["abuse"]


def test_reconcile_never_suspends(world: World) -> None:
    rc, reply, out = world.cli("reconcile", "web1", "alice", "--overdue", "1077")
    assert rc == EXIT_OK and reply["state"] == "active", out
    assert "never suspends" in reply["message"]
    rc, reply, out = world.cli("reconcile", "web1", "alice", "--overdue", "none")
    assert rc == EXIT_OK and reply["state"] == "active", out
    assert world.fake.changing() == [] and world.rows("cases") == []


def test_the_grace_date_holds_back_every_further_stage(world: World) -> None:
    # `ladder`: landing page now, mail after 24h, logins after 72h; billing allows no
    # escalation before the end of day 4 (START is 2023-11-14 22:13:20 UTC).
    rc, reply, _ = world.cli("suspend", "web1", "alice", "--grace-until", "2023-11-18")
    assert rc == EXIT_OK and reply["stage"] == 0
    grace = 1_700_351_999.0  # 2023-11-18T23:59:59Z
    assert reply["cases"][0]["grace_until"] == "2023-11-18T23:59:59Z"
    (case,) = world.rows("cases")
    assert case["next_due_at"] == grace
    world.clock.t = START + 72 * HOUR + 1  # both later stages due by their delays
    assert world.cli("tick")[1]["processed"] == []
    rc, reply, _ = world.cli("suspend", "web1", "alice")  # a caller's own call: the same
    assert reply["stage"] == 0
    world.clock.t = grace + 1
    rc, reply, _ = world.cli("tick")
    assert rc == EXIT_OK and reply["processed"][0]["stage"] == 2


def test_a_resellers_tree_carries_invoices_and_is_reconciled(world: World) -> None:
    with_tree(world)
    pristine = world.step_files()
    rc, reply, out = world.cli("suspend", "web1", "--reseller", "rita", "--invoice", "r-1",
                               "--invoice", "r-2")
    assert rc == EXIT_OK and reply["invoices"] == {"billing": ["r-1", "r-2"]}, out
    rc, reply, out = world.cli("reconcile", "web1", "--reseller", "rita", "--overdue", "r-2")
    assert rc == EXIT_REMAINS and reply["not_lifted"]["invoices"] == ["r-2"], out
    rc, reply, out = world.cli("reconcile", "web1", "--reseller", "rita", "--overdue", "none")
    assert rc == EXIT_OK and reply["state"] == "active", out
    assert world.step_files() == pristine


def test_the_billing_key_may_reconcile_over_ssh_with_a_key(world: World) -> None:
    world.cli("suspend", "web1", "alice", "--invoice", "1077")
    cmd = "reconcile web1 alice --overdue none --idempotency-key whmcs:1:paid:1077"
    rc, first, out = world.cli("serve-ssh", env={"SSH_ORIGINAL_COMMAND": cmd})
    assert rc == EXIT_OK and first["state"] == "active", out
    rc, again, out = world.cli("serve-ssh", env={"SSH_ORIGINAL_COMMAND": cmd})
    assert rc == EXIT_OK and again["idempotency"]["replayed"] is True, out


@pytest.mark.parametrize("args", [
    ("suspend", "web1", "alice", "--invoice", "10 77"),
    ("suspend", "web1", "alice", "--invoice", "-1"),
    ("suspend", "web1", "alice", "--hold", "abuse", "--invoice", "1077"),
    ("suspend", "web1", "alice", "--grace-until", "2023-02-30"),
    ("suspend", "web1", "alice", "--grace-until", "next week"),
    ("reconcile", "web1", "alice", "--overdue", "none", "--overdue", "1077"),
    ("reconcile", "web1", "alice", "--hold", "abuse", "--overdue", "none"),
    ("reconcile", "web1", "alice"),
])
def test_bad_billing_input_is_2_and_changes_nothing(world: World, args: tuple) -> None:
    rc, reply, out = world.cli(*args)
    assert rc == EXIT_USAGE, out
    assert world.fake.changing() == [] and world.rows("cases") == []


def test_the_grace_date_holds_back_a_resellers_tree_too(world: World) -> None:
    with_tree(world)
    rc, reply, out = world.cli("suspend", "web1", "--reseller", "rita", "--grace-until",
                               "2023-11-18")
    assert rc == EXIT_OK and reply["stage"] == 0, out
    world.clock.t = START + 72 * HOUR + 1
    rc, reply, out = world.cli("status", "web1", "--reseller", "rita")
    assert reply["stage"] == 0
    world.cli("tick")
    rc, reply, out = world.cli("status", "web1", "--reseller", "rita")
    assert reply["stage"] == 0, out  # billing allows nothing more before its date
    world.clock.t = 1_700_351_999.0 + 1
    world.cli("tick")
    rc, reply, out = world.cli("status", "web1", "--reseller", "rita")
    assert reply["stage"] == 2, out
