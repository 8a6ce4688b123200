"""Review F9 on the fake cPanel: panel_lock puts the account in cPanel's SSH deny group (SSH
key logins and port forwarding stop, as with suspendacct) and takes it out again only when
it put it there; it refuses, changing nothing, where sshd would not deny the group; and
after its own unsuspendacct the agent puts the account back into the group."""

from __future__ import annotations

import dataclasses
import json

from tests.fast.test_cpanel_ladder import Cp, cp  # noqa: F401 - the fixture


def _plain(argv: list[str]) -> list[str]:
    """The command without its `flock -w 60 LOCK` (agent/steps/account_files.py)."""
    return argv[4:] if argv[0] == "flock" else argv


def _changes(cp: Cp) -> list:  # noqa: F811
    return [a for a in cp.fake.changing() if "gpasswd" in " ".join(a) or "usermod" in " ".join(a)]


def test_panel_lock_denies_ssh_and_gives_it_back(cp: Cp) -> None:  # noqa: F811
    alice = cp.alice
    assert cp.suspend("cp-now").errors == []
    assert alice.ssh_denied and alice.hash.startswith("!")
    # Run twice (a billing system retrying): no command changes anything more.
    changed = len(_changes(cp))
    assert cp.suspend("cp-now").errors == [] and len(_changes(cp)) == changed
    assert cp.unsuspend().errors == []
    assert not alice.ssh_denied and alice.hash == "$6$salt$hash"
    assert cp.unsuspend().errors == [] and not alice.ssh_denied


def test_an_account_denied_before_the_case_stays_denied(cp: Cp) -> None:  # noqa: F811
    cp.alice.ssh_denied = True  # an admin's
    assert cp.suspend("cp-now").errors == []
    assert cp.unsuspend().errors == []
    assert cp.alice.ssh_denied
    # cp-now's unsuspendacct took it out; the re-apply put the admin's state back, and
    # panel_lock, which found it there, never removes it.
    assert not [a for a in map(_plain, cp.fake.changing())
                if a[0].endswith("gpasswd") and a[1] == "--delete"]


def test_without_the_group_or_its_deny_line_panel_lock_changes_nothing(cp: Cp  # noqa: F811
                                                                       ) -> None:
    for broken in ("group", "sshd"):
        if broken == "group":
            cp.fake.model.group_exists = False
        else:
            cp.fake.model.group_exists, cp.fake.model.deny_groups = True, ["cpaneldemo"]
        out = cp.suspend("cp-now")
        step = [e for e in out.errors if e["step"] == "panel_lock"]
        assert step and ("SSH key logins" in step[0]["message"]), out.errors
        assert not cp.alice.ssh_denied and cp.alice.shell == "/bin/bash"
        assert cp.unsuspend().errors == []


def test_after_its_own_unsuspendacct_the_account_is_denied_again(cp: Cp  # noqa: F811
                                                                 ) -> None:
    """panel_suspend's revert runs unsuspendacct, which takes the account out of the group
    (Whostmgr/Accounts/Suspension/SSH.pm); panel_lock's lock is put back right after it,
    until panel_lock itself is reverted."""
    out = cp.suspend("cp-now")  # panel_lock, then panel_suspend
    assert out.errors == [] and cp.alice.suspended and cp.alice.ssh_denied
    start = len(cp.fake.log)
    assert cp.unsuspend().errors == []
    groups = [a[1] for a in map(_plain, cp.fake.log[start:]) if a[0].endswith("gpasswd")]
    assert groups == ["--add", "--delete"], groups  # re-applied, then panel_lock's revert
    assert not cp.alice.ssh_denied and not cp.alice.suspended


def test_check_says_whether_sshd_denies_the_group(cp: Cp) -> None:  # noqa: F811
    from agent.engine.checks import check_servers
    from tests.fast.test_cpanel_check import PRESENT

    for path in PRESENT:
        cp.fake.put(path, b"")
    text = "\n".join(check_servers(cp.engine(), "cp1")[0]["lines"])
    assert "yes: sshd denies the group cpanelsuspended" in text, text
    assert "step panel_lock: available" in text
    cp.fake.model.deny_groups = []
    report = check_servers(cp.engine(), "cp1")[0]
    text = "\n".join(report["lines"])
    assert "NO: sshd does not deny the group cpanelsuspended" in text, text
    assert ("step panel_lock: NOT available: sshd does not deny the group cpanelsuspended"
            in text) and not report["ok"]


def test_the_plan_names_the_web_disk_logins_it_leaves_open(cp: Cp) -> None:  # noqa: F811
    """Review F9, the part not built yet: panel_lock does not lock Web Disk logins, and says
    so for each, instead of claiming the account's logins are all shut."""
    cp.fake.put("/home/alice/etc/webdav/shadow",
                b"disk@alice.test:$6$z:19000::::::\nold@alice.test:*LOCKED*$6$w:19000::::::\n")
    out = cp.suspend("cp-now", dry_run=True)
    text = "\n".join(line for p in out.plans if p["step"] == "panel_lock"
                     for line in p["actions"])
    assert "skip  Web Disk logins of alice (disk@alice.test) still read and write" in text
    assert "old@alice.test" not in text


def _team_row(name: str, password: str, suspended: str = "", roles: str = "email") -> dict:
    return {"username": name, "password": password, "suspend_date": suspended,
            "roles": roles.split(","), "expire_date": ""}


def test_panel_lock_suspends_the_open_team_users_and_reinstates_only_those(cp: Cp  # noqa: F811
                                                                         ) -> None:
    """Review F9: team users log in to the owner's cPanel with their own passwords, so
    panel_lock suspends each open one (UAPI Team::suspend_team_user); one suspended before
    stays so; the reversal reinstates only its own, and locks the MySQL user again of one
    without a database role (reinstate unlocks it whatever the roles)."""
    cp.alice.team = [_team_row("helper", "$6$x"), _team_row("dba", "$6$d", roles="database"),
                     _team_row("gone", "!!$6$y", suspended="1700000000")]
    assert cp.suspend("cp-now").errors == []
    rows = {r["username"]: r for r in cp.alice.team}
    assert rows["helper"]["password"] == "!!$6$x" and rows["dba"]["password"] == "!!$6$d"
    assert rows["gone"]["suspend_date"] == "1700000000"
    suspends = [p["user"] for kind, f, p in cp.fake.model.calls
                if f == "Team::suspend_team_user"]
    assert suspends == ["dba", "helper"]
    assert cp.unsuspend().errors == []
    rows = {r["username"]: r for r in cp.alice.team}
    assert rows["helper"]["password"] == "$6$x" and rows["dba"]["password"] == "$6$d"
    assert rows["gone"]["password"] == "!!$6$y" and rows["gone"]["suspend_date"]
    reinstated = [p["user"] for kind, f, p in cp.fake.model.calls
                  if f == "Team::reinstate_team_user"]
    assert reinstated == ["dba", "helper"]
    relocked = [p["argv"] for kind, f, p in cp.fake.model.calls if f == "suspendmysqlusers"]
    assert relocked == [["alice_helper", "1"]]


def test_a_team_user_reinstated_meanwhile_or_expired_is_left_as_it_is(cp: Cp  # noqa: F811
                                                                     ) -> None:
    """Review F9: reinstate_team_user also cancels an expiry that has passed, so a team
    user whose expiry passed during the case is left suspended (and the plan says so); one
    the owner reinstated meanwhile gets no second call."""
    cp.alice.team = [_team_row("helper", "$6$x"), _team_row("temp", "$6$t")]
    assert cp.suspend("cp-now").errors == []
    rows = {r["username"]: r for r in cp.alice.team}
    rows["helper"].update(password="$6$x", suspend_date="")  # the owner reinstated it
    rows["temp"]["expire_date"] = "1000000000"  # long past
    text = json.dumps(dataclasses.asdict(cp.unsuspend(dry_run=True)))
    out = cp.unsuspend()
    assert out.errors == [], out.errors
    assert not [p for kind, f, p in cp.fake.model.calls if f == "Team::reinstate_team_user"]
    assert rows["temp"]["password"] == "!!$6$t"
    assert "team user temp of alice: its expiry passed during the case" in text, text


def test_panel_lock_verify_fails_while_a_team_user_can_log_in(cp: Cp) -> None:  # noqa: F811
    """Review F9: a suspend_team_user that changes nothing is a failed verify, not a lock."""
    cp.alice.team = [_team_row("helper", "$6$x")]
    cp.fake.model.noop.add("Team::suspend_team_user")
    out = cp.suspend("cp-now")
    assert out.state != "suspended"
    assert "team users can still log in: helper" in json.dumps(out.errors), out.errors
