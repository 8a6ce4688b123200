"""mail_block on cPanel ends the open IMAP/POP sessions of the mailboxes it locked: after the
Email::suspend_login calls, `doveadm auth cache flush` and one `doveadm kick` per mailbox, as
root over the connector (on both API transports); exit 68 (nobody connected) is fine, any
other status fails the step and it is rolled back; names Dovecot would read as wildcards
are never passed; without a usable doveadm the step is refused at plan time."""

from __future__ import annotations

import pytest

from agent.engine.checks import check_servers
from tests.fast.fakes import is_
from tests.fast.test_cpanel_api import ApiWorld, api  # noqa: F401 - the fixture
from tests.fast.test_cpanel_check import PRESENT
from tests.fast.test_cpanel_fakes import DOVEADM, UAPI
from tests.fast.test_cpanel_ladder import Cp, cp, write_config  # noqa: F401 - the fixture

FLUSH = [DOVEADM, "auth", "cache", "flush", "--"]


def kick(email: str, doveadm: str = DOVEADM) -> list[str]:
    return [doveadm, "kick", "--", email]


def suspend_login(email: str) -> list[str]:
    return [UAPI, "--output=json", "--user=alice", "Email", "suspend_login", f"email={email}"]


def plan_lines(cp: Cp, book: str = "cp-mail") -> list[str]:  # noqa: F811
    out = cp.suspend(book, dry_run=True)
    assert out.errors == [], out.errors
    return [line for p in out.plans if p["step"] == "mail_block" for line in p["actions"]]


def at(lines: list[str], start: str) -> int:
    """Return the index of the first line starting with `start` (API calls end with how
    they are verified)."""
    return next(i for i, line in enumerate(lines) if line.startswith(start))


def test_the_plan_ends_sessions_after_the_logins_are_suspended(cp: Cp) -> None:  # noqa: F811
    lines = plan_lines(cp)
    login = at(lines, "api   uapi Email::suspend_login as alice email=info@alice.test")
    flush = lines.index(f"run   {DOVEADM} auth cache flush -- info@alice.test")
    kicked = lines.index(f"run   {DOVEADM} kick -- info@alice.test")
    assert login < flush < kicked < at(lines, "api   whmapi1 suspend_outgoing_email user=alice")
    # old@ was suspended before the case: not this step's lock, not its kick.
    assert not [line for line in lines if "old@alice.test" in line]
    assert cp.fake.sessions == {} and cp.fake.flushed == []
    assert not [a for a in cp.fake.log if a[0] == DOVEADM]


def test_open_sessions_of_the_locked_mailboxes_end_and_others_stay(cp: Cp) -> None:  # noqa: F811
    cp.fake.sessions.update({"info@alice.test": 2, "old@alice.test": 1, "bob@bob.test": 1})
    out = cp.suspend("cp-mail")
    assert out.errors == [] and out.state == "suspended", out.errors
    assert cp.fake.sessions == {"old@alice.test": 1, "bob@bob.test": 1}
    log = cp.fake.log
    assert (log.index(suspend_login("info@alice.test")) < log.index(FLUSH + ["info@alice.test"])
            < log.index(kick("info@alice.test")))
    # Reversal lifts the login lock and runs nothing of Dovecot's: sessions are not restored.
    applied = len(log)
    back = cp.unsuspend()
    assert back.errors == [] and back.state == "active", back.errors
    assert not [a for a in cp.fake.log[applied:] if a[0] == DOVEADM]
    assert not cp.alice.mailboxes["info@alice.test"]["login"]


def test_nobody_connected_exit_68_is_success(cp: Cp) -> None:  # noqa: F811
    out = cp.suspend("cp-mail")
    assert out.errors == [] and out.state == "suspended", out.errors
    assert kick("info@alice.test") in cp.fake.log  # answered 68: no session
    assert cp.alice.mailboxes["info@alice.test"]["login"]


@pytest.mark.parametrize("command", [["kick"], ["auth", "cache", "flush"]])
@pytest.mark.parametrize("status", [1, 75, 127])
def test_any_other_doveadm_status_fails_the_step_and_rolls_it_back(
        cp: Cp, command: list[str], status: int) -> None:  # noqa: F811
    cp.fake.sessions["info@alice.test"] = 1
    cp.fake.fail(is_(DOVEADM, *command), status)
    out = cp.suspend("cp-mail")
    assert [e["step"] for e in out.errors] == ["mail_block"], out.errors
    assert str(status) in out.errors[0]["message"]
    assert out.state == "active" and out.rolled_back
    assert not cp.alice.mailboxes["info@alice.test"]["login"] and not cp.alice.out_suspended


def test_wildcard_names_are_never_given_to_doveadm(cp: Cp) -> None:  # noqa: F811
    for email in ("a*@alice.test", "b?c@alice.test", "-v@alice.test"):
        cp.alice.mailboxes[email] = {"login": False, "incoming": False}
    cp.fake.sessions.update({"a*@alice.test": 1, "b?c@alice.test": 1, "-v@alice.test": 1})
    lines = plan_lines(cp)
    assert ("skip  open IMAP/POP sessions of a*@alice.test, b?c@alice.test are not ended: "
            "Dovecot would read * or ? in the name as a wildcard") in lines
    # Still locked at the panel; a name starting with "-" is an operand after "--".
    assert at(lines, "api   uapi Email::suspend_login as alice 'email=a*@alice.test'") >= 0
    assert f"run   {DOVEADM} kick -- -v@alice.test" in lines
    out = cp.suspend("cp-mail")
    assert out.errors == [], out.errors
    given = [a for a in cp.fake.log if a[0] == DOVEADM]
    assert not [a for a in given if any("*" in w or "?" in w for w in a)], given
    assert cp.fake.flushed == ["info@alice.test", "-v@alice.test"]
    assert cp.fake.sessions == {"a*@alice.test": 1, "b?c@alice.test": 1}
    assert cp.alice.mailboxes["a*@alice.test"]["login"]


@pytest.mark.parametrize("state, why", [
    (None, f"{DOVEADM} does not exist"),
    (0o644, f"{DOVEADM} is not executable (mode 0644)")])
def test_without_a_usable_doveadm_the_step_is_refused_before_any_change(
        cp: Cp, state: int | None, why: str) -> None:  # noqa: F811
    if state is None:
        del cp.fake.files[DOVEADM]
    else:
        cp.fake.files[DOVEADM].mode = state
    out = cp.suspend("cp-mail")
    assert [e["step"] for e in out.errors] == ["mail_block"], out.errors
    message = out.errors[0]["message"]
    assert why in message and "cpanel.doveadm" in message and "open IMAP/POP" in message
    assert not cp.alice.mailboxes["info@alice.test"]["login"] and not cp.alice.out_suspended
    assert "Email::suspend_login" not in {f for _a, f, _p in cp.fake.model.calls}


def test_an_account_without_a_mailbox_to_lock_needs_no_doveadm(cp: Cp) -> None:  # noqa: F811
    del cp.fake.files[DOVEADM]
    cp.alice.mailboxes = {"old@alice.test": {"login": True, "incoming": False}}
    out = cp.suspend("cp-mail")
    assert out.errors == [] and out.state == "suspended", out.errors


def test_the_doveadm_setting_is_used(cp: Cp) -> None:  # noqa: F811
    write_config(cp.tmp, "    cpanel:\n      doveadm: /opt/dovecot/bin/doveadm\n")
    cp.fake.put("/opt/dovecot/bin/doveadm", b"", 0o755)
    lines = plan_lines(cp)
    assert "run   /opt/dovecot/bin/doveadm kick -- info@alice.test" in lines


def test_over_the_whm_api_the_kick_still_runs_over_the_connector(
        api: ApiWorld) -> None:  # noqa: F811
    api.fake.sessions["info@alice.test"] = 1
    rc, reply, out = api.cli("suspend", "cp1", "alice", "--playbook", "cp-mail")
    assert rc == 0 and reply is not None and reply["state"] == "suspended", out
    assert ("uapi", "Email::suspend_login", {"email": "info@alice.test"}) in api.fake.model.calls
    assert not [a for a in api.fake.log if a[0] == UAPI]  # the panel calls went over HTTPS
    assert kick("info@alice.test") in api.fake.log and api.fake.sessions == {}


@pytest.mark.parametrize("state, why", [
    (None, f"{DOVEADM} does not exist"),
    (0o600, f"{DOVEADM} is not executable (mode 0600)")])
def test_check_says_mail_block_needs_doveadm(
        cp: Cp, state: int | None, why: str) -> None:  # noqa: F811
    for path in PRESENT:
        cp.fake.put(path, b"")
    if state is None:
        del cp.fake.files[DOVEADM]
    else:
        cp.fake.files[DOVEADM].mode = state
    report = check_servers(cp.engine(), "cp1")[0]
    lines = report["lines"]
    assert not report["ok"]
    assert f"NO: {why} (cpanel.doveadm)" in lines
    assert (f"step mail_block: NOT available: {why} (cpanel.doveadm): without doveadm, "
            "mail_block cannot end the open IMAP/POP sessions of the mailboxes it locks, so "
            "it refuses") in lines
    assert "step db_lock: available" in lines
    assert not [a for a in cp.fake.log if a[0] == DOVEADM]


def test_check_reports_a_usable_doveadm(cp: Cp) -> None:  # noqa: F811
    for path in PRESENT:
        cp.fake.put(path, b"")
    report = check_servers(cp.engine(), "cp1")[0]
    assert report["ok"]
    assert f"yes: Dovecot's doveadm ({DOVEADM}) ends open IMAP/POP sessions" in report["lines"]
