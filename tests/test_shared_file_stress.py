"""A 600-line file shared with other customers survives 20 suspend/unsuspend round trips over
a 50 ms RTT link: every line of every other customer kept, byte for byte, every time."""

from __future__ import annotations

import pytest

from tests.hosts import ftp
from tests.hosts.delayproxy import DelayProxy
from tests.hosts.provision import write_config
from tests.test_ladder import logins

pytestmark = pytest.mark.testhost


@pytest.fixture
def crowded_passwd(host):
    """pureftpd.passwd with 600 FTP users of other customers around alice's; put back after."""
    path = host.path(ftp.PASSWD)
    original = path.read_bytes()
    others = "".join(
        f"cust{i:03d}_ftp:$6$salt{i:03d}$" + "x" * 86 + f":{5000 + i}:{5000 + i}::"
        f"/home/cust{i:03d}/./::::::::::::\n" for i in range(600))
    crowded = original + others.encode()
    path.write_bytes(crowded)
    host.run(["pure-pw", "mkdb", ftp.PDB, "-f", ftp.PASSWD])
    yield crowded
    path.write_bytes(original)
    host.run(["pure-pw", "mkdb", ftp.PDB, "-f", ftp.PASSWD])


def test_600_line_file_survives_20_round_trips(agent_env, host, crowded_passwd, tmp_path):
    books = agent_env.config.parent.parent / "playbooks"
    (books / "ftp-only.yaml").write_text(
        "stages:\n  - after: 0s\n    steps:\n"
        "      - backup:\n          reuse_if_newer_than: 1h\n      - ftp_lock\n")
    with DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.004) as proxy:
        agent_env.config = write_config(host, tmp_path / "slow", proxy_port=proxy.port,
                                        playbooks_dir=str(books))
        for _round in range(20):
            rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "ftp-only")
            assert rc == 0, out
            locked = host.path(ftp.PASSWD).read_bytes().decode().splitlines()
            assert len(locked) == len(crowded_passwd.decode().splitlines())
            assert [x for x in locked if x.startswith("alice_ftp:")][0].split(":")[1][0] == "!"
            rc, _reply, out = agent_env("unsuspend", host.name, "alice")
            assert rc == 0, out
            assert host.path(ftp.PASSWD).read_bytes() == crowded_passwd
        # One SSH connection per CLI call: 40 calls, 40 connections, no reconnects.
        assert proxy.connections == 40
    assert logins(host)["ftp"] == "ok"
