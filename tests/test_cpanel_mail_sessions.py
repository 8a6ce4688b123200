"""The cpanel driver's mail_block against the cPanel simulator ends the IMAP and POP sessions
the customer already had open (Email::suspend_login alone only refuses new logins): seen
from outside, a session of a mailbox of alice opened before the block is closed by the
server and a new login is refused, while bob's open session goes on; after unsuspend alice's
mailboxes log in again. Over SSH (whmapi1/uapi) and over the WHM API with a token; the
kick runs over SSH as root in both."""

from __future__ import annotations

import imaplib
import poplib
import time

import pytest

from tests.hosts import clients
from tests.hosts.cpanel import calls
from tests.hosts.cpanel.agent import certificate_for, make_agent

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-mail-sessions")]
TIMEOUT = 10.0
MAIL_NOW = "stages:\n  - after: 0s\n    steps: [backup, mail_block]\n"


@pytest.fixture(scope="module")
def cp():
    """A cPanel host of its own (host index offset 31) whose WHM certificate names it."""
    for host, cpanel in calls.running_host(offset=31):
        yield host, certificate_for(host, cpanel)


@pytest.fixture(params=["cli", "api"])
def agent(request, cp, tmp_path):
    """The agent over SSH, panel calls by whmapi1/uapi (cli) or the WHM API (api), with a
    playbook that blocks mail at once; the simulator's state is put back afterwards."""
    host, cpanel = cp
    agent = make_agent(host, tmp_path, request.param, cpanel.root_token)
    (tmp_path / "playbooks" / "mail-now.yaml").write_text(MAIL_NOW)
    yield agent
    calls.reset(host)


def imap_session(host, user: str, password: str) -> imaplib.IMAP4:
    """Return an IMAP connection logged in as `user` with INBOX selected (a mail client
    sitting in its inbox)."""
    imap = imaplib.IMAP4(host.address, 143, timeout=TIMEOUT)
    imap.login(user, password)
    assert imap.select("INBOX")[0] == "OK"
    return imap


def pop_session(host, user: str, password: str) -> poplib.POP3:
    """Return a POP3 connection logged in as `user` (in the transaction state)."""
    pop = poplib.POP3(host.address, 110, timeout=TIMEOUT)
    pop.user(user)
    pop.pass_(password)
    return pop


def alive(session: imaplib.IMAP4 | poplib.POP3) -> bool:
    """Return True when the server still answers a NOOP on `session`; False once it has
    closed the connection (EOF, BYE or a reset)."""
    try:
        if isinstance(session, imaplib.IMAP4):
            return session.noop()[0] == "OK"
        return session.noop().startswith(b"+OK")
    except (imaplib.IMAP4.abort, imaplib.IMAP4.error, poplib.error_proto, OSError, EOFError):
        return False


def closed_soon(session: imaplib.IMAP4 | poplib.POP3, within: float = 5.0) -> bool:
    """Return True when the server closes `session` within `within` seconds (doveadm kick
    signals the session's process and returns; the process then says BYE and exits)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(session):
            return True
        time.sleep(0.2)
    return False


def test_mail_block_ends_the_open_sessions_of_the_locked_mailboxes_only(cp, agent):
    host, _cpanel = cp
    info = imap_session(host, "info@alice.test", "info-mail-1")
    news = pop_session(host, "news@alice-addon.test", "news-mail-1")
    bob = imap_session(host, "bob@bob.test", "bob-mail-1")
    try:
        assert alive(info) and alive(news) and alive(bob)
        rc, reply, out = agent("--dry-run", "suspend", host.name, "alice",
                               "--playbook", "mail-now")
        assert rc == 0, out
        planned = [line for p in reply["plan"] if p["step"] == "mail_block"
                   for line in p["actions"]]
        assert "run   /usr/bin/doveadm kick -- info@alice.test" in planned, planned
        assert "run   /usr/bin/doveadm kick -- news@alice-addon.test" in planned, planned
        assert not [line for line in planned if "bob" in line], planned
        assert alive(info) and alive(news)  # the dry run changed nothing

        rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "mail-now")
        assert rc == 0 and reply["state"] == "suspended", out
        # Seen from outside: alice's open sessions are closed by the server, and a new login
        # (the client reconnecting) is refused at once; bob's session goes on.
        assert closed_soon(info), "the open IMAP session of info@alice.test still answers"
        assert closed_soon(news), "the open POP session of news@alice-addon.test still answers"
        assert clients.imap_login(host, "info@alice.test", "info-mail-1").startswith(
            "auth failed")
        assert clients.pop_login(host, "news@alice-addon.test", "news-mail-1").startswith(
            "auth failed")
        assert alive(bob), "bob's open IMAP session was ended too"
        # Incoming mail is still accepted while alice's mailboxes are blocked.
        assert clients.smtp_deliver(host, "info@alice.test", "during the block") == "ok"

        rc, reply, out = agent("unsuspend", host.name, "alice")
        assert rc == 0 and reply["state"] == "active", out
        assert clients.imap_login(host, "info@alice.test", "info-mail-1") == "ok"
        assert clients.pop_login(host, "news@alice-addon.test", "news-mail-1") == "ok"
        assert alive(bob)
    finally:
        for session in (info, news, bob):
            try:
                session.shutdown() if isinstance(session, imaplib.IMAP4) else session.close()
            except OSError:
                pass


def test_a_mailbox_locked_before_the_case_keeps_its_session(cp, agent):
    """A mailbox whose login an admin suspended before the case is not this case's lock:
    its session (opened before that lock) is left alone, as the reversal leaves its lock."""
    host, _cpanel = cp
    sales = imap_session(host, "sales@alice.test", "sales-mail-1")
    try:
        reply = calls.uapi(host, "alice", "Email", "suspend_login", email="sales@alice.test")
        assert reply["result"]["status"] == 1
        rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "mail-now")
        assert rc == 0, out
        assert alive(sales)
        rc, reply, out = agent("unsuspend", host.name, "alice")
        assert rc == 0, out
        assert clients.imap_login(host, "sales@alice.test", "sales-mail-1").startswith(
            "auth failed")
    finally:
        sales.shutdown()
