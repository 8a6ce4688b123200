"""The contract polish users asked for (issue 19 item 6): --version, global options after
the verb (a value of the verb's own option stays its value), -q and -v, and nothing but the
reply on stdout with no library traceback on stderr when the SSH handshake fails."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

from agent import PROJECT_ROOT, __version__
from agent.cli import EXIT_BUSY, EXIT_OK
from agent.cli.argv import hoist
from agent.cli.base import cli
from tests.fast.conftest import World


def test_version(world: World) -> None:
    rc, _none, out = world.cli("--version", as_json=False)
    assert rc == EXIT_OK and out.strip() == f"suspension-agent, version {__version__}"


def test_global_options_after_the_verb(world: World) -> None:
    rc, reply, _out = world.cli("status", "--json", as_json=False)
    assert rc == EXIT_OK and reply is None  # not parsed as JSON by the helper: check text
    rc, _none, out = world.cli("status", "--json", as_json=False)
    assert json.loads(out) == {"ok": True, "targets": []}
    rc, reply, out = world.cli("suspend", "web1", "alice", "--dry-run")
    assert rc == EXIT_OK and reply["plan"], out
    assert world.fake.changing() == [] and world.rows("cases") == []
    # A value of the verb's own option is its value, even when it looks like a global one.
    rc, reply, _out = world.cli("suspend", "web1", "alice", "--reason", "--json")
    assert rc == EXIT_OK and world.rows("cases")[0]["reason"] == "--json"


def test_hoist_moves_only_global_options() -> None:
    commands = cli.commands
    assert hoist(["status", "web1", "--json"], commands) == ["--json", "status", "web1"]
    assert hoist(["suspend", "web1", "a", "--config", "/c.yaml", "-q"], commands) == [
        "--config", "/c.yaml", "-q", "suspend", "web1", "a"]
    assert hoist(["suspend", "web1", "a", "--reason", "--dry-run"], commands) == [
        "suspend", "web1", "a", "--reason", "--dry-run"]
    assert hoist(["--json", "tick"], commands) == ["--json", "tick"]
    assert hoist(["frobnicate", "--json"], commands) == ["frobnicate", "--json"]


def test_quiet_prints_nothing_on_success_only(world: World) -> None:
    rc, _none, out = world.cli("-q", "suspend", "web1", "alice", as_json=False)
    assert rc == EXIT_OK and out == ""
    rc, _none, out = world.cli("suspend", "web1", "root", "-q", as_json=False)
    assert rc != EXIT_OK and "root" in out


def test_verbose_shows_each_command_on_stderr_but_not_in_the_audit_log(world: World) -> None:
    rc, _none, out = world.cli("-v", "suspend", "web1", "alice", as_json=False)
    assert rc == EXIT_OK and "debug: command server=web1" in out
    audit = (world.tmp / "audit.jsonl").read_text()
    assert '"event": "case.opened"' in audit and '"command"' not in audit


def _garbage_ssh_server() -> tuple[socket.socket, int]:
    """A TCP server that answers every connection with something that is not SSH."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _addr = server.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.0 400 not ssh\r\n\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_a_failed_ssh_handshake_is_one_error_and_no_traceback(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    server, port = _garbage_ssh_server()
    try:
        key = tmp_path / "key"
        key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption()))
        key.chmod(0o600)
        known = tmp_path / "known_hosts"
        known.write_text("127.0.0.1 ssh-ed25519 "
                         "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
        known.chmod(0o600)
        cfg = tmp_path / "config.yaml"
        cfg.write_text(f"state_db: {tmp_path / 'state.db'}\naudit_log: {tmp_path / 'a.jsonl'}\n"
                       f"servers:\n  web1:\n    panel: linux\n    transport: ssh\n"
                       f"    host: 127.0.0.1\n    port: {port}\n    connect_timeout: 3\n"
                       f"    key_file: {key}\n    known_hosts: {known}\n")
        for json_flag in ([], ["--json"]):
            proc = subprocess.run([sys.executable, "-m", "agent", *json_flag, "--config",
                                   str(cfg), "suspend", "web1", "alice"], capture_output=True,
                                  text=True, cwd=PROJECT_ROOT, timeout=60, check=False)
            assert proc.returncode == EXIT_BUSY, proc
            assert proc.stderr == "", proc.stderr  # no paramiko traceback
            assert "SSH protocol banner" in proc.stdout
            if json_flag:
                assert json.loads(proc.stdout)["ok"] is False
    finally:
        server.close()
