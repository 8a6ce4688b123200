"""The upgrade owed since the release of 2026-11-21 (issue 19 item 6): a host with the
virtual-mailbox layout plus a passdb that only renames bare logins (`passwd-file` with
`default_fields = noauthenticate`, `result_* = continue`, in front of the vmail passdb)
works again.

On the linux test host's real Dovecot (2.3): the bare login `info` logs in as
info@shop.test before; `check` names that passdb as one that authenticates nobody;
mail_block locks the mailbox, and both the full address and the bare login are refused over
IMAP; after the unsuspend both log in again. The same renaming passdb without
`noauthenticate`, checking a password of its own, is a way in (a password it verified is
not checked again by the vmail passdb) and stays refused."""

from __future__ import annotations

import time

import pytest

from tests.hosts import clients

pytestmark = pytest.mark.testhost

RENAMES = """
# The admin's: bare logins renamed to the full address; it checks no password.
passdb {
  driver = passwd-file
  args = /etc/dovecot/bare-logins
@FIELDS@  result_success = continue
  result_failure = continue
  result_internalfail = continue
}
"""
BOOK = "stages:\n  - after: 0s\n    steps: [backup, mail_block]\n"


@pytest.fixture
def renaming(host, agent_env):
    conf = host.path("/etc/dovecot/dovecot.conf")
    original = conf.read_bytes()
    (agent_env.config.parent.parent / "playbooks" / "mail-now.yaml").write_text(BOOK)

    def use(lookup_only: bool) -> None:
        # Without noauthenticate the file holds a password of its own for the bare login.
        # Fields: user:password:uid:gid:gecos:home:shell:extra_fields.
        password = "" if lookup_only else "{PLAIN}info-pass-1"
        host.path("/etc/dovecot/bare-logins").write_text(
            f"info:{password}::::::user=info@shop.test\n")
        text = original.decode()
        at = text.index("passdb {")  # before the vmail passdb: passdbs go in order
        fields = "  default_fields = noauthenticate\n" if lookup_only else ""
        conf.write_text(text[:at] + RENAMES.replace("@FIELDS@", fields) + "\n" + text[at:])
        host.run(["doveadm", "reload"])

    yield use
    conf.write_bytes(original)
    host.path("/etc/dovecot/bare-logins").unlink()
    host.run(["doveadm", "reload"])


def test_a_passdb_that_only_renames_logins_is_no_way_in(host, agent_env, renaming) -> None:
    agent = agent_env
    renaming(True)
    assert clients.imap_login(host, "info", "info-pass-1") == "ok"  # the rename works
    rc, reply, out = agent("check", host.name)
    lines = reply["servers"][0]["lines"]
    assert any(x.startswith("Dovecot passdbs that authenticate nobody") and
               "/etc/dovecot/bare-logins" in x for x in lines), lines
    assert "Dovecot passdbs not controlled by the agent: none" in lines, lines
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "mail-now")
    assert rc == 0, out
    assert clients.imap_login(host, "info@shop.test", "info-pass-1") != "ok"
    assert clients.imap_login(host, "info", "info-pass-1") != "ok"
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert clients.imap_login(host, "info", "info-pass-1") == "ok"
    assert clients.imap_login(host, "info@shop.test", "info-pass-1") == "ok"


def test_the_same_passdb_checking_a_password_of_its_own_is_still_refused(host, agent_env,
                                                                          renaming) -> None:
    renaming(False)
    assert clients.imap_login(host, "info", "info-pass-1") == "ok"
    # Why it is refused: with the vmail password locked as mail_block locks it, the bare
    # login still gets in (its own password, verified first, is not checked again).
    shadow = host.path("/etc/vmail/shop.test/shadow")
    original = shadow.read_bytes()
    shadow.write_bytes(original.replace(b"info:{SHA512-CRYPT}", b"info:*LOCKED*{SHA512-CRYPT}"))
    try:
        # Dovecot looks at a changed passwd-file at most once a second: until the full
        # address is refused, the lock is not read yet.
        deadline = time.monotonic() + 10
        while clients.imap_login(host, "info@shop.test", "info-pass-1") == "ok":
            assert time.monotonic() < deadline, "Dovecot never read the locked password"
            time.sleep(0.2)
        assert clients.imap_login(host, "info", "info-pass-1") == "ok"
    finally:
        shadow.write_bytes(original)
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "mail-now")
    assert rc == 1 and "Dovecot also authenticates through" in out, out
    assert "/etc/dovecot/bare-logins" in out
