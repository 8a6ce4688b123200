"""A customer cannot stall or break the backup (issue 9, item 2): a file written while tar
reads it, a 20 GiB sparse file, a home above the playbook's size limit, a database whose
name MariaDB allows but a naive pattern does not."""

from __future__ import annotations

import subprocess
import tarfile
import time

import pytest

from tests.conftest import WATCHED, no_records, tree_state
from tests.test_ladder_faults import one_stage

pytestmark = pytest.mark.testhost

BACKUPS = "/var/backups/suspension-agent"


def _book(agent_env, name: str, backup: str) -> None:
    one_stage(agent_env, name, f"{{backup: {backup}}}, landing_page")


def _newest_archive(host):
    return max(host.path(BACKUPS).glob("alice-*.tar.gz"), key=lambda p: p.stat().st_mtime_ns)


def test_a_file_written_during_the_backup_is_a_warning_not_a_failure(agent_env, host):
    growing = host.path("/home/alice/public_html/growing.log")
    growing.write_bytes(b"x" * (32 << 20))  # long enough to be read while it grows
    # The customer's own process appends all the time (stopped by its exact pid below).
    writer = subprocess.Popen(["chroot", str(host.root), "sh", "-c",
                               "while :; do echo more >> /home/alice/public_html/growing.log;"
                               " done"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
    finally:
        writer.kill()
        writer.wait()
    assert rc == 0 and reply["state"] == "suspended", out
    archive = _newest_archive(host)
    warnings = host.path(f"{BACKUPS}/{archive.name}.warnings")
    assert b"changed as we read it" in warnings.read_bytes()
    with tarfile.open(archive) as tar:  # verified by the agent, and readable here too
        assert "home/alice/public_html/growing.log" in tar.getnames()
    rc, _reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0, out


def test_a_sparse_file_is_archived_as_holes(agent_env, host):
    sparse = host.path("/home/alice/sparse.img")
    subprocess.run(["truncate", "-s", "20G", str(sparse)], check=True)
    try:
        # Reading 20 GiB of zeros would take minutes: the bound makes the old behaviour fail.
        _book(agent_env, "sparse", "{max_time: 60s}")
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "sparse",
                                   timeout=300)
        assert rc == 0 and reply["state"] == "suspended", out
        archive = _newest_archive(host)
        assert archive.stat().st_size < 50 << 20
        with tarfile.open(archive) as tar:
            member = tar.getmember("home/alice/sparse.img")
            assert member.size == 20 << 30
        rc, _reply, out = agent_env("unsuspend", host.name, "alice")
        assert rc == 0, out
    finally:
        sparse.unlink()  # before the teardown compares (and would read) the home


def test_a_home_above_max_size_is_refused_naming_the_biggest_folder(agent_env, host):
    big = host.path("/home/alice/public_html/videos")
    big.mkdir()
    (big / "film.bin").write_bytes(b"\x01" * (3 << 20))
    before = no_records(tree_state(host, *WATCHED))
    _book(agent_env, "bounded", "{max_size: 1M}")
    rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "bounded")
    assert rc == 1, out
    message = reply["errors"][0]["message"]
    assert "max_size 1.0 MiB" in message and "/home/alice/public_html/videos" in message, out
    assert reply["state"] == "active" and reply["holds"] == [], out
    assert no_records(tree_state(host, *WATCHED)) == before  # nothing was changed


def test_every_database_of_the_account_is_dumped_whatever_its_name(agent_env, host):
    sql = ("CREATE DATABASE `alice_my-db`; CREATE TABLE `alice_my-db`.`t` (v TEXT); "
           "INSERT INTO `alice_my-db`.`t` VALUES ('kept-row-7');\n")
    host.run(["mysql"], input=sql.encode())
    try:
        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
        assert rc == 0, out
        with tarfile.open(_newest_archive(host)) as tar:
            dump = tar.extractfile("databases/alice.sql").read()
        assert b"`alice_my-db`" in dump and b"kept-row-7" in dump
        assert b"`alice_shop`" in dump
        rc, _reply, out = agent_env("unsuspend", host.name, "alice")
        assert rc == 0, out
    finally:
        host.run(["mysql"], input=b"DROP DATABASE IF EXISTS `alice_my-db`;\n")
