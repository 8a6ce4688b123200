"""A hostile caller's table: well over 100 CLI and forced-command inputs, each refused with
exit 2 (78 for a config), a JSON reply, nothing changed on the host and nothing written to
the journal (issue 9, items 5-7)."""

from __future__ import annotations

import os
import sqlite3
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import WATCHED, tree_state

pytestmark = pytest.mark.testhost

S = "{server}"  # replaced by the test host's name
NAMES = ["alice;id", "$(reboot)", "ali ce", "../alice", "", "a" * 300, "alice`id`", "-rf",
         "Alice", "alice\n", "al*ce", "a\x1b[2Jb", "alice/..", "~alice", "alice\\", "'alice'",
         "al\u0131ce", "alice\r", " alice", "alice "]
CLI: list[tuple[list[str], int]] = [
    *[([verb, S, name], 2) for name in NAMES for verb in ("suspend", "unsuspend", "status",
                                                          "plan", "history")],
    # System accounts (uid below min_uid, and nobody) and accounts the host does not have.
    *[([verb, S, name], 2) for name in ("daemon", "www-data", "backup", "nobody", "mail",
                                        "sshd") for verb in ("suspend", "plan")],
    *[(["--dry-run", "suspend", S, name], 2) for name in ("daemon", "www-data", "backup")],
    (["status", S, "nosuch"], 2), (["suspend", S, "nosuch"], 2), (["plan", S, "nosuch"], 2),
    # Options: empty, oversized, control characters, unknown values.
    (["suspend", S, "alice", "--playbook", ""], 2),
    (["suspend", S, "alice", "--playbook", "../etc/passwd"], 2),
    (["suspend", S, "alice", "--playbook", "web-now\n"], 2),
    (["suspend", S, "alice", "--hold", ""], 2), (["suspend", S, "alice", "--hold", "ABUSE"], 2),
    (["unsuspend", S, "alice", "--hold", "everything"], 2),
    (["suspend", S, "alice", "--reason", ""], 2),
    (["suspend", S, "alice", "--reason", "x" * 501], 2),
    (["suspend", S, "alice", "--reason", "x" * 100_000], 2),
    (["suspend", S, "alice", "--reason", "paid\x1b[2J\x1b]0;owned\x07"], 2),
    (["suspend", S, "alice", "--reason", "ok\n2026-01-01 case.lifted forged"], 2),
    (["suspend", S, "alice", "--reason", "tab\there"], 2),
    (["suspend", S, "alice", "--reason", "rtl\u202eoverride"], 2),
    (["suspend", S, "alice", "--whole-server"], 2), (["suspend", S, "--reseller", "res1"], 2),
    (["suspend", "no such server", "alice"], 2), (["suspend", "../srv", "alice"], 2),
    (["frobnicate"], 2), (["suspend"], 2), (["suspend", S, "alice", "--bogus"], 2),
]
# What the billing key may send (its authorized_keys line runs serve-ssh --caller billing).
FORCED: list[str] = [
    "", "suspension-agent", "tick", "recover {server}", "serve-ssh", "check; id",
    "preview-landing", "suspend {server} alice; reboot", "suspend {server} alice extra words",
    "rm -rf /", "status --config /etc/shadow", "suspend '{server}", "suspend {server} alice &&",
    "--config /tmp/x status", "--json --dry-run tick", "suspend {server} $(id)",
    "unsuspend {server} alice --hold abuse", "unsuspend {server} alice --hold=manual",
    "suspend {server} alice --hold abuse", "suspend {server} alice --hold=abuse",
    "suspend {server} --whole-server", "unsuspend {server} --whole-server",
    "suspend {server} alice --reason '\x1b[31mred'", "suspend {server} daemon",
    "suspend {server} alice --playbook ''", "status {server} nosuch", "history {server} -rf",
    "suspend {server} alice\nreboot", "suspend\t{server}\talice --hold manual",
    "suspension-agent --dry-run unsuspend {server} alice --hold abuse",
]


def _journal_rows(db) -> tuple:
    if not db.exists():
        return ()
    with sqlite3.connect(db) as conn:
        return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608
                     for t in ("cases", "changes", "events"))


def _run_all(agent_env, calls: list[tuple[list[str], dict | None, int]]) -> list[str]:
    """Run every call side by side; return a line for each that did not answer as it must."""
    def one(call: tuple[list[str], dict | None, int]) -> str | None:
        args, env, want = call
        rc, reply, out = agent_env(*args, env=env, timeout=120)
        if rc != want or not reply or reply.get("ok") is not False:
            return f"{args!r} {env!r}: exit {rc}, wanted {want}: {out[-300:]!r}"
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [r for r in pool.map(one, calls) if r]


def test_hostile_cli_and_forced_commands_change_nothing(agent_env, host):
    db = agent_env.config.parent / "state.db"
    agent_env("status")  # the journal exists before the table runs
    before, rows = tree_state(host, *WATCHED), _journal_rows(db)
    calls = [([a.replace(S, host.name) for a in args], None, want) for args, want in CLI]
    calls += [(["serve-ssh"], {"SSH_ORIGINAL_COMMAND": c.format(server=host.name)}, 2)
              for c in FORCED]
    assert len(calls) >= 100
    assert _run_all(agent_env, calls) == []
    assert tree_state(host, *WATCHED) == before
    assert _journal_rows(db) == rows
    # The one thing the billing key may do with a hold of its own still works.
    rc, reply, out = agent_env("serve-ssh", env={
        "SSH_ORIGINAL_COMMAND": f"--dry-run suspend {host.name} alice --playbook web-now"})
    assert rc == 0 and reply["plan"], out


def test_billing_key_cannot_lift_an_admins_abuse_hold(agent_env, host):
    rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now",
                                "--hold", "abuse", "--reason", "phishing kit")
    assert rc == 0, out
    rc, reply, out = agent_env("serve-ssh", env={
        "SSH_ORIGINAL_COMMAND": f"unsuspend {host.name} alice --hold abuse"})
    assert rc == 2 and "may not place or lift the 'abuse' hold" in out, out
    rc, reply, out = agent_env("status", host.name, "alice")
    assert reply["holds"] == ["abuse"], out
    # A caller the config grants the abuse hold may lift it.
    cfg = agent_env.config
    cfg.write_text(cfg.read_text() + "callers:\n  abuse-desk:\n    holds: [abuse]\n")
    rc, reply, out = agent_env("serve-ssh", "--caller", "abuse-desk", env={
        "SSH_ORIGINAL_COMMAND": f"unsuspend {host.name} alice --hold abuse"})
    assert rc == 0 and reply["state"] == "active", out


def test_stored_reason_is_shown_escaped(agent_env, host):
    """Text stored before this check existed (or an error from the server) is shown escaped."""
    rc, _reply, out = agent_env("--dry-run", "suspend", host.name, "alice", "--playbook",
                                "web-now", "--reason", "fine")
    assert rc == 0, out
    db = agent_env.config.parent / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO events (at, event, server, kind, name, caller, detail) "
                     "VALUES (1, 'case.opened', ?, 'account', 'alice', 'x', ?)",
                     (host.name, '{"reason": "a\\u001b[2Jb\\nforged line"}'))
    rc, _reply, text = agent_env.text("history", host.name, "alice")
    assert "\x1b" not in text and "forged line" in text and "\\x1b[2J" in text, text
    assert len(text.splitlines()) == 1, text


@pytest.mark.parametrize("kind", ["fifo", "device", "huge", "directory", "shadow",
                                  "world-writable", "binary"])
def test_config_that_is_not_one_is_78_without_echo(agent_env, host, tmp_path, kind):
    bad = tmp_path / "bad.yaml"
    secret = "root:$y$j9T$SECRETHASH$abcdefghijklmnop:19000:0:99999:7:::"
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "device":
        bad = "/dev/zero"
    elif kind == "huge":
        bad.write_bytes(b"# x\n" * (1 << 19))
    elif kind == "directory":
        bad.mkdir()
    elif kind == "shadow":
        bad.write_text(f"{secret}\ndaemon:*:19000:0:99999:7:::\n")
    elif kind == "world-writable":
        bad.write_text(agent_env.config.read_text())
        os.chmod(bad, 0o666)
    else:
        bad.write_bytes(b"\xff\xfe" + secret.encode())
    rc, reply, out = agent_env("--config", str(bad), "status", timeout=30)
    assert rc == 78 and reply["ok"] is False, out
    assert "SECRETHASH" not in out


def test_world_writable_known_hosts_is_78(agent_env, host):
    known = agent_env.config.parent / "known_hosts"
    os.chmod(known, os.stat(known).st_mode | stat.S_IWOTH)
    rc, reply, out = agent_env("status")
    assert rc == 78 and "writable by group or others" in out, out
