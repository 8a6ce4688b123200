"""Billing's calls against the linux test host, checked from outside (issue 19 items 1-2).

- `--idempotency-key` through the delay proxy: three calls with one key started at once act
  once (one case opened), the others answer 75 (the first still runs) or replay its reply;
  a later retry replays it; the same key with another playbook is exit 2 and changes
  nothing on the host.
- Invoices: two on the billing hold; `reconcile --overdue 1077` keeps the sites behind the
  landing page (exit 4, 1077 named); an abuse hold placed meanwhile keeps them there after
  `--overdue none` (exit 4, abuse named); lifting it gives back the host byte for byte.
- The dossier of that real billing case: its manifest's hashes match its files, and its
  WARC holds what visitors were shown by the landing page's verify (503 and the page, for
  each of bob's domains over HTTP and HTTPS).
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.hosts.delayproxy import DelayProxy
from tests.hosts.provision import write_config
from tests.test_ladder import NOT_RESTORED, snapshot
from tests.test_reseller_linux import shows

pytestmark = pytest.mark.testhost

KEY = "whmcs:t:42:suspend:2026-12-04"


def test_three_calls_with_one_key_at_once_act_once(host, agent_env, tmp_path) -> None:
    import json

    with DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.004) as proxy:
        agent_env.config = write_config(host, tmp_path / "slow", proxy_port=proxy.port,
                                        playbooks_dir=str(tmp_path / "playbooks"))
        agent = agent_env
        calls = [agent.spawn("suspend", host.name, "bob", "--playbook", "web-now",
                             "--idempotency-key", KEY) for _ in range(3)]
        replies = []
        for proc in calls:
            out, err = proc.communicate(timeout=120)
            replies.append((proc.returncode, json.loads(out) if out.strip() else None, err))
        codes = sorted(rc for rc, _r, _e in replies)
        assert codes[0] == 0 and set(codes) <= {0, 75}, replies
        ran = [r for rc, r, _e in replies if rc == 0 and not r["idempotency"]["replayed"]]
        assert len(ran) == 1, replies  # exactly one call acted
        busy = [r for rc, r, _e in replies if rc == 75]
        assert all(r["errors"][0]["code"] in ("idempotency_in_flight", None) for r in busy)
        db = sqlite3.connect(tmp_path / "slow" / "state.db")
        opened = db.execute("SELECT COUNT(*) FROM events WHERE event='case.opened'").fetchone()
        db.close()
        assert opened[0] == 1
        after = snapshot(host)
        rc, again, out = agent("suspend", host.name, "bob", "--playbook", "web-now",
                               "--idempotency-key", KEY)
        assert rc == 0 and again["idempotency"]["replayed"] is True, out
        assert again["applied"] == ran[0]["applied"]
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate",
                               "--idempotency-key", KEY)
        assert rc == 2 and reply["errors"][0]["code"] == "idempotency_key_mismatch", out
        assert snapshot(host) == after
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0 and reply["state"] == "active", out


def test_one_paid_invoice_of_two_lifts_nothing_and_other_holds_are_named(host, agent_env
                                                                         ) -> None:
    agent = agent_env
    before = snapshot(host)
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "web-now",
                           "--invoice", "1076", "--invoice", "1077")
    assert rc == 0 and reply["invoices"] == {"billing": ["1076", "1077"]}, out
    assert set(shows(host, "bob").values()) == {"landing"}
    rc, reply, out = agent("reconcile", host.name, "bob", "--overdue", "1077")
    assert rc == 4 and reply["not_lifted"] == {"holds": ["billing"], "invoices": ["1077"]}, out
    assert set(shows(host, "bob").values()) == {"landing"}
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "web-now",
                           "--hold", "abuse", "--reason", "phishing")
    assert rc == 0, out
    rc, reply, out = agent("reconcile", host.name, "bob", "--overdue", "none")
    assert rc == 4 and reply["not_lifted"]["holds"] == ["abuse"], out
    assert set(shows(host, "bob").values()) == {"landing"}
    rc, reply, out = agent("unsuspend", host.name, "bob", "--hold", "abuse")
    assert rc == 0 and reply["state"] == "active", out
    assert set(shows(host, "bob").values()) == {"own"}
    assert {k: v for k, v in snapshot(host).items() if k not in NOT_RESTORED} == {
        k: v for k, v in before.items() if k not in NOT_RESTORED}
    check_dossier(agent, host)


def check_dossier(agent, host) -> None:
    import hashlib
    import json

    from warcio.archiveiterator import ArchiveIterator

    db = sqlite3.connect(agent.config.parent / "state.db")
    (case_id,) = db.execute("SELECT id FROM cases WHERE hold='billing' AND name='bob'"
                            ).fetchone()
    db.close()
    out = agent.config.parent / "dossier"
    rc, reply, text = agent("case", "export", case_id, "--out", str(out))
    assert rc == 0, text
    manifest = json.loads((out / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    seen = {}
    with open(out / "visitors.warc", "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type == "response":
                url = record.rec_headers.get_header("WARC-Target-URI")
                seen[url.split("/sa-probe")[0]] = (record.http_headers.get_statuscode(),
                                                   record.content_stream().read())
    # Each site is asked for the probe path and for "/" (what a visitor opens first).
    assert set(seen) == {"http://bob.test", "https://bob.test",
                         "http://bob.test/", "https://bob.test/"}, seen
    assert all(code == "503" and b"Example Hosting" in body for code, body in seen.values())
