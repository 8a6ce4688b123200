"""The test host's mail, FTP, database and login services, tried from outside as a customer.

First every login the provisioning promises works (and the pre-disabled ones do not); then
the hooks the agent's steps use are worked by hand, to prove the services honour them:
Exim's hook files, a `*LOCKED*` Dovecot password, a `!` PureDB hash, /etc/ftpusers.
Each test puts back exactly what it changed: the host is shared with the rest of the suite.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable

import pytest

from tests.conftest import tree_state
from tests.hosts import clients, ftp
from tests.hosts.provision import DB_USERS, FTP_USERS, LOGIN_PASSWORDS, MAILBOXES

pytestmark = pytest.mark.testhost

HOOKS = "/etc/exim4/suspension-agent"
# Everything a login, a delivery or a hand-made lock below can change on the host.
TOUCHED = ("/home/alice/mail", "/home/bob/mail", "/var/spool/outside", "/var/mail", HOOKS,
           "/etc/vmail", "/etc/ftpusers", "/etc/pure-ftpd")


@pytest.fixture
def restored(host, tmp_path):
    """Snapshot TOUCHED before the test; put it back exactly (content, mode, owner) after."""
    before = tree_state(host, *TOUCHED)
    saved = tmp_path / "saved"
    saved.mkdir()
    for path in TOUCHED:
        if host.path(path).exists():
            (saved / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-a", str(host.path(path)), str(saved / path.lstrip("/"))],
                           check=True)
    yield
    _wait_for_empty_mail_queue(host)
    for path in TOUCHED:
        subprocess.run(["rm", "-rf", "--one-file-system", str(host.path(path))], check=True)
        if (saved / path.lstrip("/")).exists():
            subprocess.run(["cp", "-a", str(saved / path.lstrip("/")), str(host.path(path))],
                           check=True)
    assert tree_state(host, *TOUCHED) == before


def _wait_for_empty_mail_queue(host, timeout: float = 10.0) -> None:
    """Ensure no message is still on Exim's queue, so no delivery lands after the restore.

    Exim accepts a message, then delivers it from a child process: a test can end while that
    child is still writing to /var/spool/outside (seen once in CI as an extra file there).
    """
    deadline = time.monotonic() + timeout
    while True:
        count = host.run(["exim4", "-bpc"], check=False).stdout.strip()
        if count == b"0" or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def eventually(probe: Callable[[], object], want: Callable[[object], bool],
               timeout: float = 5.0) -> object:
    """Return the first answer of `probe` that `want` accepts, or the last one at `timeout`.

    Exim delivers in a child process after accepting, and Dovecot rereads a changed
    passwd-file at most once a second.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if want(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def _edit(host, path: str, old: str, new: str) -> None:
    target = host.path(path)
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new, 1))


def _inbox(host, address: str, password: str) -> str:
    return "\n".join(clients.imap_read_messages(host, address, password))


def _unique(word: str) -> str:
    return f"{word}-{uuid.uuid4().hex[:8]}"


# -- before any suspension --------------------------------------------------------------
def test_mailboxes_log_in_unless_disabled(host, restored):
    for box in MAILBOXES:
        answers = {
            "imap": clients.imap_login(host, box.address, box.password),
            "pop": clients.pop_login(host, box.address, box.password),
            "smtp 587": clients.smtp_auth(host, box.address, box.password),
            "smtp 25": clients.smtp_auth(host, box.address, box.password, port=25),
        }
        for service, answer in answers.items():
            if box.enabled:
                assert answer == "ok", (box.address, service, answer)
            else:
                assert answer.startswith("auth failed:"), (box.address, service, answer)
    assert clients.imap_login(host, "info@shop.test", "wrong").startswith("auth failed:")
    assert clients.smtp_auth(host, "info@shop.test", "wrong") == (
        "auth failed: 535 Incorrect authentication data")


def test_delivery_lands_in_the_mailbox(host, restored):
    subject = _unique("delivered")
    assert clients.smtp_deliver(host, "info@shop.test", subject) == "ok"
    seen = eventually(lambda: _inbox(host, "info@shop.test", "info-pass-1"),
                      lambda text: subject in text)
    assert subject in seen
    maildir = host.path("/home/alice/mail/shop.test/info")
    assert all(p.stat().st_uid == 1000 for p in maildir.rglob("*"))
    assert clients.smtp_deliver(host, "nobody@shop.test", "x").startswith("refused: 550")
    assert clients.smtp_deliver(host, "x@outside.test", "x") == (
        "refused: 550 relay not permitted")


def test_sent_mail_reaches_the_outside(host, restored):
    local = _unique("php")
    assert clients.local_sendmail(host, "alice", "someone@outside.test", local) == (0, "")
    submitted = _unique("submitted")
    assert clients.smtp_submit(host, "me@blog.test", "me-pass-1", "friend@outside.test",
                               submitted) == "ok"
    assert local in eventually(lambda: clients.outside_mail(host, "someone"),
                               lambda text: local in text)
    assert submitted in eventually(lambda: clients.outside_mail(host, "friend"),
                                   lambda text: submitted in text)


def test_ftp_logins(host, restored):
    for user in FTP_USERS:
        answer = clients.ftp_login(host, user.login, user.password)
        if user.enabled:
            assert answer == "ok", (user.login, answer)
        else:
            assert answer.startswith("auth failed: 530"), (user.login, answer)
    assert clients.ftp_login(host, "alice", LOGIN_PASSWORDS["alice"]) == "ok"  # PAM


def test_database_logins_and_locked_user(host):
    for user in DB_USERS:
        answer = clients.mysql_login(host, user.user, user.password)
        if user.enabled:
            assert answer == "ok", (user.user, answer)
        else:
            assert answer == "ERROR 4151 (HY000): Access denied, this account is locked"
    # A wrong password is checked before the lock: the answer does not reveal the lock.
    assert clients.mysql_login(host, "alice_ro", "wrong").startswith("ERROR 1045 (28000)")


def test_ssh_logins(host):
    assert clients.ssh_password_login(host, "alice", LOGIN_PASSWORDS["alice"]) == "ok"
    assert clients.ssh_password_login(host, "bob", LOGIN_PASSWORDS["bob"]) == "ok"
    assert clients.ssh_key_login(host, "alice", host.alice_key) == "ok"
    assert clients.ssh_password_login(host, "alice", "wrong").startswith("auth failed:")
    assert clients.ssh_key_login(host, "bob", host.alice_key).startswith("auth failed:")


# -- the hooks the agent uses, worked by hand -----------------------------------------------
def test_outgoing_hook_stops_sending_not_receiving(host, restored):
    host.path(f"{HOOKS}/alice.outgoing").write_text("test\n")
    code, output = clients.local_sendmail(host, "alice", "someone@outside.test", "blocked")
    assert code != 0 and "sending mail is suspended for account alice" in output
    assert clients.smtp_submit(host, "info@shop.test", "info-pass-1", "friend@outside.test") \
        == "refused: 550 sending mail is suspended for this account"
    subject = _unique("still-incoming")
    assert clients.smtp_deliver(host, "info@shop.test", subject) == "ok"
    assert subject in eventually(lambda: _inbox(host, "info@shop.test", "info-pass-1"),
                                 lambda text: subject in text)
    # Another account still sends.
    from_bob = _unique("bob")
    assert clients.local_sendmail(host, "bob", "someone@outside.test", from_bob) == (0, "")
    host.path(f"{HOOKS}/alice.outgoing").unlink()
    again = _unique("again")
    assert clients.local_sendmail(host, "alice", "someone@outside.test", again) == (0, "")
    delivered = eventually(lambda: clients.outside_mail(host, "someone"),
                           lambda text: from_bob in text and again in text)
    assert from_bob in delivered and again in delivered


def test_incoming_hooks_reject_or_defer_at_rcpt(host, restored):
    for hook, code in (("incoming-reject", 550), ("incoming-defer", 451)):
        path = host.path(f"{HOOKS}/alice.{hook}")
        path.write_text("test\n")
        for address in ("info@shop.test", "me@blog.test"):
            assert clients.smtp_deliver(host, address, "x").startswith(f"refused: {code} ")
        assert clients.smtp_deliver(host, "bob@bob.test", _unique("bob")) == "ok"
        path.unlink()
    assert clients.smtp_deliver(host, "info@shop.test", _unique("back")) == "ok"


def test_locked_mailbox_cannot_log_in(host, restored):
    shadow = "/etc/vmail/shop.test/shadow"
    _edit(host, shadow, "info:{SHA512-CRYPT}", "info:*LOCKED*{SHA512-CRYPT}")
    answer = eventually(lambda: clients.imap_login(host, "info@shop.test", "info-pass-1"),
                        lambda a: a != "ok")
    assert answer.startswith("auth failed:")
    assert clients.pop_login(host, "info@shop.test", "info-pass-1").startswith("auth failed:")
    assert clients.smtp_auth(host, "info@shop.test", "info-pass-1") == (
        "auth failed: 535 Incorrect authentication data")
    assert clients.imap_login(host, "me@blog.test", "me-pass-1") == "ok"
    # Incoming mail for a locked mailbox is still accepted.
    assert clients.smtp_deliver(host, "info@shop.test", _unique("locked")) == "ok"
    _edit(host, shadow, "info:*LOCKED*{SHA512-CRYPT}", "info:{SHA512-CRYPT}")
    assert eventually(lambda: clients.imap_login(host, "info@shop.test", "info-pass-1"),
                      lambda a: a == "ok") == "ok"


def test_ftp_locks_take_effect_without_restart(host, restored):
    with open(host.path("/etc/ftpusers"), "a") as deny:
        deny.write("alice\n")
    assert clients.ftp_login(host, "alice", LOGIN_PASSWORDS["alice"]).startswith(
        "auth failed: 530")
    assert clients.ftp_login(host, "alice_ftp", "ftp-pass-1") == "ok"
    # A `!` hash and a rebuilt .pdb: Pure-FTPd reads the .pdb on every login.
    _edit(host, ftp.PASSWD, "alice_ftp:$6$", "alice_ftp:!$6$")
    host.run(["pure-pw", "mkdb", ftp.PDB, "-f", ftp.PASSWD])
    assert clients.ftp_login(host, "alice_ftp", "ftp-pass-1").startswith("auth failed: 530")
    assert clients.ftp_login(host, "bob_ftp", "bob-ftp-1") == "ok"
