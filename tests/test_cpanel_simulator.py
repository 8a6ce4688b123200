"""The cPanel simulator on a test host, checked from outside as a visitor or customer would:
suspendacct and unsuspendacct with their real effects, the documented quirks (panels.md A4-A9,
C2), per-mailbox switches, EA4 includes, backups and the WHM API over HTTPS."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.hosts import clients, hostfs, testhost
from tests.hosts.cpanel import calls, layout
from tests.hosts.cpanel.calls import uapi, web, whmapi1

# One worker runs the whole module, so its cPanel host is brought up once (tests/run.sh).
pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-simulator")]
wait = testhost.TestHost.wait

ALICE = layout.account("alice")


# A module-wide cPanel host (host index offset 20), reset after each test.
cp, host = calls.fixtures(offset=20)


def summary(host, user):
    return whmapi1(host, "accountsummary", user=user)["data"]["acct"][0]


def logins(host):
    """Every way alice's customers get in, as (name, result)."""
    return {
        "imap": clients.imap_login(host, "info@alice.test", "info-mail-1"),
        "pop": clients.pop_login(host, "news@alice-addon.test", "news-mail-1"),
        "smtp": clients.smtp_auth(host, "sales@alice.test", "sales-mail-1"),
        "ftp-sub": clients.ftp_login(host, "ftpuser@alice.test", "ftp-pass-1"),
        "ftp-main": clients.ftp_login(host, "alice", "alice-pass-1"),
        "mysql": clients.mysql_login(host, "alice_shop", "shop-db-1"),
        "ssh": clients.ssh_password_login(host, "alice", "alice-pass-1"),
    }


def test_suspendacct_refuses_every_login_and_redirects_every_site(host):
    assert set(logins(host).values()) == {"ok"}
    reply = whmapi1(host, "suspendacct", user="alice", reason="unpaid")
    assert reply["metadata"]["result"] == 1
    assert "alice's account has been suspended" in reply["metadata"]["output"]["raw"]
    refused = logins(host)
    assert all(v != "ok" for v in refused.values()), refused
    # MariaDB: the stored hash reversed behind a `-`, so the password fails (review F16).
    assert "Access denied" in refused["mysql"]
    for name in layout.web_domains(ALICE):
        for scheme in ("http", "https"):
            page = web(host, name, scheme, "/any/page?q=1")
            assert page.status_code == 302, (name, scheme)
            assert "/cgi-sys/suspendedpage.cgi" in page.headers["Location"]
    shown = web(host, "alice.test", path="/cgi-sys/suspendedpage.cgi")
    assert shown.status_code == 200 and "Account Suspended" in shown.text
    # Incoming mail still lands (the server's "deliver" setting, A7), outgoing is refused.
    assert clients.smtp_deliver(host, "sales@alice.test", "while suspended") == "ok"
    code, text = clients.local_sendmail(host, "alice", "friend@outside.test", "out")
    assert code != 0 and "suspended" in text
    state = summary(host, "alice")
    assert (state["suspended"], state["suspendreason"], state["shell"]) == (1, "unpaid",
                                                                          "/bin/false")
    assert state["outgoing_mail_suspended"] == 1
    assert host.path("/etc/proftpd/alice").read_text() == "# Account suspended\n"
    assert host.path("/etc/shadow").read_text().count("alice:!!") == 1

    reply = whmapi1(host, "unsuspendacct", user="alice")
    assert reply["metadata"]["result"] == 1
    assert set(logins(host).values()) == {"ok"}
    assert web(host, "alice.test").status_code == 200
    assert summary(host, "alice")["shell"] == "/bin/bash"
    inbox = clients.imap_read_messages(host, "sales@alice.test", "sales-mail-1")
    assert any("while suspended" in m for m in inbox)
    assert bob_still_fine(host)


def bob_still_fine(host):
    return (web(host, "bob.test").status_code == 200
            and clients.imap_login(host, "bob@bob.test", "bob-mail-1") == "ok")


def test_suspend_and_unsuspend_answer_ok_when_the_script_refused(host):
    # A8, C2.5: result=1 with the refusal only in metadata.output.raw.
    reply = whmapi1(host, "unsuspendacct", user="alice")
    assert reply["metadata"]["result"] == 1
    assert "not in a suspended state" in reply["metadata"]["output"]["raw"]
    whmapi1(host, "suspendacct", user="alice")
    again = whmapi1(host, "suspendacct", user="alice", reason="second")
    assert again["metadata"]["result"] == 1
    assert "already suspended" in again["metadata"]["output"]["raw"]
    assert summary(host, "alice")["suspendreason"] != "second"
    # A5: an unknown account is the one result=0.
    unknown = whmapi1(host, "accountsummary", user="nosuchuser")
    assert unknown["metadata"] == {"command": "accountsummary", "result": 0, "version": 1,
                                   "reason": "Account does not exist."}
    assert whmapi1(host, "suspendacct", user="nosuchuser")["metadata"]["result"] == 0


def test_unsuspendacct_keeps_an_earlier_mailbox_lock_and_lifts_outgoing(host):
    # Review F4 (scripts/suspendacct:424-429, scripts/unsuspendacct:467-470,
    # Cpanel/Email/Accounts.pm:368, Webmail/Password.pm): suspend_login puts `!!` in front;
    # suspendacct adds `*LOCKED*` once in front of that; list_pops then shows no login lock;
    # unsuspendacct strips only the leading `*LOCKED*`, so the mailbox lock survives it. It
    # always lifts the outgoing suspension (A8, C2.4).
    uapi(host, "alice", "Email", "suspend_login", email="sales@alice.test")
    whmapi1(host, "suspend_outgoing_email", user="alice")
    assert clients.imap_login(host, "sales@alice.test", "sales-mail-1") != "ok"
    whmapi1(host, "suspendacct", user="alice")
    shadow = host.path("/home/alice/etc/alice.test/shadow").read_text()
    assert "sales:*LOCKED*!!$6$" in shadow and "*LOCKED**LOCKED*" not in shadow
    pops = {p["email"]: p for p in uapi(host, "alice", "Email", "list_pops", skip_main="1")[
        "result"]["data"]}
    assert pops["sales@alice.test"]["suspended_login"] == 0  # blind while suspended
    whmapi1(host, "unsuspendacct", user="alice")
    shadow = host.path("/home/alice/etc/alice.test/shadow").read_text()
    assert "*LOCKED*" not in shadow and "sales:!!$6$" in shadow
    assert clients.imap_login(host, "sales@alice.test", "sales-mail-1") != "ok"
    assert clients.imap_login(host, "info@alice.test", "info-mail-1") == "ok"
    assert summary(host, "alice")["outgoing_mail_suspended"] == 0
    assert clients.smtp_submit(host, "info@alice.test", "info-mail-1", "x@outside.test") == "ok"
    uapi(host, "alice", "Email", "unsuspend_login", email="sales@alice.test")
    assert clients.imap_login(host, "sales@alice.test", "sales-mail-1") == "ok"


def test_listsuspended_reads_the_system_hash_and_lists_bandwidth_limits(host):
    # A5 [SRC]: decided from /etc/shadow, not from cPanel's own files; bwlimited listed too.
    host.path("/var/cpanel/bwlimited/bob").write_text("")
    shadow = host.path("/etc/shadow")
    original = shadow.read_text()
    shadow.write_text(original.replace("\nres1:", "\nres1:!", 1))
    try:
        listed = {a["user"]: a for a in whmapi1(host, "listsuspended")["data"]["account"]}
    finally:
        shadow.write_text(original)
    assert listed["bob"]["reason"].startswith("Bandwidth Limit Exceeded")
    assert listed["res1"]["reason"] == "Unknown"
    assert "alice" not in listed
    # accountsummary too counts the bandwidth limit, its text replacing the reason (F11:
    # Whostmgr/Accounts/Suspended.pm:70-79).
    shown = summary(host, "bob")
    assert shown["suspended"] == 1 and shown["suspendreason"].startswith("Bandwidth Limit")


def test_reseller_suspension_cascades_and_unsuspends_everything(host):
    # A9, C2.6: alice suspended for her own reason first.
    whmapi1(host, "suspendacct", user="alice", reason="abuse")
    reply = whmapi1(host, "suspendreseller", user="res1", reason="reseller unpaid")
    assert reply["metadata"]["result"] == 1
    assert "Failed to suspend account: alice" in reply["metadata"]["output"]["raw"]
    assert summary(host, "res1")["suspended"] == 1
    assert summary(host, "alice")["suspendreason"] == "abuse"
    assert summary(host, "bob")["suspended"] == 0
    assert clients.imap_login(host, "admin@res1.test", "admin-mail-1") != "ok"
    reply = whmapi1(host, "unsuspendreseller", user="res1")
    assert reply["metadata"]["result"] == 1
    # Every owned account comes back, alice's own abuse suspension included.
    assert summary(host, "alice")["suspended"] == 0
    assert summary(host, "res1")["suspended"] == 0
    not_reseller = whmapi1(host, "suspendreseller", user="bob")
    assert not_reseller["metadata"]["result"] == 0
    assert not_reseller["metadata"]["reason"] == "Specified user is not a reseller."


def test_locked_suspension_only_root_lifts(host, cp):
    whmapi1(host, "suspendacct", user="alice", disallowun="1")
    assert whmapi1(host, "listlockedaccounts")["data"]["account"] == ["alice"]
    assert summary(host, "alice")["is_locked"] == 1
    token = calls.services.create_token(host, "res1", "res1-lock", ("suspend-acct",
                                                                    "acct-summary"))
    denied = calls.api(host, token, "unsuspendacct", as_user="res1", user="alice")
    assert denied.json()["metadata"]["result"] == 0
    assert summary(host, "alice")["suspended"] == 1
    root = calls.api(host, cp[1].root_token, "unsuspendacct", user="alice")
    assert root.json()["metadata"]["result"] == 1
    assert summary(host, "alice")["suspended"] == 0


def test_suspendacct_kills_the_accounts_processes_on_this_host_only(host):
    # A7 step 5 (`kill -9` the user's processes); the host shares the CI machine's kernel, so
    # a process of the same uid outside the host must survive.
    uid, gid = hostfs.user_ids(host, "alice")
    inside = subprocess.Popen(["ip", "netns", "exec", host.netns, "chroot", str(host.root),
                               "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                               "sleep", "300"], stdin=subprocess.DEVNULL)
    outside = subprocess.Popen(["sleep", "300"], user=uid, group=gid, extra_groups=[],
                               stdin=subprocess.DEVNULL)
    try:
        wait(lambda: any(Path(f"/proc/{p}/status").read_text().count(f"\t{uid}\t")
                                  for p in host.pids() if _is_sleep(p)), "sleep in the host")
        whmapi1(host, "suspendacct", user="alice")
        assert inside.wait(timeout=10) == -signal.SIGKILL
        assert outside.poll() is None
    finally:
        outside.kill()
        outside.wait()
        if inside.poll() is None:
            inside.kill()
            inside.wait()


def _is_sleep(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
    except OSError:
        return False


def test_a_failing_pre_hook_aborts_but_the_api_still_says_ok(host):
    # A7 step 2 (legacy presuspendacct hook; failure aborts), A8/C2.5 (result=1 anyway).
    hostfs.write(host, "/usr/local/cpanel/scripts/presuspendacct",
                 "#!/bin/sh\necho refused by hook\nexit 1\n", mode=0o755)
    try:
        reply = whmapi1(host, "suspendacct", user="alice")
    finally:
        host.path("/usr/local/cpanel/scripts/presuspendacct").unlink()
    assert reply["metadata"]["result"] == 1
    assert "Pre-suspend hook script returned failure" in reply["metadata"]["output"]["raw"]
    assert summary(host, "alice")["suspended"] == 0
    assert clients.imap_login(host, "info@alice.test", "info-mail-1") == "ok"


def test_listaccts_search_and_want(host):
    by_domain = whmapi1(host, "listaccts", searchtype="domain", search="alice-addon.test",
                        searchmethod="exact", want="user,domain")["data"]["acct"]
    assert by_domain == [{"user": "alice", "domain": "alice.test"}]
    regex = whmapi1(host, "listaccts", searchtype="user", search="^(bob|res1)$")
    assert sorted(a["user"] for a in regex["data"]["acct"]) == ["bob", "res1"]
    owned = whmapi1(host, "listaccts", searchtype="owner", search="root", searchmethod="exact")
    assert [a["user"] for a in owned["data"]["acct"]] == ["bob"]
    # The default output is YAML (A3).
    text = host.run(["whmapi1", "version"]).stdout.decode()
    assert text.startswith("---\n") and "result: 1" in text


@pytest.mark.parametrize("flavour", ["mariadb", "mysql"])
def test_mysql_scripts_lock_every_user_of_the_account_and_unlock_them_all(host, flavour):
    """A7 step 8 / A8, as review F16 read them: on MariaDB each stored hash is reversed
    behind a `-` (the password fails) and turned back; on MySQL 5.7.6+ ACCOUNT LOCK and
    UNLOCK (sim/db.py)."""
    flag = host.path("/var/cpanel/sim/mysql-flavour")
    if flavour == "mysql":
        flag.write_text("mysql\n")
    try:
        before = calls.db_hash(host, "alice_blog")
        code, out = calls.script(host, "suspendmysqlusers", "alice")
        assert code == 0 and "alice_blog" in out
        for user, password in (("alice_shop", "shop-db-1"), ("alice_blog", "blog-db-1"),
                               ("alice", "alice-pass-1")):
            refused = clients.mysql_login(host, user, password)
            assert ("locked" if flavour == "mysql" else "Access denied") in refused, refused
        assert calls.db_hash(host, "alice_blog") == (before if flavour == "mysql"
                                             else "-" + before[1:][::-1])
        assert clients.mysql_login(host, "bob_wp", "bob-db-1") == "ok"
        assert calls.script(host, "unsuspendmysqlusers", "alice")[0] == 0
        assert clients.mysql_login(host, "alice_blog", "blog-db-1") == "ok"
        assert calls.db_hash(host, "alice_blog") == before
    finally:
        flag.unlink(missing_ok=True)


def test_reseller_only_leaves_the_owned_accounts_alone(host):
    reply = whmapi1(host, "suspendreseller", user="res1", **{"reseller-only": "1"})
    assert reply["metadata"]["result"] == 1
    assert (summary(host, "res1")["suspended"], summary(host, "alice")["suspended"]) == (1, 0)
    again = whmapi1(host, "suspendreseller", user="res1")
    # [INF] in A9: a reseller already suspended → result 0.
    assert again["metadata"]["result"] == 0
