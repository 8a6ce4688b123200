"""The cpanel driver on the simulator when things were already so, or go wrong: what an admin
or the customer had locked before the case stays locked after it, a second hold keeps what
it needs, a refused token is exit 78, an API that says "done" without doing it fails the step
and rolls it back, an API that does not answer is exit 75, and a failing rebuildhttpdconf
puts the include files back (issue 10's acceptance, panels.md A8, C2.4, C2.5)."""

from __future__ import annotations

import pytest

from tests.hosts import clients
from tests.hosts.cpanel import calls, services
from tests.hosts.cpanel.agent import (
    certificate_for,
    logins,
    mail,
    make_agent,
    snapshot,
    summary,
    web,
)

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-faults")]


@pytest.fixture(scope="module")
def cp():
    """A cPanel host of its own (host index offset 40) whose WHM certificate names it."""
    for host, cpanel in calls.running_host(offset=40):
        yield host, certificate_for(host, cpanel)


@pytest.fixture
def host(cp):
    yield cp[0]
    calls.reset(cp[0])
    cp[0].run(["mysql"], input=b"ALTER USER 'alice_blog'@'localhost' ACCOUNT UNLOCK;\n")


def _pops(host) -> dict:  # noqa: ANN001
    data = calls.uapi(host, "alice", "Email", "list_pops", skip_main="1")["result"]["data"]
    return {box["email"]: box["suspended_login"] for box in data}


def test_what_was_locked_before_the_case_stays_locked_after_it(cp, host, tmp_path):
    agent = make_agent(host, tmp_path, "cli", cp[1].root_token)
    calls.uapi(host, "alice", "Email", "suspend_login", email="sales@alice.test")
    host.run(["mysql"], input=b"ALTER USER 'alice_blog'@'localhost' ACCOUNT LOCK;\n")
    assert clients.mysql_login(host, "alice_blog", "blog-db-1") != "ok"
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "final")
    assert rc == 0, out
    assert summary(host, "alice")["suspended"] == 1
    assert all(v != "ok" for v in logins(host).values())
    rc, _reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    # unsuspendacct strips every *LOCKED* and lifts the outgoing block (A8): the agent put
    # back the mailbox that was suspended before the case; the MySQL user stays locked.
    assert _pops(host)["sales@alice.test"] == 1
    assert clients.imap_login(host, "sales@alice.test", "sales-mail-1") != "ok"
    assert clients.imap_login(host, "info@alice.test", "info-mail-1") == "ok"
    assert clients.mysql_login(host, "alice_blog", "blog-db-1") != "ok"
    assert clients.mysql_login(host, "alice_shop", "shop-db-1") == "ok"
    assert summary(host, "alice")["suspended"] == 0


def test_an_account_suspended_by_an_admin_is_never_unsuspended(cp, host, tmp_path):
    agent = make_agent(host, tmp_path, "cli", cp[1].root_token)
    calls.whmapi1(host, "suspendacct", user="alice", reason="admin: spam complaint")
    # mail_block waits while someone else's suspension is on (review F4): refused, named,
    # nothing changed.
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "final")
    assert rc == 1 and "admin: spam complaint" in out and "F4" in out, out
    (tmp_path / "playbooks" / "final-no-mail.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, landing_page, ftp_lock, db_lock, "
        "panel_lock, panel_suspend]\n")
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "final-no-mail")
    assert rc == 0, out
    rc, _reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    state = summary(host, "alice")
    assert state["suspended"] == 1 and "spam complaint" in (state["suspendreason"] or "")


def test_a_second_hold_keeps_what_it_needs(cp, host, tmp_path):
    agent = make_agent(host, tmp_path, "cli", cp[1].root_token)
    before = snapshot(host)
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "final",
                            "--hold", "abuse")
    assert rc == 0, out
    assert summary(host, "alice")["is_locked"] == 1  # abuse: only root may unsuspend
    rc, _reply, out = agent("unsuspend", host.name, "alice", "--hold", "billing")
    assert rc == 4, out  # nothing failed; the abuse hold keeps it suspended
    assert summary(host, "alice")["suspended"] == 1
    assert all(v.startswith("auth failed") for v in mail(host).values())
    assert all(v != "ok" for v in logins(host).values())
    assert {status for status, _r in web(host).values()} == {503}
    rc, _reply, out = agent("unsuspend", host.name, "alice", "--hold", "abuse")
    assert rc == 0, out
    assert set(mail(host).values()) == {"ok"} and set(logins(host).values()) == {"ok"}
    assert snapshot(host) == before


def test_a_refused_token_is_exit_78_and_changes_nothing(cp, host, tmp_path):
    agent = make_agent(host, tmp_path, "api", "0" * 32)
    before = snapshot(host)
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 78, out
    assert "0" * 32 not in out
    assert snapshot(host) == before and set(mail(host).values()) == {"ok"}


def test_a_call_that_says_done_without_doing_it_fails_and_is_rolled_back(cp, host, tmp_path):
    agent = make_agent(host, tmp_path, "api", cp[1].root_token)
    before = snapshot(host)
    services.set_faults(host, {"suspend_outgoing_email": {"mode": "noop"}})
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc not in (0, 75), out
    assert any(e["step"] == "mail_block" for e in reply["errors"]), out
    services.set_faults(host, None)
    # Nothing of the failed stage is left half-applied: the mailboxes are open again.
    assert set(mail(host).values()) == {"ok"}
    assert summary(host, "alice")["outgoing_mail_suspended"] == 0
    rc, _reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert snapshot(host) == before


def test_an_api_that_does_not_answer_is_exit_75(cp, host, tmp_path):
    agent = make_agent(host, tmp_path, "api", cp[1].root_token, api_timeout="3")
    services.set_faults(host, {"accountsummary": {"mode": "hang", "seconds": 20}})
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 75, out
    services.set_faults(host, None)
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert set(mail(host).values()) == {"ok"} and set(logins(host).values()) == {"ok"}


def test_a_failing_rebuildhttpdconf_puts_the_include_files_back(cp, host, tmp_path):
    agent = make_agent(host, tmp_path, "cli", cp[1].root_token)
    before = snapshot(host)
    services.set_faults(host, {"rebuildhttpdconf": {"mode": "fail", "times": 1}})
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc not in (0, 75), out
    assert any(e["step"] == "landing_page" for e in reply["errors"]), out
    assert {status for status, _r in web(host).values()} == {200}
    assert not list(host.path("/etc/apache2/conf.d/userdata").rglob("*.conf"))
    rc, _reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert snapshot(host) == before
