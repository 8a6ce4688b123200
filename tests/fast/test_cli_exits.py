"""The CLI's entry point in-process: one exit code per kind of outcome and error (design
section 5: 0 done, 1 failed, 2 bad input, 3 partial, 75 retry, 78 bad config), always one
JSON object with --json, never a traceback."""

from __future__ import annotations

import pytest

from agent.cli import EXIT_BUSY, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from agent.engine.locks import target_lock
from agent.errors import AuthFailed, CommandTimeout, HostKeyRefused, Unreachable
from tests.fast.conftest import HOUR, START, World
from tests.fast.fake_steps import step_path
from tests.fast.fakes import is_

CONTRACT = {"ok", "target", "state", "holds", "stage", "applied", "pending", "errors"}


def assert_error_reply(reply: dict | None, out: str, needle: str) -> None:
    assert reply is not None, out
    assert reply["ok"] is False and needle in reply["errors"][0]["message"], out
    assert "Traceback" not in out


def test_done_is_0_with_the_contract_keys(world: World) -> None:
    rc, reply, out = world.cli("suspend", "web1", "alice", "--reason", "inv 1042")
    assert rc == EXIT_OK, out
    assert reply is not None and CONTRACT <= set(reply) and reply["ok"] is True
    assert reply["target"] == {"server": "web1", "kind": "account", "name": "alice"}
    assert reply["state"] == "suspended" and reply["holds"] == ["billing"]
    assert world.fake.closed == 1  # the call released its connection


def test_failed_and_rolled_back_is_1(world: World) -> None:
    world.fake.fail(is_("reload", "landing_page"))
    rc, reply, out = world.cli("suspend", "web1", "alice")
    assert rc == EXIT_FAILED, out
    assert reply is not None and reply["errors"][0]["step"] == "landing_page"
    assert reply["state"] == "active"


def test_a_stuck_revert_is_3_and_so_is_every_call_until_it_is_undone(world: World) -> None:
    world.fake.fail(is_("reload", "ftp_lock"))
    world.fake.fail(is_("rm", "-f", "--", step_path("mail_block", "alice")), times=2)
    rc, reply, out = world.cli("suspend", "web1", "alice", "--playbook", "now")
    assert rc == EXIT_PARTIAL and reply is not None and reply["state"] == "partial", out
    assert {"stuck": "mail_block"}.items() <= reply["cases"][0].items()
    rc, reply, out = world.cli("suspend", "web1", "alice", "--playbook", "now")
    assert rc == EXIT_PARTIAL and "nothing new was applied" in reply["message"], out
    rc, _reply, out = world.cli("status", "web1", "alice", as_json=False)
    assert "STUCK    mail_block" in out
    rc, reply, out = world.cli("suspend", "web1", "alice", "--playbook", "now")
    assert rc == EXIT_OK and reply["state"] == "suspended", out


@pytest.mark.parametrize("args", [
    ["suspend", "web1", "alice;id"],
    ["suspend", "web1", "../alice"],
    ["suspend", "web9", "alice"],
    ["suspend", "web1", "root"],
    ["suspend", "web1", "eve"],
    ["suspend", "web1", "--reseller", "r1"],
    ["unsuspend", "web1", "alice", "--whole-server"],
    ["suspend", "web1"],
    ["suspend", "web1", "alice", "--playbook", "nope"],
    ["suspend", "web1", "alice", "--playbook", "../ladder"],
    ["suspend", "web1", "alice", "--playbook", "firewall"],
    ["suspend", "web1", "alice", "--hold", "police"],
    ["suspend", "web1", "alice", "--bogus"],
    ["frobnicate"],
    ["history", "web1", "Alice"],
])
def test_bad_input_is_2_and_changes_nothing(world: World, args: list[str]) -> None:
    rc, reply, out = world.cli(*args)
    assert rc == EXIT_USAGE, out
    assert reply is not None and reply["ok"] is False and reply.get("exit", 2) == 2, out
    assert "Traceback" not in out
    assert world.rows("cases") == [] and world.fake.changing() == []


def test_bad_input_without_json_goes_to_stderr(world: World) -> None:
    rc, reply, out = world.cli("suspend", "web1", "alice;id", as_json=False)
    assert rc == EXIT_USAGE and reply is None
    assert "suspension-agent: account name 'alice;id' is not valid" in out
    rc, _reply, out = world.cli("suspend", as_json=False)
    assert rc == EXIT_USAGE and "Missing argument" in out


def test_a_bad_test_clock_is_bad_input(world: World) -> None:
    rc, reply, out = world.cli("status", env={"SUSPENSION_AGENT_TEST_NOW": "noon"})
    assert rc == EXIT_USAGE
    assert_error_reply(reply, out, "epoch seconds")


def test_busy_target_is_75(world: World) -> None:
    with target_lock(str(world.state_db), "web1.account.alice", 0):
        rc, reply, out = world.cli("unsuspend", "web1", "alice")
    assert rc == EXIT_BUSY
    assert_error_reply(reply, out, "busy")


def test_unreachable_is_75_with_the_state_and_the_next_call_finishes(world: World) -> None:
    world.fake.fail(is_("reload", "landing_page"), Unreachable("web1: connection reset"))
    rc, reply, out = world.cli("suspend", "web1", "alice")
    assert rc == EXIT_BUSY and reply is not None, out
    # (state reads "partial" while an intent is open; the exit code says: retry)
    assert reply["state"] != "active" and "connection reset" in reply["errors"][0]["message"]
    assert world.states()["landing_page"] == "intent"
    rc, reply, out = world.cli("suspend", "web1", "alice")
    assert rc == EXIT_OK and world.states()["landing_page"] == "done", out


def test_tick_exit_takes_the_worst_outcome(world: World) -> None:
    for name in ("alice", "bob"):
        assert world.cli("suspend", "web1", name)[0] == EXIT_OK
    world.clock.t = START + 24 * HOUR
    world.fake.fail(is_("write", step_path("mail_block", "bob")), Unreachable("lost"))
    rc, reply, out = world.cli("tick")
    assert rc == EXIT_BUSY and reply is not None and len(reply["processed"]) == 2, out
    world.clock.t += HOUR
    world.fake.fail(is_("write", step_path("mail_block", "bob")), 1)
    rc, reply, out = world.cli("tick")
    assert rc == EXIT_FAILED and [p["ok"] for p in reply["processed"]] == [False], out
    world.clock.t += 24 * HOUR
    rc, reply, out = world.cli("tick", as_json=False)
    assert rc == EXIT_OK and "web1 account bob: suspended" in out


@pytest.mark.parametrize("text", ["servers: {}\n", "state_db: [\n", "bogus_key: 1\nservers:\n"
                                  "  web1: {panel: plesk}\n"])
def test_bad_config_is_78(world: World, text: str) -> None:
    world.config_path.write_text(text)
    rc, reply, out = world.cli("status")
    assert rc == EXIT_CONFIG
    assert_error_reply(reply, out, "bad config")


def test_missing_config_and_broken_playbook_are_78(world: World) -> None:
    rc, reply, out = world.cli("--config", str(world.tmp / "nope.yaml"), "status")
    assert rc == EXIT_CONFIG
    assert_error_reply(reply, out, "cannot read config")
    rc, reply, out = world.cli("suspend", "web1", "alice", "--playbook", "broken")
    assert rc == EXIT_CONFIG
    assert_error_reply(reply, out, "malformed YAML")


@pytest.mark.parametrize("damage", [b"this is not sqlite" * 300, b""])
def test_an_unreadable_state_database_is_78_json(world: World, damage: bytes) -> None:
    assert world.cli("status")[0] == EXIT_OK
    for suffix in ("-wal", "-shm"):
        world.state_db.with_name("state.db" + suffix).unlink(missing_ok=True)
    data = world.state_db.read_bytes()
    world.state_db.write_bytes(damage or data[:100])
    for verb in (["status"], ["tick"], ["suspend", "web1", "alice"], ["history", "web1", "alice"]):
        rc, reply, out = world.cli(*verb)
        assert rc == EXIT_CONFIG, (verb, out)
        assert_error_reply(reply, out, str(world.state_db))
    assert world.fake.changing() == []


@pytest.mark.parametrize(("error", "code"), [
    (AuthFailed("web1: the server refused the key"), EXIT_CONFIG),
    (HostKeyRefused("web1: host key changed"), EXIT_CONFIG),
    (CommandTimeout("web1: `getent` did not finish within 300s"), EXIT_FAILED),
])
def test_transport_errors_map_to_their_exit(world: World, error: Exception, code: int) -> None:
    world.fake.fail(lambda _argv: True, error)
    rc, reply, out = world.cli("suspend", "web1", "alice")
    assert rc == code
    assert_error_reply(reply, out, str(error))


@pytest.mark.parametrize("error", [AuthFailed("web1: the API token was refused"),
                                   HostKeyRefused("web1: host key changed")])
def test_tick_with_refused_credentials_is_78_and_goes_on_with_other_cases(
        world: World, error: Exception) -> None:
    for name in ("alice", "bob"):
        assert world.cli("suspend", "web1", name)[0] == EXIT_OK
    world.clock.t = START + 24 * HOUR
    world.fake.fail(is_("write", step_path("mail_block", "bob")), error)
    rc, reply, out = world.cli("tick")
    assert rc == EXIT_CONFIG and reply is not None, out
    by_name = {p["target"]["name"]: p for p in reply["processed"]}
    assert by_name["alice"]["ok"] and not by_name["bob"]["ok"], out
    assert str(error) in by_name["bob"]["errors"][0]["message"]
    assert world.rows("events")[-1]["event"] == "server.refused"
    world.clock.t += HOUR
    rc, reply, out = world.cli("tick")
    assert rc == EXIT_OK and [p["target"]["name"] for p in reply["processed"]] == ["bob"], out
