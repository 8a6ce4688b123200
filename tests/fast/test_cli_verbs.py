"""The CLI's verbs in-process against the fake server: status, history, plan, check,
preview-landing, serve-ssh, --dry-run, and a lost state database."""

from __future__ import annotations

import sys

import pytest

from agent import cli
from agent.cli import EXIT_BUSY, EXIT_FAILED, EXIT_OK, EXIT_REMAINS, EXIT_USAGE
from agent.errors import Unreachable
from tests.fast.conftest import START, World, close_audit
from tests.fast.fake_steps import step_path
from tests.fast.fakes import is_

LANDING = step_path("landing_page", "alice")


def test_status_of_everything_of_a_server_and_of_one_account(world: World) -> None:
    rc, reply, _out = world.cli("status")
    assert rc == EXIT_OK and reply == {"ok": True, "targets": []}
    assert world.cli("status", as_json=False)[2].strip() == "nothing is suspended"
    world.cli("suspend", "web1", "alice")
    world.cli("suspend", "web1", "bob", "--hold", "abuse")
    rc, reply, _out = world.cli("status")
    assert rc == EXIT_OK and [t["target"]["name"] for t in reply["targets"]] == ["alice", "bob"]
    rc, reply, _out = world.cli("status", "web1")
    assert rc == EXIT_OK and [t["holds"] for t in reply["targets"]] == [["billing"], ["abuse"]]
    rc, reply, _out = world.cli("status", "web1", "bob")
    assert rc == EXIT_OK and reply["state"] == "suspended" and reply["holds"] == ["abuse"]
    rc, _reply, out = world.cli("status", "web1", as_json=False)
    assert "web1 account alice: suspended (holds: billing)" in out
    assert "pending  mail_block" in out
    assert world.cli("status", "web9")[0] == EXIT_USAGE


def test_status_still_answers_when_the_server_is_away(world: World) -> None:
    world.cli("suspend", "web1", "alice")
    world.fake.fail(lambda _argv: True, Unreachable("web1: no route"), times=-1)
    rc, reply, out = world.cli("status", "web1")
    assert rc == EXIT_OK and reply["targets"][0]["state"] == "suspended", out
    assert "no route" in reply["warnings"][0]


def test_history_as_json_and_as_a_table(world: World) -> None:
    world.cli("suspend", "web1", "alice", "--reason", "inv 7")
    rc, reply, _out = world.cli("history", "web1", "alice")
    assert rc == EXIT_OK and reply["ok"] is True
    opened = reply["events"][0]
    assert opened["event"] == "case.opened" and opened["detail"]["reason"] == "inv 7"
    rc, _reply, out = world.cli("history", "web1", "alice", as_json=False)
    assert rc == EXIT_OK and "case.opened" in out and "step.applied" in out
    assert world.cli("history", "web1", "bob", as_json=False)[2].strip() == "no history"


def test_plan_shows_the_whole_ladder_and_changes_nothing(world: World) -> None:
    rc, reply, out = world.cli("plan", "web1", "alice")
    assert rc == EXIT_OK, out
    assert [[s["step"] for s in st["steps"]] for st in reply["stages"]] == [
        ["backup", "landing_page"], ["mail_block"], ["ftp_lock", "db_lock", "panel_lock"]]
    rc, reply, out = world.cli("plan", "web1", "alice", "--playbook", "firewall")
    fw = reply["stages"][0]["steps"][1]
    assert rc == EXIT_OK and fw["scope"] == "server" and "--whole-server" in fw["actions"][0]
    world.fake.fail(is_("read", LANDING))
    rc, reply, out = world.cli("plan", "web1", "alice")
    assert rc == EXIT_FAILED and reply["errors"][0]["step"] == "landing_page", out
    assert world.fake.changing() == [] and world.rows("cases") == []


def test_check_is_1_for_missing_parts_and_75_for_an_unreachable_server(world: World) -> None:
    rc, reply, out = world.cli("check")
    assert rc == EXIT_FAILED, out
    assert reply["servers"][0]["server"] == "web1" and "reachable" in reply["servers"][0]["lines"]
    world.fake.fail(is_("true"), Unreachable("web1: connect timed out"))
    rc, reply, out = world.cli("check", "web1")
    assert rc == EXIT_BUSY and reply["servers"][0]["unreachable"] is True, out
    assert not [a for a in world.fake.log if a[0] in ("write", "rm", "reload")]


def test_preview_landing_renders_the_branded_page(world: World) -> None:
    rc, _reply, out = world.cli("preview-landing", "--language", "de", as_json=False)
    assert rc == EXIT_OK and 'lang="de"' in out
    assert world.cli("preview-landing", "--language", "xx")[0] == EXIT_USAGE


def test_serve_ssh_runs_only_the_billing_verbs_and_records_the_key(world: World) -> None:
    # As in authorized_keys: `suspension-agent serve-ssh --caller whmcs`, no --json of its own.
    rc, reply, out = world.cli("serve-ssh", "--caller", "whmcs", as_json=False, env={
        "SSH_ORIGINAL_COMMAND": "suspend web1 alice --reason 'inv 9'"})
    assert rc == EXIT_OK and reply is None and '"state": "suspended"' in out
    events = world.engine().history("web1", "alice")
    assert {e["caller"] for e in events} == {"ssh:whmcs"}
    for command in ("tick", "status --config=/etc/shadow", "suspend web1 alice; rm -rf /", ""):
        rc, reply, out = world.cli("serve-ssh", env={"SSH_ORIGINAL_COMMAND": command})
        assert rc == EXIT_USAGE and reply is not None and reply["ok"] is False, command
        rc, _reply, out = world.cli("serve-ssh", as_json=False,
                                    env={"SSH_ORIGINAL_COMMAND": command})
        assert rc == EXIT_USAGE and "Traceback" not in out, command
    assert len(world.rows("cases")) == 1 and b"\nblock" in world.fake.files[LANDING].data
    rc, _reply, out = world.cli("serve-ssh", as_json=False, env={
        "SSH_ORIGINAL_COMMAND": "--dry-run unsuspend web1 alice"})
    assert rc == EXIT_OK and '"plan"' in out and world.states()["landing_page"] == "done"


def test_serve_ssh_refusals_are_json_too(world: World) -> None:
    rc, reply, out = world.cli("serve-ssh", "--caller", "whmcs", as_json=False,
                               env={"SSH_ORIGINAL_COMMAND": "tick"})
    assert rc == EXIT_USAGE
    assert '"ok": false' in out


def test_dry_run_prints_the_plan_and_changes_nothing(world: World) -> None:
    world.cli("status")  # creates the state database
    rows, files = world.rows("events"), world.fake.snapshot()
    rc, reply, out = world.cli("--dry-run", "suspend", "web1", "alice")
    assert rc == EXIT_OK and [p["step"] for p in reply["plan"]] == ["backup", "landing_page"]
    rc, _reply, out = world.cli("--dry-run", "suspend", "web1", "alice", as_json=False)
    assert "landing_page (stage 0) would:" in out and f"write {LANDING}" in out
    assert world.rows("events") == rows and world.rows("cases") == []
    assert world.fake.snapshot() == files and world.fake.changing() == []
    world.clock.t = START + 86400
    rc, _reply, out = world.cli("--dry-run", "tick", as_json=False)
    assert rc == EXIT_OK and out.strip() == "nothing due"


def test_unsuspend_text_says_which_hold_remains(world: World) -> None:
    world.cli("suspend", "web1", "alice")
    world.cli("suspend", "web1", "alice", "--hold", "abuse")
    rc, _reply, out = world.cli("unsuspend", "web1", "alice", as_json=False)
    # Nothing failed, but the services stay suspended: exit 4, and the text says why.
    assert rc == EXIT_REMAINS and "note: hold billing lifted; still held by abuse" in out
    assert "NOT LIFTED: still held by abuse" in out
    rc, reply, _out = world.cli("unsuspend", "web1", "alice", "--hold", "abuse")
    assert rc == EXIT_OK and [r["step"] for r in reply["reverted"]][0] == "landing_page"


def test_a_lost_state_database_is_rebuilt_from_the_server_record(world: World) -> None:
    pristine = world.step_files()
    rc, reply, out = world.cli("suspend", "web1", "alice", "--playbook", "now")
    case_id = reply["cases"][0]["id"]
    for suffix in ("", "-wal", "-shm"):
        world.state_db.with_name("state.db" + suffix).unlink(missing_ok=True)
    rc, reply, out = world.cli("status", "web1", "alice")
    assert rc == EXIT_FAILED and case_id in reply["errors"][0]["message"], out
    rc, reply, out = world.cli("unsuspend", "web1", "alice")
    assert rc == EXIT_OK and reply["state"] == "active", out
    assert world.step_files() == pristine


def test_main_reads_sys_argv(world: World, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    close_audit()  # main() configures its own audit log
    monkeypatch.setattr(sys, "argv", ["suspension-agent", "--config",
                                      str(world.config_path), "--json", "status"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == EXIT_OK and '"targets": []' in capsys.readouterr().out


def test_the_history_table_counts_what_visitors_saw_and_prints_no_bodies() -> None:
    from agent.cli.render import history_text

    event = {"at": 0.0, "event": "step.applied", "step": "landing_page", "outcome": "done",
             "hold": "billing", "caller": "admin:root",
             "detail": {"actions": ["a", "b"], "seen": [{"url": "http://x/"}] * 3,
                        "bodies": {"ab12": "PGh0bWw+" * 100}}}
    line = history_text([event])
    assert "actions=2 lines" in line and "seen=3 replies" in line and "PGh0bWw+" not in line
