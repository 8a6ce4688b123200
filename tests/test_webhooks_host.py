"""Webhooks to a receiver on the test host's network (issue 19 item 3): the receiver runs in
the host's namespace, on its address, and checks every delivery with the `standardwebhooks`
reference library. A suspend of bob is told at the next tick; while the receiver is down
the unsuspend's message waits, and once it is back it arrives at the next due tick with the
id it had from the start, after the earlier ones (every message in outbox order)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.testhost

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
PORT = 8089
START = 2_000_000_000.0
RECEIVER = r"""
import http.server, json, sys
from standardwebhooks.webhooks import Webhook
secret, address, port, log = sys.argv[1:5]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            Webhook(secret).verify(body, headers)
            ok = True
        except Exception:
            ok = False
        with open(log, "a") as f:
            f.write(json.dumps({"id": headers["webhook-id"], "ok": ok,
                                "type": json.loads(body)["type"]}) + "\n")
        self.send_response(200 if ok else 400)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((address, int(port)), H).serve_forever()
"""


def start_receiver(host, log) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", host.netns, sys.executable, "-c", RECEIVER,
                             SECRET, host.address, str(PORT), str(log)])
    deadline = time.monotonic() + 10
    while subprocess.run(["ip", "netns", "exec", host.netns, sys.executable, "-c",
                          f"import socket; socket.create_connection(('{host.address}', "
                          f"{PORT}), 1)"], capture_output=True, check=False).returncode:
        assert time.monotonic() < deadline and proc.poll() is None, "receiver did not start"
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # exactly the process this test started
    proc.wait(timeout=10)


def received(log) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_a_receiver_on_the_host_gets_every_message_verified_and_in_order(host, agent_env,
                                                                        tmp_path) -> None:
    agent = agent_env
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    os.chmod(secret, 0o600)
    agent.config.write_text(agent.config.read_text() + (
        f"webhooks:\n  billing:\n    url: http://{host.address}:{PORT}/hook\n"
        f"    allow_http: true\n    secret_files: [{secret}]\n    timeout: 5\n"))
    log = tmp_path / "received.jsonl"
    receiver = start_receiver(host, log)
    try:
        agent.now = START
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "web-now")
        assert rc == 0, out
        rc, reply, out = agent("tick")
        assert rc == 0 and reply["webhooks"]["delivered"] == 2, out
        assert [(r["type"], r["ok"]) for r in received(log)] == [
            ("suspension.case.opened", True), ("suspension.stage.applied", True)]
        stop(receiver)
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0 and reply["state"] == "active", out
        rc, reply, out = agent("tick")
        assert reply["webhooks"] == {"delivered": 0, "retry": 1, "failed": 0}, out
        receiver = start_receiver(host, log)
        agent.now = START + 6  # the second attempt is due 5 s after the first
        rc, reply, out = agent("tick")
        assert reply["webhooks"]["delivered"] == 1, out
        got = received(log)
        assert [r["type"] for r in got][2:] == ["suspension.case.lifted"] and got[2]["ok"]
        db = sqlite3.connect(agent.config.parent / "state.db")
        ids = [r[0] for r in db.execute("SELECT msg_id FROM outbox ORDER BY seq")]
        attempts = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        db.close()
        assert [r["id"] for r in got] == ids and attempts == 4
    finally:
        stop(receiver)
