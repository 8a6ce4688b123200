"""Faults: the agent killed between intent and done; a backup that cannot be written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from agent import PROJECT_ROOT
from agent.config.servers import Server
from agent.steps.probes import fetch, looks_suspended
from tests.conftest import WATCHED, Agent, no_records, tree_state
from tests.hosts.provision import write_config
from tests.hosts.testhost import _comm

pytestmark = pytest.mark.testhost

# apache2ctl that stalls on configtest while the marker exists, so a kill lands mid-step.
SLOW_APACHECTL = """#!/bin/sh
if [ "$1" = configtest ] && [ -e /tmp/sa-slow ]; then sleep 20; fi
exec /usr/sbin/apache2ctl "$@"
"""


def _sshd(host) -> int:
    return min(p for p in host.pids() if _comm(p) == "sshd")


def _agent_with(host, tmp_path, agent_env, **linux) -> Agent:
    cfg = write_config(host, tmp_path / "faulty", linux=linux,
                       playbooks_dir=str(agent_env.config.parent.parent / "playbooks"))
    return Agent(cfg, host)


def _kill_mid_landing(agent: Agent, host) -> None:
    hook = host.path("/etc/apache2/suspension-agent/alice/suspension-agent.conf")
    host.path("/tmp/sa-slow").write_text("")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "--config", str(agent.config),
                             "suspend", host.name, "alice", "--playbook", "web-now"],
                            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not hook.exists():
        assert time.monotonic() < deadline, "the agent never wrote the include"
        assert proc.poll() is None, "the agent ended before the kill"
        time.sleep(0.05)
    time.sleep(0.3)  # now inside the stalled configtest: intent written, done not yet
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    host.path("/tmp/sa-slow").unlink()


def test_kill_between_intent_and_done_then_unsuspend(agent_env, host, tmp_path):
    host.path("/usr/local/bin/slow-apachectl").write_text(SLOW_APACHECTL)
    os.chmod(host.path("/usr/local/bin/slow-apachectl"), 0o755)
    before = tree_state(host, *WATCHED)
    agent = _agent_with(host, tmp_path, agent_env, apachectl="/usr/local/bin/slow-apachectl")

    _kill_mid_landing(agent, host)
    rc, reply, out = agent("status", host.name, "alice")
    assert reply["state"] == "partial", out  # an intent without done is visible
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert tree_state(host, *WATCHED) == before
    srv = Server(name=host.name, panel="linux", transport="ssh", host=host.address)
    assert fetch(srv, "shop.test", "/", False).status_code == 200

    # Killed again, then `suspend` is retried: it converges to a clean suspension.
    _kill_mid_landing(agent, host)
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0 and reply["state"] == "suspended", out
    assert looks_suspended(fetch(srv, "blog.test", "/x", True))
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert tree_state(host, *WATCHED) == before
    host.path("/usr/local/bin/slow-apachectl").unlink()


def test_backup_on_full_disk_stops_the_case(agent_env, host, tmp_path):
    tiny = host.path("/var/backups/tiny")
    tiny.mkdir()
    host.in_namespaces(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(tiny)])
    try:
        subprocess.run(["nsenter", "-t", str(_sshd(host)), "-m", "dd", "if=/dev/zero",
                        f"of={tiny}/filler", "bs=1k", "count=64"], capture_output=True,
                       check=False)
        before = tree_state(host, *WATCHED)
        agent = _agent_with(host, tmp_path, agent_env, backup_dir="/var/backups/tiny/sa")
        rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
        assert rc == 1, out
        assert reply["state"] == "active" and reply["holds"] == []
        assert "backup failed" in reply["errors"][0]["message"]
        assert tree_state(host, *WATCHED) == before
        listing = host.in_namespaces(["find", str(tiny), "-type", "f"]).stdout.decode().split()
        assert listing == [f"{tiny}/filler"]
        srv = Server(name=host.name, panel="linux", transport="ssh", host=host.address)
        assert fetch(srv, "shop.test", "/", False).status_code == 200
        rc, reply, out = agent("status")
        assert reply["targets"] == [], out
    finally:
        host.in_namespaces(["umount", str(tiny)])
        tiny.rmdir()


def test_failing_configtest_puts_files_back(agent_env, host):
    # Without mod_headers the include's `Header` lines do not parse: configtest fails.
    host.run(["a2dismod", "-q", "-f", "headers"])
    try:
        before = tree_state(host, *WATCHED)
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
        assert rc == 1, out
        assert reply["state"] == "active" and reply["holds"] == []
        assert "configtest" in reply["errors"][0]["message"]
        assert tree_state(host, *WATCHED) == before
        srv = Server(name=host.name, panel="linux", transport="ssh", host=host.address)
        assert fetch(srv, "blog.test", "/", True).status_code == 200
    finally:
        host.run(["a2enmod", "-q", "headers"])
        host.run(["/usr/sbin/apache2ctl", "graceful"])


# apache2ctl whose graceful fails while the marker exists: the include is already removed
# when it fails, so the files look restored while Apache still serves the landing page.
FAILING_GRACEFUL = """#!/bin/sh
if [ "$1" = graceful ] && [ -e /tmp/sa-nograceful ]; then echo "graceful refused" >&2; exit 1; fi
exec /usr/sbin/apache2ctl "$@"
"""


def test_files_back_but_apache_not_reloaded_converges(agent_env, host, tmp_path):
    wrapper = host.path("/usr/local/bin/nograceful-apachectl")
    wrapper.write_text(FAILING_GRACEFUL)
    os.chmod(wrapper, 0o755)
    before = tree_state(host, *WATCHED)
    agent = _agent_with(host, tmp_path, agent_env, apachectl="/usr/local/bin/nograceful-apachectl")
    srv = Server(name=host.name, panel="linux", transport="ssh", host=host.address)
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    host.path("/tmp/sa-nograceful").write_text("")
    try:
        rc, reply, out = agent("unsuspend", host.name, "alice")
        assert rc == 3, out  # the graceful failed: stuck, said so
        # The files look restored (the case record stays while the revert is stuck)...
        assert no_records(tree_state(host, *WATCHED)) == no_records(before)
        assert looks_suspended(fetch(srv, "shop.test", "/", False))  # ...Apache does not
    finally:
        host.path("/tmp/sa-nograceful").unlink()
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert fetch(srv, "shop.test", "/", False).status_code == 200
    assert tree_state(host, *WATCHED) == before
    wrapper.unlink()
