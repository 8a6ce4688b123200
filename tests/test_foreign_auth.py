"""Grades whose verification cannot lie (issue 9, item 3): when Dovecot can authenticate a
mailbox in a way mail_block does not cover, the step is refused at plan time with the
reason, nothing changes, and `check` names the way in."""

from __future__ import annotations

import pytest

from tests.conftest import WATCHED, no_records, tree_state
from tests.test_ladder_faults import one_stage

pytestmark = pytest.mark.testhost

DOVECOT = "/etc/dovecot/dovecot.conf"


def _book(agent_env, name: str, step: str) -> None:
    one_stage(agent_env, name, f"backup, {step}")


def test_dovecot_with_a_pam_passdb_refuses_mail_block(agent_env, host):
    original = host.path(DOVECOT).read_bytes()
    host.path(DOVECOT).write_bytes(original + b"passdb {\n  driver = pam\n}\n")
    host.run(["doveadm", "reload"])
    try:
        _book(agent_env, "mail-now", "mail_block")
        before = no_records(tree_state(host, *WATCHED, "/etc/vmail"))
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "mail-now")
        assert rc == 1, out
        message = reply["errors"][0]["message"]
        assert "driver=pam" in message and "mail_block does not control" in message, out
        assert reply["state"] == "active"
        assert no_records(tree_state(host, *WATCHED, "/etc/vmail")) == before
        rc, reply, out = agent_env("check", host.name)
        assert rc == 1 and "not controlled by the agent: driver=pam" in out, out
    finally:
        host.path(DOVECOT).write_bytes(original)
        host.run(["doveadm", "reload"])


def test_pureftpd_with_unix_logins_refuses_ftp_lock(agent_env, host):
    """Debian's pure-ftpd-wrapper turns conf/UnixAuthentication=yes into `-l unix`, which
    checks /etc/shadow and never /etc/ftpusers: ftp_lock cannot close that login."""
    unix = host.path("/etc/pure-ftpd/conf/UnixAuthentication")
    original = unix.read_bytes()
    unix.write_text("yes\n")
    try:
        _book(agent_env, "ftp-now", "ftp_lock")
        before = no_records(tree_state(host, *WATCHED, "/etc/pure-ftpd"))
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "ftp-now")
        assert rc == 1, out
        assert "Pure-FTPd authenticates with unix" in reply["errors"][0]["message"], out
        assert no_records(tree_state(host, *WATCHED, "/etc/pure-ftpd")) == before
        rc, reply, out = agent_env("check", host.name)
        assert rc == 1 and "not controlled by the agent: unix" in out, out
    finally:
        unix.write_bytes(original)
    rc, reply, out = agent_env("check", host.name)
    assert rc == 0 and "Pure-FTPd login methods: pam; not controlled by the agent: none" in out
    assert "Exim authenticators not going through Dovecot: none" in out, out


def test_outgoing_hold_is_refused_on_the_linux_driver(agent_env, host):
    """`outgoing: hold` (cPanel's hold_outgoing_email) has no linux counterpart: refused at
    plan time, nothing changed, rather than silently rejecting mail instead."""
    books = agent_env.config.parent.parent / "playbooks"
    (books / "hold.yaml").write_text("stages:\n  - after: 0s\n    steps:\n      - backup\n"
                                     "      - mail_block:\n          outgoing: hold\n")
    before = no_records(tree_state(host, *WATCHED, "/etc/vmail", "/etc/exim4"))
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "hold")
    assert rc == 1, out
    assert "outgoing: hold is not available on the linux driver" in out, out
    assert reply["state"] == "active"
    assert no_records(tree_state(host, *WATCHED, "/etc/vmail", "/etc/exim4")) == before
