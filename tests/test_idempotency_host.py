"""--idempotency-key against the linux test host, through the delay proxy (issue 19 item 1):
three calls with one key started at once act once (one case opened, one set of changes),
the others answer 75 (the first still runs) or replay its reply; a later retry replays it;
the same key with another playbook is exit 2 and changes nothing on the host."""

from __future__ import annotations

import sqlite3

import pytest

from tests.hosts.delayproxy import DelayProxy
from tests.hosts.provision import write_config
from tests.test_ladder import snapshot

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
