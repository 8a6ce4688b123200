"""The whole-server target in-process against the fake server: the tree from the config's
admins and the passwd database, logins first, root, the agent's own login and protected
accounts never touched, provenance, tick, the reversal, and the CLI around it."""

from __future__ import annotations

import pytest

from agent.errors import BadInput
from tests.fast.conftest import HOUR, START, World
from tests.fast.fake_steps import step_path
from tests.fast.test_reseller import landing_writes, reloads

ADMINS = "    admins: [ops]\n"


def on_server(world: World, extra: str = ADMINS) -> None:
    """Give web1 its admins and the fake server a passwd database with every kind of entry:
    customers, an admin, a protected account, a system account and the agent's own."""
    text = world.config_path.read_text().replace("    linux:\n", extra + "    linux:\n")
    world.config_path.write_text(text)
    world.fake.accounts.update({"ops": "/home/ops", "backup": "/var/backups",
                                "www-data": "/var/www", "root": "/root",
                                "nobody": "/nonexistent"})
    world.fake.uids.update({"www-data": 33, "root": 0, "nobody": 65534})


@pytest.fixture
def server(world: World) -> World:
    on_server(world)
    return world


def touched(world: World) -> set[str]:
    """Return every account a fake step wrote, removed or reloaded for."""
    found = set()
    for a in world.fake.log:
        if a[0] == "reload" and len(a) > 2:
            found.add(a[2])
        elif a[0] in ("write", "rm") and a[-1].startswith("/etc/fake/"):
            found.add(a[-1].rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return found


def test_admins_first_then_every_customer_and_never_root_or_the_protected(server: World
                                                                          ) -> None:
    o = server.engine().suspend_server("web1", "ladder", "billing", "server rent", False)
    assert o.ok and o.state == "suspended" and o.holds == ["billing"], o
    assert o.target == {"server": "web1", "kind": "server", "name": "web1"}
    done = reloads(server)
    assert [n for s, n in done if s == "panel_lock"] == ["ops"]
    first_landing = min(i for i, (s, _n) in enumerate(done) if s == "landing_page")
    assert max(i for i, (s, _n) in enumerate(done) if s == "panel_lock") < first_landing
    assert sorted(landing_writes(server)) == ["alice", "bob", "ops"]
    # "web1": the server's own change, the landing page of its bare addresses.
    assert touched(server) <= {"alice", "bob", "ops", "*", "web1"}
    assert [a["step"] for a in o.applied if a.get("scope") == "server"] == ["server_landing"]
    kids = {c["account"]: c for c in o.children}
    assert set(kids) == {"alice", "bob", "ops"}
    assert kids["ops"]["role"] == "login+account" and kids["alice"]["role"] == "account"
    (parent,) = [c for c in server.rows("cases") if c["kind"] == "server"]
    assert parent["name"] == "web1" and parent["reason"] == "server rent"
    # Run twice: nothing changes the second time.
    server.fake.log.clear()
    again = server.engine().suspend_server("web1", "ladder", "billing", None, False)
    assert again.ok and not any(a["changed"] for a in again.applied)
    assert server.fake.changing() == []


def test_unsuspend_puts_every_file_back_and_an_account_held_before_stays(server: World
                                                                         ) -> None:
    pristine = server.step_files()
    server.engine().suspend("web1", "bob", "now", "abuse", "spam", False)
    bob_files = {p: v for p, v in server.step_files().items() if "/bob." in p}
    server.engine().suspend_server("web1", "ladder", "billing", None, False)
    server.clock.t = START + 72 * HOUR
    (ticked,) = server.engine().tick()
    assert ticked.stage == 2 and ticked.ok, ticked
    mine = server.engine().unsuspend("web1", "alice", "billing", False)
    assert mine.state == "suspended" and "(a whole-server case)" in mine.message, mine
    o = server.engine().unsuspend_server("web1", "billing", False)
    kids = {c["account"]: c for c in o.children}
    assert kids["alice"]["state"] == "active" and kids["ops"]["state"] == "active"
    assert kids["bob"]["state"] == "suspended" and kids["bob"]["holds"] == ["abuse"]
    # bob keeps what the abuse case put on it (and what the server's stages added on top
    # of it, which stays while bob is held: it comes off with bob's last case).
    assert bob_files.items() <= server.step_files().items()
    assert server.engine().unsuspend("web1", "bob", "abuse", False).state == "active"
    assert server.step_files() == pristine
    assert server.engine().unsuspend_server("web1", "billing", False).message == (
        "nothing to lift")


def test_a_reseller_case_inside_the_server_keeps_its_accounts(server: World) -> None:
    text = server.config_path.read_text().replace(
        ADMINS, ADMINS + "    resellers:\n      rita: {accounts: [alice]}\n")
    server.config_path.write_text(text)
    server.fake.accounts["rita"] = "/home/rita"
    server.engine().suspend_reseller("web1", "rita", "ladder", "billing", None, False)
    o = server.engine().suspend_server("web1", "ladder", "billing", None, False)
    assert [n for s, n in reloads(server) if s == "panel_lock"] == ["rita", "ops"]
    o = server.engine().unsuspend_server("web1", "billing", False)
    kids = {c["account"]: c for c in o.children}
    assert kids["alice"]["state"] == "suspended" and kids["bob"]["state"] == "active"
    assert "another reseller case" in kids["alice"]["message"], kids["alice"]
    assert server.engine().unsuspend_reseller("web1", "rita", "billing", False).ok
    assert server.engine().report(("web1", "account", "alice")).state == "active"


def test_tick_gives_a_new_account_the_stages_already_reached(server: World) -> None:
    server.engine().suspend_server("web1", "ladder", "billing", None, False)
    server.clock.t = START + HOUR
    server.fake.accounts["dave"] = "/home/dave"
    server.fake.log.clear()
    (o,) = server.engine().tick()
    assert landing_writes(server) == ["dave"]
    assert next(c for c in o.children if c["account"] == "dave")["state"] == "suspended"
    # Nothing new, nothing due: the passwd database is read (to notice new accounts), and
    # the server's own change in effect (its page on the bare addresses) is checked: the
    # case's record is read; nothing is changed.
    server.fake.log.clear()
    assert server.engine().tick() == [] and server.fake.changing() == []
    assert server.fake.log[0] == ["getent", "passwd"] and all(
        a[0] in ("getent", "read", "stat") for a in server.fake.log), server.fake.log


def test_an_unusable_passwd_name_stops_the_call_before_anything_changes(server: World
                                                                        ) -> None:
    server.fake.accounts["Bad;Name"] = "/home/bad"
    with pytest.raises(BadInput, match=r"Bad;Name.*protected_accounts"):
        server.engine().suspend_server("web1", "ladder", "billing", None, False)
    assert server.fake.changing() == [] and server.rows("cases") == []


def test_an_admin_the_server_lacks_is_78_naming_the_entry(server: World) -> None:
    del server.fake.accounts["ops"]
    code, reply, _ = server.cli("suspend", "web1", "--whole-server")
    assert code == 78 and "servers.web1.admins[0]" in reply["errors"][0]["message"], reply
    assert server.fake.changing() == [] and server.rows("cases") == []


@pytest.mark.parametrize("admins, why", [
    ("[root]", "never locked"), ("['o;id']", "not valid"), ("[ops, '../x']", "not valid"),
    ("ops", "list of strings"),
])
def test_bad_admins_are_config_errors(world: World, admins: str, why: str) -> None:
    on_server(world, f"    admins: {admins}\n")
    code, reply, _ = world.cli("suspend", "web1", "--whole-server")
    assert code == 78 and why in reply["errors"][0]["message"], reply
    assert "admins" in reply["errors"][0]["message"]
    assert world.fake.log == [] and world.rows("cases") == []


@pytest.mark.parametrize("args", [
    ("suspend", "web1", "alice", "--whole-server"),
    ("suspend", "web1", "--reseller", "rita", "--whole-server"),
    ("unsuspend", "web1", "alice", "--whole-server"),
    ("plan", "web1", "alice", "--whole-server"),
    ("history", "web1"),
    ("status", "--whole-server"),
    ("suspend", "nosuch", "--whole-server"),
])
def test_two_targets_or_none_is_exit_2_and_changes_nothing(server: World,
                                                           args: tuple[str, ...]) -> None:
    code, reply, _ = server.cli(*args)
    assert code == 2, reply
    assert server.fake.changing() == [] and server.rows("cases") == []


def test_dry_run_plans_every_child_and_changes_nothing(server: World) -> None:
    code, reply, _ = server.cli("--dry-run", "suspend", "web1", "--whole-server")
    assert code == 0, reply
    planned = {(p.get("account"), p["step"]) for p in reply["plan"]}
    assert ("ops", "panel_lock") in planned and ("bob", "landing_page") in planned
    assert (None, "server_landing") in planned  # the server's own: its bare addresses
    assert not {p.get("account") for p in reply["plan"]} & {"root", "backup", "www-data"}
    assert server.fake.changing() == [] and server.rows("cases") == []


def test_status_plan_history_and_check_of_the_whole_server(server: World) -> None:
    code, reply, _ = server.cli("suspend", "web1", "--whole-server", "--playbook", "ladder")
    assert code == 0 and reply["target"]["kind"] == "server", reply
    code, reply, _ = server.cli("status", "web1", "--whole-server")
    assert code == 0 and {c["account"] for c in reply["children"]} == {"alice", "bob", "ops"}
    code, reply, _ = server.cli("plan", "web1", "--whole-server", "--playbook", "ladder")
    assert code == 0 and reply["tree"]["logins"] == ["ops"], reply
    assert reply["tree"]["server"] == "web1" and reply["target"]["kind"] == "server"
    assert reply["tree"]["accounts"] == ["alice", "bob", "ops"]
    assert any("left out" in n and "backup" in n and "root" in n
               for n in reply["tree"]["notes"]), reply["tree"]["notes"]
    code, _reply, text = server.cli("plan", "web1", "--whole-server", as_json=False)
    assert code == 0 and text.startswith("whole server web1: ") and "logins ops" in text
    code, reply, _ = server.cli("history", "web1", "--whole-server")
    events = {(e["name"], e["event"]) for e in reply["events"]}
    assert ("web1", "case.opened") in events and ("bob", "step.applied") in events
    code, reply, _ = server.cli("check", "web1")
    (lines,) = [r["lines"] for r in reply["servers"]]
    assert any(line.startswith("whole server: would lock the logins ops first, then 3 ")
               for line in lines), lines
    code, reply, _ = server.cli("unsuspend", "web1", "--whole-server")
    assert code == 0 and reply["state"] == "active", reply
    assert not server.fake.files.get(step_path("landing_page", "ops"))


def test_a_caller_without_whole_server_rights_is_refused(server: World) -> None:
    code, reply, _ = server.cli("serve-ssh", env={
        "SSH_ORIGINAL_COMMAND": "suspend web1 --whole-server"})
    assert code == 2 and "whole server" in reply["errors"][0]["message"], reply
    assert server.rows("cases") == []


FIREWALL = step_path("firewall_block", "web1")


def test_a_server_step_runs_once_for_the_server_after_every_account_and_comes_off_last(
        server: World) -> None:
    pristine = server.step_files()
    o = server.engine().suspend_server("web1", "server", "billing", None, False)
    assert o.ok and FIREWALL not in server.fake.files, o
    server.clock.t = START + 24 * HOUR
    server.fake.log.clear()
    (o,) = server.engine().tick()
    assert o.ok and FIREWALL in server.fake.files, o
    (fw,) = [a for a in o.applied if a["step"] == "firewall_block"]
    assert (fw["scope"], fw["accounts"], fw["stage"], fw["changed"]) == ("server", 0, 1, True)
    assert [r["name"] for r in server.rows("changes") if r["step"] == "firewall_block"] == [
        "web1"]
    # Run twice: nothing more.
    server.fake.log.clear()
    again = server.engine().suspend_server("web1", "server", "billing", None, False)
    assert again.ok and server.fake.changing() == []
    server.fake.log.clear()
    o = server.engine().unsuspend_server("web1", "billing", False)
    assert o.ok and o.state == "active", o
    order = [s for s, _n in reloads(server)]
    assert order[-1] == "firewall_block" and order.index("landing_page") < order.index(
        "firewall_block")
    assert server.step_files() == pristine


def test_a_server_step_waits_for_an_account_behind_and_a_failed_one_is_retried(
        server: World) -> None:
    from tests.fast.fakes import is_

    server.engine().suspend_server("web1", "server", "billing", None, False)
    server.clock.t = START + 24 * HOUR
    server.fake.fail(is_("write", FIREWALL), 1)
    (o,) = server.engine().tick()
    assert not o.ok and FIREWALL not in server.fake.files
    assert o.errors[0]["step"] == "firewall_block", o.errors
    (parent,) = [c for c in server.rows("cases") if c["kind"] == "server"]
    assert parent["failures"] == 1 and parent["next_due_at"] == server.clock.t + 60
    server.clock.t += 61
    (o,) = server.engine().tick()
    assert o.ok and FIREWALL in server.fake.files, o
    assert server.engine().unsuspend_server("web1", "billing", False).ok
    assert FIREWALL not in server.fake.files


def test_a_server_step_is_held_back_while_an_account_has_not_reached_its_stage(
        server: World) -> None:
    from tests.fast.fakes import is_

    book = server.tmp / "playbooks" / "server-now.yaml"
    book.write_text("stages:\n  - after: 0s\n    steps: [backup, landing_page, "
                    "firewall_block]\n")
    server.fake.fail(is_("write", step_path("landing_page", "bob")), 1)
    o = server.engine().suspend_server("web1", "server-now", "billing", None, False)
    assert not o.ok and FIREWALL not in server.fake.files
    assert any(e["step"] == "firewall_block" and "bob" in e["message"] for e in o.errors), o
    server.clock.t += 61
    (o,) = server.engine().tick()
    assert o.ok and FIREWALL in server.fake.files, o


def test_a_playbook_with_a_server_step_is_refused_for_an_account_or_reseller(
        server: World) -> None:
    text = server.config_path.read_text().replace(
        ADMINS, ADMINS + "    resellers:\n      rita: {accounts: [alice]}\n")
    server.config_path.write_text(text)
    server.fake.accounts["rita"] = "/home/rita"
    for args in (("suspend", "web1", "alice", "--playbook", "server"),
                 ("suspend", "web1", "--reseller", "rita", "--playbook", "server")):
        code, reply, _ = server.cli(*args)
        assert code == 2 and "--whole-server" in reply["errors"][0]["message"], reply
    assert server.fake.changing() == [] and server.rows("cases") == []


def test_plan_of_the_whole_server_lists_its_server_steps(server: World) -> None:
    code, reply, _ = server.cli("plan", "web1", "--whole-server", "--playbook", "server")
    assert code == 0, reply
    assert [(e["stage"], e["step"]) for e in reply["server_steps"]] == [
        (0, "server_landing"), (1, "firewall_block")]
    ladder = reply["children"][0]["stages"]
    assert [s["step"] for s in ladder[1]["steps"]] == ["firewall_block"]
    assert ladder[1]["steps"][0]["scope"] == "server"
    code, _reply, text = server.cli("plan", "web1", "--whole-server", "--playbook", "server",
                                    as_json=False)
    assert "server step firewall_block (stage 1" in text, text


def test_a_server_step_whose_revert_fails_is_stuck_partial_and_resolvable(server: World
                                                                          ) -> None:
    from tests.fast.fakes import is_

    server.engine().suspend_server("web1", "server", "billing", None, False)
    server.clock.t = START + 24 * HOUR
    server.engine().tick()
    assert FIREWALL in server.fake.files
    server.fake.fail(is_("rm", "-f", "--", FIREWALL), 1, times=-1)
    code, reply, _ = server.cli("unsuspend", "web1", "--whole-server")
    assert code == 3 and reply["state"] == "partial", reply
    assert all(c["state"] == "active" for c in reply["children"]), reply["children"]
    code, reply, _ = server.cli("status", "web1", "--whole-server")
    assert code == 3 and reply["state"] == "partial", reply
    code, reply, _ = server.cli("resolve", "web1")
    assert code == 2, reply  # neither an account nor --whole-server
    server.fake.heal()
    code, reply, _ = server.cli("resolve", "web1", "--whole-server")
    assert code == 0 and reply["state"] == "active", reply
    assert FIREWALL not in server.fake.files
    assert [r for r in server.rows("changes") if r["state"] not in ("reverted",)
            and r["step"] != "backup"] == []
