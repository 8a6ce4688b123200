"""Webhooks back to billing (issue 19 item 3) against the fake server and a real HTTP
receiver on loopback that checks every delivery with the `standardwebhooks` reference
library: messages are written with their audit events (one transaction), sent by `tick` in
order, retried on the schedule while the receiver is down with the same ids, signed with
both secrets while rotating, given up on 410; a tree's children send nothing of their own."""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from agent.cli import EXIT_CONFIG, EXIT_OK
from tests.fast.conftest import World
from tests.fast.test_reseller import with_tree

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
NEXT = "whsec_" + base64.b64encode(b"n" * 32).decode()


class Receiver:
    """An HTTP endpoint that verifies each delivery with standardwebhooks (either secret)."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.got: list[dict] = []
        self.status = 204
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = []
                for secret in receiver.secrets:
                    try:
                        verified.append(Webhook(secret).verify(body, headers))
                    except Exception:  # noqa: BLE001, S112 - another secret may fit
                        continue
                receiver.got.append({"id": headers["webhook-id"], "verified": bool(verified),
                                     "body": json.loads(body),
                                     "signatures": headers["webhook-signature"].count("v1,")})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def secret_file(tmp: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = tmp / name
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return path


def with_webhooks(world: World, port: int, files: list[Path]) -> None:
    world.config_path.write_text(world.config_path.read_text() + (
        "webhooks:\n  billing:\n"
        f"    url: http://127.0.0.1:{port}/hook\n    allow_http: true\n"
        f"    secret_files: [{', '.join(str(f) for f in files)}]\n    timeout: 5\n"))


@pytest.fixture
def hooked(world: World):
    receiver = Receiver([SECRET])
    with_webhooks(world, receiver.port, [secret_file(world.tmp, "hook.secret", SECRET)])
    yield world, receiver
    receiver.close()


def types(got: list[dict]) -> list[str]:
    return [g["body"]["type"] for g in got]


def test_events_are_queued_with_the_journal_and_sent_by_tick_signed(hooked) -> None:
    world, receiver = hooked
    rc, _reply, out = world.cli("suspend", "web1", "alice", "--invoice", "1077")
    assert rc == EXIT_OK, out
    queued = world.rows("outbox")
    assert [r["type"] for r in queued] == ["suspension.case.opened", "suspension.hold.changed",
                                           "suspension.stage.applied"]
    assert receiver.got == []  # sent by tick, not by the billing call
    rc, reply, _ = world.cli("tick")
    assert rc == EXIT_OK and reply["webhooks"] == {"delivered": 3, "retry": 0, "failed": 0}
    assert types(receiver.got) == [r["type"] for r in queued]
    assert all(g["verified"] for g in receiver.got)
    assert [g["id"] for g in receiver.got] == [r["msg_id"] for r in queued]
    opened = receiver.got[0]["body"]["data"]
    assert opened["target"] == {"kind": "account", "name": "alice"} and opened["hold"] == "billing"
    world.cli("reconcile", "web1", "alice", "--overdue", "none")
    world.cli("tick")
    assert types(receiver.got)[3:] == ["suspension.case.lifted"]
    assert {r["state"] for r in world.rows("outbox")} == {"delivered"}
    assert len(world.rows("deliveries")) == 4


def test_a_receiver_that_is_down_gets_the_events_later_in_order_with_the_same_ids(
        hooked) -> None:
    world, receiver = hooked
    receiver.status = 503
    world.cli("suspend", "web1", "alice")
    rc, reply, _ = world.cli("tick")
    assert reply["webhooks"] == {"delivered": 0, "retry": 1, "failed": 0}
    first = receiver.got[0]["id"]
    assert len(receiver.got) == 1  # the pass stops at the first failure: order is kept
    world.clock.t += 2
    world.cli("tick")
    assert len(receiver.got) == 1  # not due yet (5 s after the first attempt)
    receiver.status = 200
    world.clock.t += 4
    rc, reply, _ = world.cli("tick")
    assert reply["webhooks"]["delivered"] == 2
    assert [g["id"] for g in receiver.got] == [first, first, receiver.got[2]["id"]]
    assert types(receiver.got)[1:] == ["suspension.case.opened", "suspension.stage.applied"]
    assert [d["status"] for d in world.rows("deliveries")] == [503, 200, 200]


def test_both_secrets_sign_while_rotating(world: World) -> None:
    receiver = Receiver([NEXT])  # the receiver already has only the new secret
    try:
        with_webhooks(world, receiver.port, [secret_file(world.tmp, "a", SECRET),
                                             secret_file(world.tmp, "b", NEXT)])
        world.cli("suspend", "web1", "alice")
        world.cli("tick")
        assert receiver.got and all(g["verified"] and g["signatures"] == 2
                                    for g in receiver.got)
    finally:
        receiver.close()


def test_410_gives_the_message_up_and_a_bad_secret_sends_nothing(hooked) -> None:
    world, receiver = hooked
    receiver.status = 410
    world.cli("suspend", "web1", "alice")
    world.cli("tick")
    assert world.rows("outbox")[0]["state"] == "failed"
    assert any(r["event"] == "webhook.failed" for r in world.rows("events"))
    os.chmod(world.tmp / "hook.secret", 0o644)
    sent = len(receiver.got)
    world.cli("tick")
    assert len(receiver.got) == sent


def test_a_trees_children_send_nothing_of_their_own(hooked) -> None:
    world, receiver = hooked
    with_tree(world)
    rc, _reply, out = world.cli("suspend", "web1", "--reseller", "rita")
    assert rc == EXIT_OK, out
    world.cli("tick")
    kinds = {(g["body"]["data"]["target"]["kind"], g["body"]["type"]) for g in receiver.got}
    assert kinds == {("reseller", "suspension.case.opened"),
                     ("reseller", "suspension.stage.applied")}, kinds


def test_the_message_and_its_event_are_one_transaction(hooked, monkeypatch) -> None:
    from agent.journal import outbox

    world, _receiver = hooked

    def broken(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(outbox, "enqueue", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        world.cli("suspend", "web1", "alice")
    world.cli_journals.pop().close()
    assert not [r for r in world.rows("events") if r["event"] == "case.opened"]
    assert world.rows("outbox") == []


@pytest.mark.parametrize("entry, said", [
    ("    url: http://billing.test/hook\n    secret_files: [/s]\n", "plain http"),
    ("    url: https://billing.test/hook\n", "one file, or two"),
    ("    url: https://billing.test/hook\n    secret_files: [/s]\n    events: [x]\n",
     "unknown event"),
])
def test_bad_webhook_config_is_78(world: World, entry: str, said: str) -> None:
    world.config_path.write_text(world.config_path.read_text()
                                 + "webhooks:\n  billing:\n" + entry)
    rc, _reply, out = world.cli("status")
    assert rc == EXIT_CONFIG and said in out, out


def test_drift_and_a_stuck_revert_are_messages_too(tmp_path: Path) -> None:
    from agent.config.webhooks import Endpoint
    from agent.journal.journal import Journal

    journal = Journal(str(tmp_path / "s.db"))
    endpoints = {"billing": Endpoint("billing", "https://b.test/h", ("/s",))}
    journal.event(1.0, "step.drift", endpoints, server="web1", kind="server", name="web1",
                  case_id="20231114-aaaaaaaa", step="firewall_block", outcome="repaired")
    journal.event(2.0, "step.revert_failed", endpoints, server="web1", kind="account",
                  name="alice", case_id="20231114-bbbbbbbb", step="mail_block",
                  outcome="stuck", error="doveadm failed")
    journal.event(3.0, "server.unreachable", endpoints, server="web1")  # not a webhook
    rows = journal.db.execute("SELECT type, body FROM outbox ORDER BY seq").fetchall()
    journal.close()
    assert [r["type"] for r in rows] == ["suspension.drift.found", "suspension.case.partial"]
    body = json.loads(rows[1]["body"])
    assert body["data"]["detail"] == {"error": "doveadm failed"}
    assert (body["data"]["step"], body["data"]["outcome"]) == ("mail_block", "stuck")
    assert body["data"]["target"] == {"kind": "account", "name": "alice"}


def test_a_whole_servers_invoices_are_reconciled_like_an_accounts(world: World) -> None:
    from tests.fast.test_whole_server import on_server

    on_server(world)
    pristine = world.step_files()
    rc, reply, out = world.cli("suspend", "web1", "--whole-server", "--invoice", "s-1")
    assert rc == EXIT_OK and reply["invoices"] == {"billing": ["s-1"]}, out
    rc, reply, out = world.cli("reconcile", "web1", "--whole-server", "--overdue", "s-1")
    assert rc == 4 and reply["not_lifted"]["invoices"] == ["s-1"], out
    rc, reply, out = world.cli("reconcile", "web1", "--whole-server", "--overdue", "none")
    assert rc == EXIT_OK and reply["state"] == "active", out
    assert world.step_files() == pristine
