"""The caller's contract: --dry-run changes nothing for any verb, plan/dry-run/real runs agree,
an unreachable server is "retry later" (75) everywhere, a failed cleanup is never forgotten."""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.conftest import Agent
from tests.hosts.delayproxy import DelayProxy
from tests.hosts.provision import write_config
from tests.test_ladder import START, logins, snapshot, web_suspended

pytestmark = pytest.mark.testhost

# Differences allowed between a plan and the run that carries it out: the case id and the
# backup's timestamp.
_CASE = re.compile(r"\b(\d{8}-[0-9a-f]{8}|dry-run|plan)\b")
_STAMP = re.compile(r"\d{8}T\d{6}Z")


def _norm(lines: list[str]) -> list[str]:
    return [_STAMP.sub("STAMP", _CASE.sub("CASE", line)) for line in lines]


def test_dry_run_of_every_verb_changes_nothing(agent_env, host):
    agent_env.now = START
    rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "demo")
    assert rc == 0, out
    before = snapshot(host)
    agent_env.now = START + 60  # every later stage is due
    for verb in (["suspend", host.name, "bob", "--playbook", "immediate"],
                 ["unsuspend", host.name, "alice"], ["tick"], ["status"],
                 ["plan", host.name, "bob", "--playbook", "immediate"],
                 ["history", host.name, "alice"], ["check"]):
        rc, reply, out = agent_env("--dry-run", *verb)
        assert rc == 0, (verb, out)
        assert snapshot(host) == before, verb
    rc, reply, out = agent_env("--dry-run", "tick")
    assert [p["step"] for p in reply["processed"][0]["plan"]] == [
        "mail_block", "ftp_lock", "db_lock", "panel_lock"], out
    rc, reply, out = agent_env("status", host.name, "alice")
    assert reply["stage"] == 0 and reply["pending"], out  # nothing advanced
    assert logins(host) == dict.fromkeys(logins(host), "ok")


def test_plan_dry_run_and_real_run_agree(agent_env, host):
    rc, planned, out = agent_env("plan", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    plan_lines = {e["step"]: _norm(e["actions"]) for e in planned["stages"][0]["steps"]}
    rc, dry, out = agent_env("--dry-run", "suspend", host.name, "alice", "--playbook",
                             "immediate")
    assert rc == 0, out
    dry_lines = {p["step"]: _norm(p["actions"]) for p in dry["plan"]}
    assert dry_lines == plan_lines
    rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    rc, hist, out = agent_env("history", host.name, "alice")
    carried = {e["step"]: _norm(e["detail"]["actions"]) for e in hist["events"]
               if e["event"] == "step.applied"}
    # A step whose plan is "nothing to do" carries out nothing.
    assert carried == {k: [] if v[0].startswith("nothing to do") else v
                       for k, v in plan_lines.items()}


def test_plan_exits_1_when_a_step_cannot_be_planned_and_shows_human_delays(agent_env, host):
    rc, reply, out = agent_env("plan", host.name, "alice", "--playbook", "standard")
    assert rc == 0 and reply["ok"], out
    assert [s["delay"] for s in reply["stages"]] == ["0s", "1d", "3d"]
    cfg = agent_env.config.with_name("nohook.yaml")
    cfg.write_text(agent_env.config.read_text().replace(
        "    connect_timeout: 5\n",
        "    connect_timeout: 5\n    linux:\n      exim_hook_dir: /nonexistent\n"))
    rc, reply, out = Agent(cfg, host)("plan", host.name, "alice", "--playbook", "standard")
    assert rc == 1 and not reply["ok"] and reply["errors"][0]["step"] == "mail_block", out
    rc, _reply, text = Agent(cfg, host).text("plan", host.name, "alice")
    assert "stage 2 (after 3d):" in text


def test_unreachable_is_75_for_every_verb(agent_env, host, tmp_path):
    with DelayProxy((host.address, 22), up=0.0, down=0.0) as proxy:
        dead = Agent(write_config(host, tmp_path / "dead", proxy_port=proxy.port,
                                  playbooks_dir=str(agent_env.config.parent.parent /
                                                    "playbooks")), host)
        dead.now = START
        rc, _reply, out = dead("suspend", host.name, "alice", "--playbook", "demo")
        assert rc == 0, out
    # The proxy is gone: nothing listens on its port any more.
    dead.now = START + 60
    for verb in (["suspend", host.name, "bob", "--playbook", "web-now"],
                 ["unsuspend", host.name, "alice"], ["tick"],
                 ["plan", host.name, "alice"], ["check"]):
        rc, reply, out = dead(*verb)
        assert rc == 75, (verb, out)
        assert reply["ok"] is False, out
    assert web_suspended(host)  # nothing rolled back, nothing lifted


SLOW_PURE_PW = """#!/bin/sh
if [ "$1" = mkdb ] && [ -e /tmp/sa-slow ]; then sleep 30; fi
exec /usr/bin/pure-pw "$@"
"""


def test_link_lost_mid_stage_keeps_the_intent_and_no_rollback(agent_env, host, tmp_path):
    wrapper = host.path("/usr/local/bin/slow-pure-pw")
    wrapper.write_text(SLOW_PURE_PW)
    os.chmod(wrapper, 0o755)
    books = str(agent_env.config.parent.parent / "playbooks")
    before = snapshot(host)
    passwd = host.path("/etc/pure-ftpd/pureftpd.passwd")
    host.path("/tmp/sa-slow").write_text("")
    try:
        with DelayProxy((host.address, 22), up=0.0, down=0.0) as proxy:
            agent = Agent(write_config(host, tmp_path / "cut", proxy_port=proxy.port,
                                       linux={"pure_pw": "/usr/local/bin/slow-pure-pw"},
                                       playbooks_dir=books), host)
            proc = agent.spawn("suspend", host.name, "alice", "--playbook", "immediate")
            deadline = time.monotonic() + 60
            while "alice_ftp:!" not in passwd.read_text():
                assert time.monotonic() < deadline and proc.poll() is None, "no ftp_lock"
                time.sleep(0.05)
        # The link is cut while pure-pw mkdb runs.
        out, err = proc.communicate(timeout=120)
    finally:
        host.path("/tmp/sa-slow").unlink()
    assert proc.returncode == 75, out + err
    assert web_suspended(host)  # the landing page, done before the cut, stays: no rollback
    assert logins(host)["ssh_key"] == "ok"  # panel_lock was never started
    # Same journal, a direct link: the next call finishes the stage.
    agent = Agent(write_config(host, tmp_path / "cut", playbooks_dir=books), host)
    rc, reply, out = agent("status", host.name, "alice")
    assert reply["state"] == "partial", out
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0 and reply["state"] == "suspended", out
    assert all(v != "ok" for v in logins(host).values())
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert snapshot(host) == before


FAILING_APACHECTL = """#!/bin/sh
if [ "$1" = configtest ]; then echo "AH00526: Syntax error (test)" >&2; exit 1; fi
exec /usr/sbin/apache2ctl "$@"
"""


def test_a_cleanup_that_fails_is_stuck_never_forgotten(agent_env, host, tmp_path):
    wrapper = host.path("/usr/local/bin/failing-apachectl")
    wrapper.write_text(FAILING_APACHECTL)
    os.chmod(wrapper, 0o755)
    books = str(agent_env.config.parent.parent / "playbooks")
    bad = Agent(write_config(host, tmp_path / "bad", playbooks_dir=books,
                             linux={"apachectl": "/usr/local/bin/failing-apachectl"}), host)
    rc, reply, out = bad("suspend", host.name, "alice", "--playbook", "web-now")
    # The configtest fails on apply, and again on the cleanup's own configtest.
    assert rc == 3, out
    assert reply["state"] == "partial", out
    rc, reply, out = bad("status", host.name, "alice")
    assert any(c.get("stuck") == "landing_page" for c in reply["cases"]), out
    # With Apache's own apachectl, the next call finishes the cleanup.
    good_cfg = bad.config.with_name("good.yaml")
    good_cfg.write_text(bad.config.read_text().replace("/usr/local/bin/failing-apachectl",
                                                       "/usr/sbin/apache2ctl"))
    rc, reply, out = Agent(good_cfg, host)("unsuspend", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out
    assert not host.path("/etc/apache2/suspension-agent/alice/suspension-agent.conf").exists()
