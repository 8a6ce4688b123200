"""The cPanel simulator's per-mailbox and outgoing-mail switches (panels.md A4, A6), EA4
include files with rebuildhttpdconf + restartsrv_httpd (A12), and pkgacct (A11), each
checked from outside with real clients."""

from __future__ import annotations

import io
import tarfile

import pytest

from tests.hosts import clients, hostfs, testhost
from tests.hosts.cpanel import calls, layout
from tests.hosts.cpanel.calls import script, uapi, web, whmapi1

# One worker runs the whole module, so its cPanel host is brought up once (tests/run.sh).
pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-sim-mail-web")]
wait = testhost.TestHost.wait

LANDING = ("RewriteEngine On\n"
           "RewriteCond %{REQUEST_URI} !^/\\.well-known/acme-challenge/\n"
           "RewriteRule ^ - [R=503,L]\n")


# A module-wide cPanel host (host index offset 21), reset after each test.
cp, host = calls.fixtures(offset=21)


def test_suspend_login_blocks_one_mailbox_only(host):
    reply = uapi(host, "alice", "Email", "suspend_login", email="info@alice.test")
    assert reply["result"]["status"] == 1
    assert clients.imap_login(host, "info@alice.test", "info-mail-1") != "ok"
    assert clients.pop_login(host, "info@alice.test", "info-mail-1") != "ok"
    assert clients.smtp_auth(host, "info@alice.test", "info-mail-1") != "ok"
    assert clients.imap_login(host, "sales@alice.test", "sales-mail-1") == "ok"
    # Mail is still received (A6).
    assert clients.smtp_deliver(host, "info@alice.test", "kept") == "ok"
    pops = {p["email"]: p for p in uapi(host, "alice", "Email", "list_pops")["result"]["data"]}
    assert (pops["info@alice.test"]["suspended_login"],
            pops["sales@alice.test"]["suspended_login"]) == (1, 0)
    uapi(host, "alice", "Email", "unsuspend_login", email="info@alice.test")
    assert clients.imap_login(host, "info@alice.test", "info-mail-1") == "ok"
    assert any("kept" in m for m in clients.imap_read_messages(host, "info@alice.test",
                                                               "info-mail-1"))


def test_suspend_incoming_rejects_at_smtp_time(host):
    uapi(host, "alice", "Email", "suspend_incoming", email="info@alice.test")
    refused = clients.smtp_deliver(host, "info@alice.test", "bounced")
    assert refused.startswith("refused: 550"), refused
    assert clients.smtp_deliver(host, "sales@alice.test", "fine") == "ok"
    assert clients.imap_login(host, "info@alice.test", "info-mail-1") == "ok"
    uapi(host, "alice", "Email", "unsuspend_incoming", email="info@alice.test")
    assert clients.smtp_deliver(host, "info@alice.test", "back") == "ok"
    other = uapi(host, "alice", "Email", "suspend_incoming", email="bob@bob.test")
    assert other["result"]["status"] == 0 and other["result"]["errors"]


def test_outgoing_suspension_refuses_mail_out_but_not_in(host):
    whmapi1(host, "suspend_outgoing_email", user="bob")
    refused = clients.smtp_submit(host, "bob@bob.test", "bob-mail-1", "out1@outside.test")
    assert refused.startswith("refused: 550"), refused
    assert clients.smtp_submit(host, "bob@bob.test", "bob-mail-1", "info@alice.test") == "ok"
    code, _text = clients.local_sendmail(host, "bob", "out2@outside.test", "php mail")
    assert code != 0
    assert clients.smtp_submit(host, "info@alice.test", "info-mail-1",
                               "out3@outside.test") == "ok"
    whmapi1(host, "unsuspend_outgoing_email", user="bob")
    assert clients.smtp_submit(host, "bob@bob.test", "bob-mail-1", "out1@outside.test") == "ok"
    # One address only (UAPI, A6).
    uapi(host, "alice", "Email", "suspend_outgoing", email="info@alice.test")
    assert clients.smtp_submit(host, "info@alice.test", "info-mail-1",
                               "out4@outside.test").startswith("refused")
    assert clients.smtp_submit(host, "sales@alice.test", "sales-mail-1",
                               "out4@outside.test") == "ok"


def test_held_outgoing_mail_waits_in_the_queue_until_released(host):
    whmapi1(host, "hold_outgoing_email", user="bob")
    assert whmapi1(host, "accountsummary", user="bob")["data"]["acct"][0][
        "outgoing_mail_hold"] == 1
    assert clients.smtp_submit(host, "bob@bob.test", "bob-mail-1", "held@outside.test",
                               subject="held-one") == "ok"
    host.run(["exim4", "-qff"])
    assert "held-one" not in clients.outside_mail(host, "held")
    assert host.run(["exim4", "-bpc"]).stdout.strip() != b"0"
    whmapi1(host, "release_outgoing_email", user="bob")
    wait(lambda: "held-one" in clients.outside_mail(host, "held"), "released mail")


def test_ea4_include_needs_rebuild_and_restart_then_serves_503_everywhere(host):
    alice = layout.account("alice")
    for kind in ("std", "ssl"):
        hostfs.write(host, f"/etc/apache2/conf.d/userdata/{kind}/2_4/alice/landing.conf",
                           LANDING)
    # Not in any vhost until rebuildhttpdconf (A12).
    assert web(host, "alice.test").status_code == 200
    assert script(host, "rebuildhttpdconf")[0] == 0
    assert web(host, "alice.test").status_code == 200  # rebuilt, not yet restarted
    assert script(host, "restartsrv_httpd")[0] == 0
    for name in layout.web_domains(alice):
        for scheme in ("http", "https"):
            wait(lambda n=name, s=scheme: web(host, n, s, "/x?y").status_code == 503,
                 f"503 on {scheme}://{name}")
    challenge = web(host, "alice.test", path="/.well-known/acme-challenge/token-abc")
    assert challenge.status_code == 200
    assert web(host, "bob.test").status_code == 200
    conf = host.path("/etc/apache2/conf/httpd.conf").read_text()
    vhost = conf.split("ServerName blog.alice.test")[1].split("</VirtualHost>")[0]
    assert vhost.rstrip().endswith('Include "/etc/apache2/conf.d/userdata/std/2_4/alice/*.conf"')


def test_restartsrv_httpd_refuses_a_broken_config(host):
    hostfs.write(host, "/etc/apache2/conf.d/userdata/std/2_4/bob/bob.test/bad.conf",
                       "ThisIsNotADirective on\n")
    script(host, "rebuildhttpdconf")
    code, text = script(host, "restartsrv_httpd")
    assert code != 0 and "configuration test failed" in text
    assert web(host, "bob.test").status_code == 200


def test_pkgacct_writes_home_mail_and_databases(host):
    host.path("/root/bk").mkdir(exist_ok=True)
    clients.smtp_deliver(host, "info@alice.test", "in-the-backup")
    code, out = script(host, "pkgacct", "alice", "/root/bk")
    assert code == 0, out
    data = host.path("/root/bk/cpmove-alice.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        dump = tar.extractfile("cpmove-alice/mysql/alice_shop.sql").read().decode()
    assert "cpmove-alice/homedir/public_html/index.html" in names
    assert any(n.startswith("cpmove-alice/homedir/mail/alice.test/info/new/") for n in names)
    assert "cpmove-alice/mysql/alice_blog.sql" in names
    assert "cpmove-alice/cp/alice" in names
    assert "CREATE TABLE `items`" in dump and "'first'" in dump


def test_one_held_address_waits_while_the_others_leave(host):
    uapi(host, "alice", "Email", "hold_outgoing", email="info@alice.test")
    assert clients.smtp_submit(host, "info@alice.test", "info-mail-1", "hold2@outside.test",
                               subject="held-address") == "ok"
    assert clients.smtp_submit(host, "sales@alice.test", "sales-mail-1", "hold2@outside.test",
                               subject="free-address") == "ok"
    wait(lambda: "free-address" in clients.outside_mail(host, "hold2"), "unheld mail")
    host.run(["exim4", "-qff"])
    assert "held-address" not in clients.outside_mail(host, "hold2")
    uapi(host, "alice", "Email", "release_outgoing", email="info@alice.test")
    wait(lambda: "held-address" in clients.outside_mail(host, "hold2"), "released address")


@pytest.mark.parametrize("setting", [":fail:", ":queue:", ":blackhole:"])
def test_mail_to_a_suspended_account_follows_the_server_setting(host, setting):
    # A7 [SRC]: the `*:` line of /etc/exim_suspended_list.
    hostfs.write(host, "/etc/exim_suspended_list", f"*: {setting}\n")
    try:
        whmapi1(host, "suspendacct", user="alice")
        answer = clients.smtp_deliver(host, "sales@alice.test", f"while {setting}")
        if setting == ":fail:":
            assert answer.startswith("refused: 525"), answer
            return
        assert answer == "ok"
        assert clients.smtp_deliver(host, "bob@bob.test", "bob unaffected") == "ok"
        host.run(["exim4", "-qff"])
        queued = host.run(["exim4", "-bpc"]).stdout.strip() != b"0"
        assert queued == (setting == ":queue:")
        whmapi1(host, "unsuspendacct", user="alice")
        host.run(["exim4", "-qff"])
        text = "".join(clients.imap_read_messages(host, "sales@alice.test", "sales-mail-1"))
        assert (f"while {setting}" in text) == (setting == ":queue:")
    finally:
        hostfs.write(host, "/etc/exim_suspended_list", "*: :unknown:\n")


def test_suspending_outgoing_mail_fails_what_is_held_in_the_queue(host):
    # A4: suspend_outgoing_email forces failure of queued mail; held mail is queued mail.
    whmapi1(host, "hold_outgoing_email", user="bob")
    assert clients.smtp_submit(host, "bob@bob.test", "bob-mail-1", "late@outside.test",
                               subject="held-then-failed") == "ok"
    assert host.run(["exim4", "-bpc"]).stdout.strip() != b"0"
    whmapi1(host, "suspend_outgoing_email", user="bob")
    host.run(["exim4", "-qff"])
    wait(lambda: host.run(["exim4", "-bpc"]).stdout.strip() == b"0", "queue emptied")
    whmapi1(host, "release_outgoing_email", user="bob")
    whmapi1(host, "unsuspend_outgoing_email", user="bob")
    host.run(["exim4", "-qff"])
    assert "held-then-failed" not in clients.outside_mail(host, "late")
