"""throttle on the linux test host, in a whole-server case, measured from outside.

The agent reaches the host through the delay proxy (25 ms each way, with jitter), as over a
real link. `--dry-run` shows the exact tc commands and changes nothing; the suspend puts the
agent's HTB tree on the host's public interface: a download from a website runs at no more
than 1.2x the configured rate while the same file over SSH comes at several times that
rate; the tree removed behind the agent's back is put back by the next tick; after the
unsuspend every interface's qdiscs (`tc -j qdisc show`) read back exactly as before and the
download is fast again.
"""

from __future__ import annotations

import json
import socket
import time

import paramiko
import pytest
import yaml

from tests.hosts.delayproxy import DelayProxy
from tests.hosts.provision import write_config

pytestmark = pytest.mark.testhost

RATE_BITS = 8_000_000  # the playbook's 8mbit: 1 MB/s
# Unshaped, a download runs well above the cap even on a loaded 2-core CI machine (3 MB/s
# seen through the cPanel simulator's Apache there); a shaped one never exceeds 1.2x.
UNSHAPED = 2.5 * RATE_BITS / 8
SIZE = 3_000_000
START = 2_000_000_000.0
BOOK = """description: backup, then the server throttled at once
stages:
  - after: 0s
    steps:
      - backup:
          reuse_if_newer_than: 24h
      - throttle:
          rate: 8mbit
"""


def qdiscs(host) -> list[dict]:
    """Every interface's qdiscs as tc lists them, without reference counts."""
    shown = json.loads(host.run(["/usr/sbin/tc", "-j", "qdisc", "show"]).stdout or b"[]")
    return [{k: v for k, v in q.items() if k != "refcnt"} for q in shown]


def http_rate(host, path: str = "/big.bin", site: str = "bob.test") -> float:
    """Download `path` from `site` as a visitor; return bytes per second (all of it read)."""
    with socket.create_connection((host.address, 80), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {site}\r\n\r\n".encode())
        start, got = time.monotonic(), b""
        while chunk := sock.recv(65536):
            got += chunk
        took = time.monotonic() - start
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and len(body) == SIZE, head[:200]
    return SIZE / took


def ssh_rate(agent, host) -> float:
    """Fetch the same file over SSH (SFTP) straight from outside; return bytes/s."""
    cfg = yaml.safe_load(agent.config.read_text())["servers"][host.name]
    client = paramiko.SSHClient()
    client.load_host_keys(agent.direct_known_hosts)
    client.connect(host.address, 22, username="root", key_filename=cfg["key_file"],
                   look_for_keys=False, allow_agent=False, timeout=10)
    try:
        with client.open_sftp() as sftp:
            start = time.monotonic()
            with sftp.open("/home/bob/public_html/big.bin", "rb") as f:
                f.prefetch()
                data = f.read()
            took = time.monotonic() - start
    finally:
        client.close()
    assert len(data) == SIZE
    return SIZE / took


@pytest.fixture
def throttle_agent(host, agent_env, tmp_path):
    big = host.path("/home/bob/public_html/big.bin")
    big.write_bytes(b"x" * SIZE)
    (agent_env.config.parent.parent / "playbooks" / "throttle-now.yaml").write_text(BOOK)
    # The first config's known_hosts names the host's own address (the later one the proxy).
    agent_env.direct_known_hosts = str(agent_env.config.parent / "known_hosts")
    with DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.004) as proxy:
        agent_env.config = write_config(host, tmp_path / "slow", proxy_port=proxy.port,
                                        playbooks_dir=str(tmp_path / "playbooks"))
        yield agent_env
        agent_env("unsuspend", host.name, "--whole-server")
    dev = f"sa{host.index}n"
    host.run(["/usr/sbin/tc", "qdisc", "del", "dev", dev, "root"], check=False)
    big.unlink()


def test_throttle_caps_downloads_spares_ssh_and_comes_off_exactly(host, throttle_agent
                                                                 ) -> None:
    agent = throttle_agent
    before = qdiscs(host)
    assert http_rate(host) > UNSHAPED  # unthrottled, the link is far faster
    dev = f"sa{host.index}n"
    rc, reply, out = agent("check", host.name)
    assert (f"throttle (whole-server playbooks) would shape: {dev} (the kernel's own root: "
            "put back exactly)") in reply["servers"][0]["lines"], out
    agent.now = START
    rc, _none, out = agent.text("--dry-run", "suspend", host.name, "--whole-server",
                                "--playbook", "throttle-now")
    assert rc == 0, out
    assert (f"/usr/sbin/tc qdisc replace dev {dev} root handle 5a5a: htb default 20" in out
            and "classid 5a5a:20 htb rate 8000000bit ceil 8000000bit" in out
            and "match ip sport 22 0xffff flowid 5a5a:10" in out), out
    assert qdiscs(host) == before  # the dry run changed nothing

    rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                           "throttle-now", "--reason", "server rent")
    assert rc == 0, out
    (step,) = [a for a in reply["applied"] if a["step"] == "throttle"]
    assert step["scope"] == "server" and step["changed"], reply["applied"]
    rate = http_rate(host)
    # Capped, yet a throttle and not a cut.
    assert 0.5 * RATE_BITS / 8 <= rate <= 1.2 * RATE_BITS / 8, f"{rate:.0f} B/s at 8mbit"
    assert ssh_rate(agent, host) > 3 * RATE_BITS / 8  # the agent's way in stays fast
    rc, again, out = agent("suspend", host.name, "--whole-server", "--playbook",
                           "throttle-now")
    assert rc == 0 and not any(a["changed"] for a in again["applied"]), out

    # Something takes the tree off (the interface made again, a reboot): status says so,
    # the next tick puts it back.
    host.run(["/usr/sbin/tc", "qdisc", "del", "dev", dev, "root"])
    assert qdiscs(host) == before
    rc, status, out = agent("status", host.name, "--whole-server")
    assert any(w.startswith("throttle: not in effect as planned")
               for w in status.get("warnings", [])), out
    agent.now = START + 60
    rc, _ticked, out = agent("tick")
    assert rc == 0 and "put back: throttle" in out, out
    assert http_rate(host) <= 1.2 * RATE_BITS / 8

    rc, reply, out = agent("unsuspend", host.name, "--whole-server")
    assert rc == 0 and reply["state"] == "active", out
    assert qdiscs(host) == before
    assert http_rate(host) > UNSHAPED
