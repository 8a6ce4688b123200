"""A stock Debian host (system-user mailboxes through PAM, Debian's Exim configuration,
Pure-FTPd through its wrapper) is prepared with docs/linux-host.md's snippets without any
customer noticing, and then every grade holds on it, checked with real logins from outside.
"""

from __future__ import annotations

import os
import shutil

import pytest

from agent import PROJECT_ROOT
from tests.conftest import IN_CI, Agent, host_index, tree_state
from tests.hosts import clients, stock, testhost
from tests.hosts.provision import provision, write_config
from tests.test_ladder import at_once, web_suspended

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("stock-host")]
ALICE = ("alice", "alice-pass-1")
DENY = "/etc/dovecot/suspension-agent.deny"


def customer_view(host: testhost.TestHost, tag: str) -> dict[str, object]:
    """Everything a customer or a mail sender can see of mail and FTP, probed from outside."""
    to_alice = f"alice@{stock.MAIL_DOMAIN}"
    found = at_once({
        "imap": lambda: clients.imap_login(host, *ALICE),
        "imap_bad_password": lambda: clients.imap_login(host, "alice", "wrong"),
        "pop": lambda: clients.pop_login(host, *ALICE),
        "smtp_auth": lambda: clients.smtp_auth(host, *ALICE, port=25),
        "relay_without_auth": lambda: clients.smtp_deliver(host, "x@outside.test", "relay"),
        "deliver": lambda: clients.smtp_deliver(host, to_alice, f"inbound {tag}"),
        "ftp": lambda: clients.ftp_login(host, *ALICE),
        "ftp_bad_password": lambda: clients.ftp_login(host, "alice", "wrong"),
        "bob_imap": lambda: clients.imap_login(host, "bob", "bob-pass-1"),
    })
    found["sendmail"] = clients.local_sendmail(host, "alice", "bob@stock.test", f"out {tag}")[0]
    host.wait(lambda: _arrived(host, f"inbound {tag}"), "the inbound message", timeout=20)
    return found


def _arrived(host: testhost.TestHost, subject: str) -> bool:
    """Return True once a message with `subject` is in alice's Maildir (a POP3 login moves
    new messages to cur/)."""
    maildir = host.path("/home/alice/Maildir")
    return any(subject in p.read_text(errors="replace")
               for sub in ("new", "cur") for p in (maildir / sub).iterdir())


def _agent(host: testhost.TestHost, folder) -> Agent:  # noqa: ANN001 - a pytest tmp path
    books = folder / "playbooks"
    shutil.copytree(PROJECT_ROOT / "playbooks", books)
    for name, step in (("mail-now", "mail_block"), ("ftp-now", "ftp_lock")):
        (books / f"{name}.yaml").write_text(
            f"stages:\n  - after: 0s\n    steps: [backup, {step}]\n")
    return Agent(write_config(host, folder / "agent", playbooks_dir=str(books)), host)


@pytest.fixture(scope="module")
def stock_host(tmp_path_factory):
    """A stock host, probed and checked before and after the documented preparation."""
    index = host_index(offset=10)
    h = testhost.TestHost(f"s{index}", index)
    try:
        h.up()
        provision(h, layout="stock")
        h.agent = _agent(h, tmp_path_factory.mktemp("stock"))
        h.view_before = customer_view(h, "before")
        h.check_before = h.agent("check", h.name)
        h.ftp_refused = h.agent("suspend", h.name, "alice", "--playbook", "ftp-now")
        stock.prepare(h)
        h.view_after = customer_view(h, "after")
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported the same way
        h.down()
        if IN_CI or os.geteuid() == 0:
            pytest.fail(f"stock test host could not start: {exc}")
        pytest.skip(f"test host needs root and debootstrap: {exc}")
    yield h
    h.down()


def test_preparation_changes_nothing_a_customer_sees(stock_host):
    h = stock_host
    assert h.view_before == h.view_after
    assert {k: h.view_after[k] for k in ("imap", "pop", "smtp_auth", "ftp", "bob_imap",
                                         "deliver", "sendmail")} == {
        "imap": "ok", "pop": "ok", "smtp_auth": "ok", "ftp": "ok", "bob_imap": "ok",
        "deliver": "ok", "sendmail": 0}
    assert h.view_after["imap_bad_password"].startswith("auth failed")
    assert h.view_after["ftp_bad_password"].startswith("auth failed")
    assert h.view_after["relay_without_auth"].startswith("refused: 550")
    # Before preparation: `check` names the layout and what it cannot control, and
    # ftp_lock refuses `-l unix` without changing anything.
    rc, _reply, out = h.check_before
    assert rc == 1, out
    assert "mail layout: system users (driver=pam args=-)" in out, out
    assert "not consulted first" in out and "missing: " + DENY in out, out
    assert "not controlled by the agent: unix" in out, out
    rc, reply, out = h.ftp_refused
    assert rc == 1 and "Pure-FTPd authenticates with unix" in out, out
    assert reply["state"] == "active"


def test_check_after_preparation_names_the_layout_and_finds_nothing_uncontrolled(stock_host):
    rc, _reply, out = stock_host.agent("check", stock_host.name)
    assert rc == 0, out
    assert "mail layout: system users (driver=pam args=-); deny passdb " + DENY in out, out
    assert "consulted first" in out and "not consulted first" not in out, out
    assert "Pure-FTPd login methods: pam; not controlled by the agent: none" in out, out


def test_mail_block_holds_on_system_users_without_touching_their_password(stock_host):
    """The deny passdb alone refuses IMAP, POP and SMTP AUTH (SSH with the same password
    still works, so it is not a password lock); port 25 still delivers; sendmail refused."""
    h, agent = stock_host, stock_host.agent
    before = tree_state(h, "/etc", "/home/alice/public_html")
    rc, reply, out = agent("suspend", h.name, "alice", "--playbook", "mail-now")
    try:
        assert rc == 0, out
        assert h.path(DENY).read_text() == "alice\n"
        view = customer_view(h, "mail blocked")
        assert all(view[k].startswith("auth failed") for k in ("imap", "pop", "smtp_auth")), view
        assert view["deliver"] == "ok" and view["bob_imap"] == "ok", view
        assert view["sendmail"] != 0 and view["ftp"] == "ok", view
        assert clients.ssh_password_login(h, *ALICE) == "ok"
    finally:
        rc, _reply, out = agent("unsuspend", h.name, "alice")
    assert rc == 0, out
    assert h.path(DENY).read_bytes() == b""
    assert customer_view(h, "lifted") == {**h.view_after, "deliver": "ok"}
    assert tree_state(h, "/etc", "/home/alice/public_html") == before


def test_immediate_ladder_on_a_stock_host_comes_back_exactly(stock_host):
    h, agent = stock_host, stock_host.agent
    before = tree_state(h, "/etc", "/home/alice/public_html")
    rc, reply, out = agent("suspend", h.name, "alice", "--playbook", "immediate")
    try:
        assert rc == 0, out
        view = customer_view(h, "suspended")
        for key in ("imap", "pop", "smtp_auth", "ftp"):
            assert view[key].startswith("auth failed"), view
        assert view["deliver"] == "ok" and view["sendmail"] != 0, view
        assert web_suspended(h)
        assert clients.ssh_password_login(h, *ALICE) != "ok"
    finally:
        rc, _reply, out = agent("unsuspend", h.name, "alice")
    assert rc == 0, out
    assert not web_suspended(h)
    assert customer_view(h, "restored") == h.view_after
    after = tree_state(h, "/etc", "/home/alice/public_html")
    # usermod's own backups (etc/passwd-, etc/shadow-) hold the version before its edit.
    assert {k: v for k, v in after.items() if k not in ("etc/passwd-", "etc/shadow-")} == {
        k: v for k, v in before.items() if k not in ("etc/passwd-", "etc/shadow-")}
