"""Bad input: a clear message, exit 2 (78 for config), and nothing changed on the server."""

from __future__ import annotations

import fcntl
import os
import shutil

import pytest

from tests.conftest import WATCHED, tree_state

pytestmark = pytest.mark.testhost

BAD_NAMES = ["alice;id", "$(reboot)", "ali ce", "../alice", "", "a" * 300, "alice`id`",
             "-rf", "Alice"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_account_names(agent_env, host, name):
    before = tree_state(host, *WATCHED)
    for verb in ("suspend", "unsuspend", "status", "plan"):
        rc, reply, out = agent_env(verb, host.name, name)
        assert rc == 2, (verb, out)
        assert reply["ok"] is False and reply["errors"][0]["message"], out
    assert tree_state(host, *WATCHED) == before


@pytest.mark.parametrize("args, text", [
    (["suspend", "nosuch", "alice"], "unknown server"),
    (["suspend", "t1", "alice", "--playbook", "nosuch"], "unknown playbook"),
    (["suspend", "t1", "alice", "--playbook", "../etc/passwd"], "playbook name"),
    (["suspend", "t1", "root"], "protected"),
    (["suspend", "t1", "admin"], "protected"),
    (["suspend", "t1", "alice", "--hold", "whim"], "whim"),
    (["suspend", "t1", "nobody-here", "--playbook", "web-now"], "does not exist"),
    (["suspend", "t1", "--reseller", "res1"], "unknown reseller"),
    (["suspend", "t1", "--reseller", "r;id"], "not valid"),
    (["suspend", "t1", "alice", "--reseller", "res1"], "name one target"),
    (["suspend", "t1", "alice", "--whole-server"], "name one target"),
    (["frobnicate"], "No such command"),
])
def test_bad_requests_exit_2(agent_env, host, args, text):
    before = tree_state(host, *WATCHED)
    rc, reply, out = agent_env(*[host.name if a == "t1" else a for a in args])
    assert rc == 2, out
    assert text in reply["errors"][0]["message"], out
    assert tree_state(host, *WATCHED) == before
    rc, reply, _ = agent_env("status")
    assert reply["targets"] == []


def test_malformed_config_and_playbook_exit_78(agent_env, host, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("servers: [unclosed\n")
    rc, reply, out = agent_env("--config", str(bad), "status")
    assert rc == 78 and "malformed YAML" in reply["errors"][0]["message"], out

    bad.write_text(agent_env.config.read_text().replace("port: 22", "port: 99999")
                   + "surprise: 1\n")
    rc, reply, out = agent_env("--config", str(bad), "status")
    assert rc == 78, out
    message = reply["errors"][0]["message"]
    assert f"servers.{host.name}.port: must be an integer 1-65535" in message
    assert "surprise: unknown key" in message

    books = agent_env.config.parent.parent / "playbooks"
    (books / "broken.yaml").write_text("stages:\n  - after: 1h\n    steps: [landing_page\n")
    (books / "wrong.yaml").write_text(
        "stages:\n  - after: 1h\n    steps: [landing_page]\n"
        "  - after: -5s\n    steps: [backup, mail_blok]\n")
    before = tree_state(host, *WATCHED)
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "broken")
    assert rc == 78 and "malformed YAML" in reply["errors"][0]["message"], out
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "wrong")
    assert rc == 78, out
    message = reply["errors"][0]["message"]
    assert "wrong.yaml" in message
    assert "stages[1].after: must be a non-negative delay" in message
    assert "unknown step 'mail_blok'" in message
    assert "'landing_page' restricts the account before any backup step" in message
    assert tree_state(host, *WATCHED) == before


def test_unknown_host_key_is_refused(agent_env, host):
    known = agent_env.config.parent / "known_hosts"
    good = known.read_text()
    # A different ed25519 key for the same address: a changed host key.
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    known.write_text(f"{host.address} ssh-ed25519 {other}\n")
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 78 and "does not match" in reply["errors"][0]["message"], out
    known.write_text("")
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 78 and "is not in" in reply["errors"][0]["message"], out
    known.write_text(good)
    rc, reply, out = agent_env("status", host.name, "alice")
    assert rc == 0 and reply["state"] == "active", out


def test_world_readable_key_is_refused(agent_env, host):
    key = agent_env.config.parent / "id_ed25519"
    os.chmod(key, 0o644)
    rc, reply, out = agent_env("status")
    assert rc == 78 and "readable by others" in reply["errors"][0]["message"], out


def test_busy_target_exits_75(agent_env, host):
    locks = agent_env.config.parent / "locks"
    locks.mkdir(exist_ok=True)
    fd = os.open(locks / f"{host.name}.account.alice.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
        assert rc == 75 and "busy" in reply["errors"][0]["message"], out
    finally:
        os.close(fd)


def test_forced_command_rejects_extra_words(agent_env, host):
    before = tree_state(host, *WATCHED)
    for command in ("suspend t1 alice; reboot", "suspend t1 alice extra words",
                    "tick", "rm -rf /", "status --config /etc/shadow", "suspend 't1"):
        rc, reply, out = agent_env("serve-ssh", env={
            "SSH_ORIGINAL_COMMAND": command.replace("t1", host.name)})
        assert rc == 2, (command, out)
        assert reply["ok"] is False
    rc, reply, out = agent_env("serve-ssh", env={
        "SSH_ORIGINAL_COMMAND": f"status {host.name} alice"})
    assert rc == 0 and reply["state"] == "active", out
    # A dry run is the one global option the billing key may choose; it changes nothing.
    rc, reply, out = agent_env("serve-ssh", env={
        "SSH_ORIGINAL_COMMAND": f"--dry-run suspend {host.name} alice --playbook web-now"})
    assert rc == 0 and reply["plan"] and reply["state"] == "active", out
    assert tree_state(host, *WATCHED) == before


def test_cli_without_config_is_78(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SUSPENSION_AGENT_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "agent", "--config",
                           str(tmp_path / "none.yaml"), "status"], capture_output=True,
                          text=True, env=env, check=False)
    assert proc.returncode == 78 and "cannot read config" in proc.stderr
    assert shutil.which("true")
