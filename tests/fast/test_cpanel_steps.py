"""Single cpanel steps against the fake cPanel: the cases the ladder tests do not reach
(facts, FTP logins the file lacks, database users without the account's prefix, a
mailbox deleted during the case, system accounts)."""

from __future__ import annotations

import pytest

from agent.drivers import driver
from agent.errors import BadInput
from tests.fast.test_cpanel_ladder import Cp, cp  # noqa: F401 - the fixture


def test_facts_come_from_the_panel(cp: Cp) -> None:  # noqa: F811
    e = cp.engine()
    found = driver("cpanel").facts(e.config.servers["cp1"], cp.fake, "alice")
    assert found["owner"] == "root" and found["home"] == "/home/alice"
    assert found["domains"] == {"main": ["alice.test"], "addon": ["shop.test"],
                                "sub": ["blog.alice.test"], "parked": ["alice.example"]}
    assert [m["email"] for m in found["mailboxes"]] == ["info@alice.test", "old@alice.test"]
    assert found["databases"] == ["alice_wp"] and found["db_users"] == ["alice_wp"]
    assert {f["user"] for f in found["ftp"]} == {"alice", "up@alice.test"}


def test_ftp_lock_refuses_a_login_its_file_lacks(cp: Cp) -> None:  # noqa: F811
    cp.alice.ftp.append(("ghost@alice.test", "sub"))
    before = cp.fake.files["/etc/proftpd/alice"].data
    out = cp.suspend("cp-now")
    assert any("ghost@alice.test" in e["message"] for e in out.errors), out.errors
    assert cp.fake.files["/etc/proftpd/alice"].data == before and not cp.alice.suspended


def test_ftp_lock_leaves_a_login_locked_before_as_it_was(cp: Cp) -> None:  # noqa: F811
    cp.fake.put("/etc/proftpd/alice", b"alice:$6$salt$hash:1001:1001:alice:/home/alice:"
                b"/bin/bash\nup@alice.test:!$6$up:1001:1001:alice:/home/alice/up:/bin/ftpsh\n")
    assert cp.suspend("cp-now").errors == []
    # The main login through the system hash (ftpupdate copies it: review F1).
    assert b"alice:!$6$salt$hash" in cp.fake.files["/etc/proftpd/alice"].data
    assert cp.unsuspend().errors == []
    assert cp.fake.files["/etc/proftpd/alice"].data.count(b":!$6$") == 1
    assert cp.fake.model.accounts["alice"].hash == "$6$salt$hash"


def test_ftp_lock_keeps_the_hash_lock_panel_lock_found_and_undoes_only_its_own(cp: Cp  # noqa: F811
                                                                              ) -> None:
    """ftp_lock and panel_lock share the system hash: whichever locked it unlocks it."""
    cp.fake.model.accounts["alice"].hash = "!$6$salt$hash"  # an admin's lock
    assert cp.suspend("cp-now").errors == []
    assert cp.unsuspend().errors == []
    assert cp.fake.model.accounts["alice"].hash == "!$6$salt$hash"


def test_db_lock_refuses_users_without_the_account_prefix(cp: Cp) -> None:  # noqa: F811
    cp.alice.db_users.append("bob_wp")
    out = cp.suspend("cp-now")
    assert any("without the account's prefix" in e["message"] for e in out.errors)
    assert not any(cp.fake.model.mysql.values())


def test_db_lock_keeps_a_user_locked_before_locked(cp: Cp) -> None:  # noqa: F811
    cp.fake.model.mysql[("alice_wp", "localhost")] = True
    assert cp.suspend("cp-now").errors == []
    assert cp.unsuspend().errors == []
    assert cp.fake.model.mysql == {("alice_wp", "localhost"): True,
                                   ("alice", "localhost"): False}


def test_a_mailbox_deleted_during_the_case_does_not_jam_the_reversal(cp: Cp) -> None:  # noqa: F811
    assert cp.suspend("cp-mail").errors == []
    del cp.alice.mailboxes["info@alice.test"]
    out = cp.unsuspend()
    assert out.errors == [] and out.state == "active", out.errors


def test_a_system_account_is_never_suspended(cp: Cp) -> None:  # noqa: F811
    cp.alice.uid = 500
    with pytest.raises(BadInput, match="system account"):
        cp.suspend("cp-now")
    assert not [f for _a, f, _p in cp.fake.model.calls if f != "accountsummary"]


def test_a_run_killed_half_way_through_mail_block_converges(cp: Cp) -> None:  # noqa: F811
    from tests.fast.fakes import Crash

    cp.fake.fail(lambda argv: "suspend_outgoing_email" in argv, Crash("kill -9"))
    with pytest.raises(Crash):
        cp.suspend("cp-mail")
    # Killed after the mailbox lock and before the outgoing block: the journal holds the
    # intent; the next call puts the half-done step back and applies it whole.
    assert cp.alice.mailboxes["info@alice.test"]["login"] and not cp.alice.out_suspended
    out = cp.suspend("cp-mail")
    assert out.errors == [] and out.state == "suspended", out.errors
    assert cp.alice.mailboxes["info@alice.test"]["login"] and cp.alice.out_suspended
    assert cp.unsuspend().errors == []
    assert not cp.alice.mailboxes["info@alice.test"]["login"] and not cp.alice.out_suspended
    assert cp.alice.mailboxes["old@alice.test"]["login"]


def test_a_batch_reads_every_accounts_domains_from_one_get_domain_info(monkeypatch) -> None:
    """Panel.domain_index groups get_domain_info's records (Whostmgr/API/1/Accounts.pm) by
    account and kind; an account without exactly one main domain is left out (its own
    DomainInfo call answers for it), and a record of the wrong shape is refused."""
    from types import SimpleNamespace

    from agent.drivers.cpanel import facts
    from agent.errors import StepError

    records = [
        {"domain": "a.test", "user": "a", "domain_type": "main"},
        {"domain": "shop.test", "user": "a", "domain_type": "addon"},
        {"domain": "shop.a.test", "user": "a", "domain_type": "sub"},
        {"domain": "A-Parked.test", "user": "a", "domain_type": "parked"},
        {"domain": "b.test", "user": "b", "domain_type": "main"},
        {"domain": "orphan.test", "user": "c", "domain_type": "sub"},
    ]
    panel = facts.Panel.__new__(facts.Panel)
    panel.server, panel.s = SimpleNamespace(name="cp1"), SimpleNamespace(whmapi1="whmapi1")
    monkeypatch.setattr(facts.Panel, "query", lambda self, call: {"domains": records})
    index = panel.domain_index()
    assert index == {"a": {"main": ["a.test"], "addon": ["shop.test"], "sub": ["shop.a.test"],
                           "parked": ["a-parked.test"]},
                     "b": {"main": ["b.test"], "addon": [], "sub": [], "parked": []}}
    records.append({"domain": "x.test", "user": "a", "domain_type": "wildcard"})
    with pytest.raises(StepError, match="get_domain_info"):
        panel.domain_index()
