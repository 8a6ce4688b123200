"""Odd names never jam a case (issue 9, item 5): a mailbox `-a`, `x y` or `*`, a database
user `alice_x y`, a PureDB line ending in CR; and `resolve` for what a human fixed by hand."""

from __future__ import annotations

import pytest

from tests.conftest import no_records
from tests.hosts import clients, hostfs
from tests.test_ladder import snapshot

pytestmark = pytest.mark.testhost

SHADOW = "/etc/vmail/shop.test/shadow"
PASSWD = "/etc/vmail/shop.test/passwd"
FTP = "/etc/pure-ftpd/pureftpd.passwd"


def _add_odd_names(host) -> None:
    dash, space, star, cr = hostfs.sha512_crypt(host, ["dash-pass-1", "space-pass-1",
                                                       "star-pass-1", "cr-pass-1"])
    uid, gid = hostfs.user_ids(host, "alice")
    for local in ("-a", "x y", "*"):
        for sub in ("cur", "new", "tmp"):
            hostfs.make_dirs(host, f"/home/alice/mail/shop.test/{local}/{sub}", 0o700,
                             (uid, gid))
    with host.path(PASSWD).open("a") as f:
        f.writelines(f"{local}::{uid}:{gid}::/home/alice/mail/shop.test/{local}::\n"
                     for local in ("-a", "x y", "*"))
    with host.path(SHADOW).open("a") as f:
        f.write(f"-a:{{SHA512-CRYPT}}{dash}\nx y:{{SHA512-CRYPT}}{space}\n"
                f"*:{{SHA512-CRYPT}}{star}\n")
    with host.path(FTP).open("a") as f:  # a line saved by an editor that writes CRLF
        f.write(f"alice_cr:{cr}:{uid}:{gid}::/home/alice/public_html/./::::::::::::\r\n")
    host.run(["pure-pw", "mkdb", "/etc/pure-ftpd/pureftpd.pdb", "-f", FTP])
    host.run(["mysql"], input=b"CREATE USER `alice_x y`@'%' IDENTIFIED BY 'xy-pass-1';\n")


def test_odd_names_are_locked_and_restored_exactly(agent_env, host):
    try:
        _add_odd_names(host)
        before = snapshot(host)
        assert clients.imap_login(host, "-a@shop.test", "dash-pass-1") == "ok"
        assert clients.mysql_login(host, "alice_x y", "xy-pass-1") == "ok"
        assert clients.ftp_login(host, "alice_cr", "cr-pass-1") == "ok"
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate")
        assert rc == 0 and reply["state"] == "suspended", out
        assert clients.imap_login(host, "-a@shop.test", "dash-pass-1").startswith("auth failed")
        assert "locked" in clients.mysql_login(host, "alice_x y", "xy-pass-1")
        assert clients.ftp_login(host, "alice_cr", "cr-pass-1") != "ok"
        rc, reply, out = agent_env("unsuspend", host.name, "alice")
        assert rc == 0 and reply["state"] == "active", out
        assert clients.imap_login(host, "-a@shop.test", "dash-pass-1") == "ok"
        assert clients.mysql_login(host, "alice_x y", "xy-pass-1") == "ok"
        assert clients.ftp_login(host, "alice_cr", "cr-pass-1") == "ok"
        assert snapshot(host) == before
    finally:
        host.run(["mysql"], input=b"DROP USER IF EXISTS `alice_x y`@'%';\n")
        for local in ("-a", "x y", "*"):  # the baseline leaves mail stores out
            host.run(["rm", "-rf", "--", f"/home/alice/mail/shop.test/{local}"])


def test_resolve_retries_or_records_a_fix_by_hand(agent_env, host):
    before = snapshot(host)
    rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    broken = agent_env.config.with_name("broken.yaml")
    broken.write_text(agent_env.config.read_text().replace(
        "    connect_timeout: 5\n",
        "    connect_timeout: 5\n    linux:\n      usermod: /bin/false\n"))
    rc, reply, out = agent_env("--config", str(broken), "unsuspend", host.name, "alice")
    assert rc == 3 and any(c.get("stuck") == "panel_lock" for c in reply["cases"]), out
    # Without the fix, a retry stays stuck; --handled needs a reason and a stuck step.
    rc, reply, out = agent_env("--config", str(broken), "resolve", host.name, "alice")
    assert rc == 3, out
    rc, reply, out = agent_env("resolve", host.name, "alice", "--handled", "panel_lock")
    assert rc == 2 and "--reason" in out, out
    rc, reply, out = agent_env("resolve", host.name, "alice", "--handled", "mail_block",
                               "--reason", "x")
    assert rc == 2 and "no stuck mail_block" in out, out
    # usermod works again: the retry finishes the revert by itself.
    rc, reply, out = agent_env("resolve", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert no_records(snapshot(host)) == no_records(before)
    assert snapshot(host) == before

    # The other way: an admin undid it by hand and says so.
    rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    rc, reply, out = agent_env("--config", str(broken), "unsuspend", host.name, "alice")
    assert rc == 3, out
    host.run(["usermod", "--unlock", "--shell", "/bin/bash", "alice"])
    rc, reply, out = agent_env("resolve", host.name, "alice", "--handled", "panel_lock",
                               "--reason", "unlocked with usermod by hand, ticket 881")
    assert rc == 0 and reply["state"] == "active", out
    rc, _reply, text = agent_env.text("history", host.name, "alice")
    assert "change.resolved" in text and "ticket 881" in text, text
