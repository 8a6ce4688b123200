"""Faults in the middle of the ladder: a database that is down, sshd killed mid-stage, a
revert that fails, and a lock written where the service does not look."""

from __future__ import annotations

import os
import time

import pytest

from agent.engine.outcome import iso
from tests.conftest import Agent, no_records
from tests.hosts import clients
from tests.hosts.provision import write_config
from tests.test_ladder import START, logins, mail_works, snapshot

pytestmark = pytest.mark.testhost

LOCKS_LATER = ("stages:\n  - after: 0s\n    steps: [backup]\n"
               "  - after: 1s\n    steps: [ftp_lock, db_lock, panel_lock]\n")
# pure-pw that stalls on mkdb while the marker exists, so sshd can be killed mid-step.
SLOW_PURE_PW = """#!/bin/sh
if [ "$1" = mkdb ] && [ -e /tmp/sa-slow ]; then sleep 30; fi
exec /usr/bin/pure-pw "$@"
"""


def _agent(host, tmp_path, agent_env, name: str, **linux) -> Agent:
    books = agent_env.config.parent.parent / "playbooks"
    (books / "locks-later.yaml").write_text(LOCKS_LATER)
    cfg = write_config(host, tmp_path / name, linux=linux or None, playbooks_dir=str(books))
    return Agent(cfg, host)


def one_stage(agent_env, name: str, steps: str) -> None:
    """Write playbook `name`: the given steps at once."""
    books = agent_env.config.parent.parent / "playbooks"
    (books / f"{name}.yaml").write_text(f"stages:\n  - after: 0s\n    steps: [{steps}]\n")


def tick_locks_then_lift(agent: Agent, host, before: dict) -> None:
    """Ensure a tick now applies the lock stage, and unsuspend puts everything back exactly."""
    rc, _reply, out = agent("tick")
    assert rc == 0, out
    assert all(v != "ok" for v in logins(host).values())
    rc, _reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert logins(host) == dict.fromkeys(logins(host), "ok")
    assert snapshot(host) == before


def test_database_down_during_db_lock_rolls_the_stage_back(agent_env, host, tmp_path):
    agent = _agent(host, tmp_path, agent_env, "dbdown")
    before = snapshot(host)
    agent.now = START
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "locks-later")
    assert rc == 0, out
    host.stop_mariadb()
    try:
        agent.now = START + 1.5
        rc, reply, out = agent("tick")
        assert rc == 1, out
        (outcome,) = reply["processed"]
        assert [e["step"] for e in outcome["errors"]] == ["db_lock"], out
        assert [r["step"] for r in outcome["reverted"]] == ["ftp_lock"], out
        assert outcome["state"] == "scheduled" and outcome["stage"] == 0
        assert clients.ftp_login(host, "alice_ftp", "ftp-pass-1") == "ok"
        assert no_records(snapshot(host)) == no_records(before)  # the case is still open
        # Not re-applied and rolled back every minute: the stage waits out a backoff.
        (case,) = outcome["cases"]
        assert case["failures"] == 1 and case["last_error"], case
        assert case["next_due"] == iso(START + 1.5 + 60), case
        passwd = host.path("/etc/pure-ftpd/pureftpd.passwd").stat().st_mtime_ns
        agent.now = START + 30
        rc, reply, out = agent("tick")
        assert rc == 0 and reply["processed"] == [], out
        assert host.path("/etc/pure-ftpd/pureftpd.passwd").stat().st_mtime_ns == passwd
        rc, _reply, text = agent.text("status", host.name, "alice")
        assert "RETRY" in text and "failed 1 time(s)" in text, text
    finally:
        host.start_mariadb()
    agent.now = START + 62
    tick_locks_then_lift(agent, host, before)  # the tick after the pause applies the stage


def test_sshd_killed_mid_stage_then_recovered(agent_env, host, tmp_path):
    wrapper = host.path("/usr/local/bin/slow-pure-pw")
    wrapper.write_text(SLOW_PURE_PW)
    os.chmod(wrapper, 0o755)
    agent = _agent(host, tmp_path, agent_env, "sshdkill", pure_pw="/usr/local/bin/slow-pure-pw")
    before = snapshot(host)
    agent.now = START
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "locks-later")
    assert rc == 0, out
    agent.now = START + 1.5
    host.path("/tmp/sa-slow").write_text("")
    passwd = host.path("/etc/pure-ftpd/pureftpd.passwd")
    proc = agent.spawn("tick")
    deadline = time.monotonic() + 60
    while "alice_ftp:!" not in passwd.read_text():
        assert time.monotonic() < deadline and proc.poll() is None, "never reached ftp_lock"
        time.sleep(0.05)
    time.sleep(0.3)  # inside the stalled mkdb
    host.kill_sshd()
    host.path("/tmp/sa-slow").unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (3, 75), out + err
    host.start_sshd()
    rc, reply, out = agent("status", host.name, "alice")
    assert reply["state"] == "partial", out
    tick_locks_then_lift(agent, host, before)  # recovers the stuck change first


def test_failed_revert_is_partial_until_it_works(agent_env, host, tmp_path):
    good = _agent(host, tmp_path, agent_env, "revert")
    before = snapshot(host)
    rc, _reply, out = good("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    broken_cfg = good.config.with_name("broken.yaml")
    # Same state database and key; only usermod is broken, so the login lock cannot be undone.
    broken_cfg.write_text(good.config.read_text().replace(
        "    connect_timeout: 5\n",
        "    connect_timeout: 5\n    linux:\n      usermod: /bin/false\n"))
    broken = Agent(broken_cfg, host)
    rc, reply, out = broken("unsuspend", host.name, "alice")
    assert rc == 3, out
    assert any(e["step"] == "panel_lock" for e in reply["errors"])
    assert [a["step"] for a in reply["applied"]] == ["panel_lock"] or reply["state"] == "partial"
    rc, reply, out = good("status", host.name, "alice")
    assert reply["state"] == "partial" and any(c.get("stuck") == "panel_lock"
                                               for c in reply["cases"]), out
    rc, reply, out = good("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert snapshot(host) == before


def test_lock_where_dovecot_does_not_look_is_reported_failed(agent_env, host, tmp_path):
    host.run(["cp", "-a", "/etc/vmail", "/etc/vmail-copy"])
    try:
        agent = _agent(host, tmp_path, agent_env, "wrongdir", vmail_dir="/etc/vmail-copy")
        one_stage(agent_env, "mail-now", "backup, mail_block")
        before = snapshot(host)
        rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "mail-now")
        assert rc == 1, out
        assert "Dovecot" in reply["errors"][0]["message"], out
        assert mail_works(host)["imap"] == "ok"
        assert snapshot(host) == before
    finally:
        host.run(["rm", "-rf", "/etc/vmail-copy"])


def test_dropin_removed_but_sshd_not_told_converges(agent_env, host, tmp_path):
    good = _agent(host, tmp_path, agent_env, "nohup")
    one_stage(agent_env, "logins-now", "backup, panel_lock")
    before = snapshot(host)
    rc, _reply, out = good("suspend", host.name, "alice", "--playbook", "logins-now")
    assert rc == 0, out
    assert logins(host)["ssh_key"] != "ok"
    # Same state database; the HUP cannot reach sshd (its pid file is elsewhere), so the
    # drop-in is removed but the running sshd keeps denying alice.
    lost_cfg = good.config.with_name("lost.yaml")
    lost_cfg.write_text(good.config.read_text().replace(
        "    connect_timeout: 5\n",
        "    connect_timeout: 5\n    linux:\n      sshd_pid_file: /run/elsewhere.pid\n"))
    rc, reply, out = Agent(lost_cfg, host)("unsuspend", host.name, "alice")
    assert rc == 3, out
    assert not host.path("/etc/ssh/sshd_config.d/suspension-agent-alice.conf").exists()
    assert logins(host)["ssh_key"] != "ok"
    rc, reply, out = good("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert logins(host)["ssh_key"] == "ok"
    assert snapshot(host) == before


# usermod that waits while the marker exists, so the link can be cut in the middle of the
# unsuspend's parallel reverts.
STALLED_USERMOD = """#!/bin/sh
while [ -e /tmp/sa-slow ]; do sleep 0.1; done
exec /usr/sbin/usermod "$@"
"""


def test_link_lost_mid_unsuspend_is_retry_later_and_the_next_call_finishes(
        agent_env, host, tmp_path):
    """Observation 4: Unreachable while reverting is 75 with the journal holding what was in
    flux (not 3 with stuck changes), and the next unsuspend finishes exactly."""
    wrapper = host.path("/usr/local/bin/stalled-usermod")
    wrapper.write_text(STALLED_USERMOD)
    os.chmod(wrapper, 0o755)
    agent = _agent(host, tmp_path, agent_env, "lostlink",
                   usermod="/usr/local/bin/stalled-usermod")
    before = snapshot(host)
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    host.path("/tmp/sa-slow").write_text("")
    try:
        proc = agent.spawn("unsuspend", host.name, "alice")
        deadline = time.monotonic() + 60
        while mail_works(host)["imap"] != "ok":  # reverts under way; usermod now waits
            assert time.monotonic() < deadline and proc.poll() is None, "never reached reverts"
            time.sleep(0.1)
        host.kill_sshd()
    finally:
        host.path("/tmp/sa-slow").unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, out + err
    assert "nothing was rolled back" in out, out
    host.start_sshd()
    rc, reply, out = agent("status", host.name, "alice")
    assert not any("stuck" in c for c in reply.get("cases", [])), out  # nothing for a human
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert logins(host) == dict.fromkeys(logins(host), "ok")
    assert snapshot(host) == before


def test_reloads_of_sshd_side_by_side_never_kill_it(host):
    """Two agents (or a killed agent's script still running on the server) reloading sshd at
    once: a second SIGHUP while sshd re-executes kills it. Seen once under load in the crash
    walk (an unsuspend answered 75: nothing listened any more). The reload script takes a
    lock beside the pid file, so the reloads follow each other and sshd stays up."""
    from concurrent.futures import ThreadPoolExecutor

    from agent.drivers.linux.panel_lock import _HUP_SSHD

    def reload() -> int:
        return host.run(["sh", "-c", _HUP_SSHD, "sh", "/run/sshd.pid"], check=False).returncode

    for _round in range(4):
        with ThreadPoolExecutor(max_workers=3) as pool:
            codes = list(pool.map(lambda _i: reload(), range(3)))
        assert codes == [0, 0, 0], codes
        assert host.port_open(22)
    assert clients.ssh_key_login(host, "alice", host.alice_key) == "ok"
