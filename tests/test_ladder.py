"""The whole graded ladder against real Dovecot, Exim, Pure-FTPd, MariaDB and sshd.

Every effect is checked from outside, as the customer or a sender would meet it: IMAP, POP3
and SMTP AUTH logins, SMTP delivery on port 25, FTP, MySQL and SSH logins, HTTP.
"""

from __future__ import annotations

import imaplib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.config.servers import Server
from agent.steps.probes import fetch, looks_suspended
from tests.conftest import WATCHED, tree_state
from tests.hosts import clients

pytestmark = pytest.mark.testhost

# Compared byte for byte (content, mode, owner) after a round trip: the whole of /etc and the
# agent's and the accounts' folders.
TOUCHED = ("/etc", *WATCHED)
# The two bytes-level differences the README documents ("What a round trip gives back"):
# usermod's own backup copies of the files it edits hold the last version before its edit.
NOT_RESTORED = ("etc/passwd-", "etc/shadow-")


def snapshot(host) -> dict:
    """Every file under TOUCHED but NOT_RESTORED; the mail store is left out (logins update
    its indexes)."""
    return {k: v for k, v in tree_state(host, *TOUCHED).items()
            if "/mail/" not in k and k not in NOT_RESTORED}


def web_suspended(host) -> bool:
    server = Server("t", "linux", "ssh", host=host.address)
    return looks_suspended(fetch(server, "shop.test", "/", tls=False))


def at_once(probes: dict[str, Callable[[], str]]) -> dict[str, str]:
    """Run independent login probes side by side (a refused login waits out the service's
    failure delay) and return their results by name."""
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = {name: pool.submit(probe) for name, probe in probes.items()}
    return {name: future.result() for name, future in futures.items()}


def mail_works(host, user="info@shop.test", password="info-pass-1") -> dict:
    return at_once({"imap": lambda: clients.imap_login(host, user, password),
                    "pop": lambda: clients.pop_login(host, user, password),
                    "smtp_auth": lambda: clients.smtp_auth(host, user, password)})


def logins(host) -> dict:
    return at_once({
        "ftp": lambda: clients.ftp_login(host, "alice_ftp", "ftp-pass-1"),
        "ftp_system": lambda: clients.ftp_login(host, "alice", "alice-pass-1"),
        "mysql": lambda: clients.mysql_login(host, "alice_shop", "db-pass-1"),
        "ssh_password": lambda: clients.ssh_password_login(host, "alice", "alice-pass-1"),
        "ssh_key": lambda: clients.ssh_key_login(host, "alice", host.alice_key)})


def disabled_before(host) -> dict:
    """Logins that were disabled before any case: they must stay disabled."""
    return at_once({"mailbox": lambda: clients.imap_login(host, "sales@shop.test",
                                                          "sales-pass-1"),
                    "ftp": lambda: clients.ftp_login(host, "alice_old", "old-pass-1"),
                    "mysql": lambda: clients.mysql_login(host, "alice_ro", "ro-pass-1")})


def bob_works(host) -> None:
    assert clients.imap_login(host, "bob@bob.test", "bob-pass-1") == "ok"
    assert clients.ftp_login(host, "bob_ftp", "bob-ftp-1") == "ok"
    assert clients.mysql_login(host, "bob_wp", "bob-db-1") == "ok"


# The agent's clock is injected: stages fall due when the test says so, never by waiting.
START = 2_000_000_000.0


def test_standard_ladder_escalates_and_comes_back_exactly(agent_env, host):
    before = snapshot(host)
    locked_before = disabled_before(host)
    assert all(v != "ok" for v in locked_before.values()), locked_before
    agent_env.now = START
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "demo")
    assert rc == 0, out
    assert [p["step"] for p in reply["pending"]] == ["mail_block", "ftp_lock", "db_lock",
                                                      "panel_lock"]
    # Stage 0: landing page, mail still works.
    assert web_suspended(host)
    assert mail_works(host) == {"imap": "ok", "pop": "ok", "smtp_auth": "ok"}

    session = imaplib.IMAP4(host.address, 143, timeout=10)
    session.login("info@shop.test", "info-pass-1")
    agent_env.now = START + 5.5
    # Two ticks at once (cron on two control hosts, say): the stage is applied once.
    ticks = [agent_env.spawn("tick") for _ in range(2)]
    replies = [json.loads(p.communicate(timeout=120)[0]) for p in ticks]
    assert all(p.returncode == 0 for p in ticks), replies
    changed = [a["step"] for r in replies for o in r["processed"] for a in o["applied"]
               if a["changed"]]
    assert changed == ["mail_block"], replies
    # The IMAP session opened before the stage was ended by it.
    try:
        with pytest.raises((imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError)):
            session.noop()
            session.select("INBOX")
    finally:
        session.shutdown()
    # Stage 1: mailbox logins fail with an authentication error; port 25 still takes mail.
    for kind, result in mail_works(host).items():
        assert result.startswith("auth failed"), (kind, result)
    assert clients.smtp_deliver(host, "info@shop.test", "while suspended", "kept") == "ok"
    rc_send, _ = clients.local_sendmail(host, "alice", "partner@outside.test", "from alice")
    assert rc_send != 0
    assert "from alice" not in clients.outside_mail(host, "partner")
    assert logins(host)["ftp"] == "ok"  # stage 2 not due yet
    bob_works(host)

    agent_env.now = START + 10.5
    rc, reply, out = agent_env("tick")
    assert rc == 0, out
    # Stage 2: FTP, MySQL and SSH logins fail.
    now = logins(host)
    assert all(v != "ok" for v in now.values()), now
    assert "locked" in now["mysql"], now["mysql"]
    bob_works(host)

    agent_env.now = START + 70
    rc, reply, out = agent_env("tick")  # a minute later: nothing applied twice
    assert rc == 0 and reply["processed"] == [], out
    rc, reply, out = agent_env("status", host.name, "alice")
    assert reply["state"] == "suspended" and reply["stage"] == 2, out
    assert reply["cases"][0]["next_due"] is None and reply["pending"] == []

    rc, reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0, out
    # What visitors see comes back first; the rest is listed newest first.
    assert [r["step"] for r in reply["reverted"]] == ["landing_page", "panel_lock", "db_lock",
                                                      "ftp_lock", "mail_block", "backup"]
    assert not web_suspended(host)
    assert mail_works(host) == {"imap": "ok", "pop": "ok", "smtp_auth": "ok"}
    assert logins(host) == dict.fromkeys(logins(host), "ok")
    assert disabled_before(host) == locked_before
    inbox = clients.imap_read_messages(host, "info@shop.test", "info-pass-1")
    assert any("Subject: while suspended" in m for m in inbox)
    assert snapshot(host) == before


def test_unsuspend_cancels_stages_not_reached(agent_env, host):
    agent_env.now = START
    rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "demo")
    assert rc == 0, out
    rc, reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    agent_env.now = START + 3600
    rc, reply, out = agent_env("tick")
    assert rc == 0 and reply["processed"] == [], out
    assert mail_works(host)["imap"] == "ok"


def test_two_holds_billing_then_abuse(agent_env, host):
    before = snapshot(host)
    for hold in ("billing", "abuse"):
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate",
                                   "--hold", hold)
        assert rc == 0, out
    assert reply["holds"] == ["abuse", "billing"]
    rc, reply, out = agent_env("unsuspend", host.name, "alice", "--hold", "billing")
    assert rc == 4 and reply["holds"] == ["abuse"] and "abuse" in reply["message"], out
    assert reply["not_lifted"] == {"holds": ["abuse"], "invoices": []}
    assert web_suspended(host)
    assert mail_works(host)["imap"].startswith("auth failed")
    assert all(v != "ok" for v in logins(host).values())
    rc, reply, out = agent_env("unsuspend", host.name, "alice", "--hold", "abuse")
    assert rc == 0 and reply["state"] == "active", out
    assert mail_works(host)["imap"] == "ok"
    assert logins(host) == dict.fromkeys(logins(host), "ok")
    assert snapshot(host) == before


def test_incoming_reject_and_defer(agent_env, host):
    books = agent_env.config.parent.parent / "playbooks"
    for mode, code in (("reject", "550"), ("defer", "451")):
        (books / f"mail-{mode}.yaml").write_text(
            "stages:\n  - after: 0s\n    steps:\n      - backup\n"
            f"      - mail_block:\n          incoming: {mode}\n")
        rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", f"mail-{mode}")
        assert rc == 0, out
        assert code in clients.smtp_deliver(host, "info@shop.test", "x", "y")
        assert clients.smtp_deliver(host, "bob@bob.test", "x", "y") == "ok"
        rc, _reply, out = agent_env("unsuspend", host.name, "alice")
        assert rc == 0, out
        assert clients.smtp_deliver(host, "info@shop.test", "after", "y") == "ok"
