"""Fast tier: the read/write protocol of every connector, through the local one (no host)."""

from __future__ import annotations

import hashlib
import os

import pytest

from agent.config.servers import Server
from agent.connector.base import _parse_reads
from agent.connector.local import LocalConnector
from agent.errors import BatchFailed, CommandFailed, CommandTimeout, TransferError


@pytest.fixture
def local():
    return LocalConnector(Server("here", "linux", "local"))


def _reply(data: bytes) -> bytes:
    """The read script's reply for one regular file /f holding `data`."""
    digest = hashlib.sha256(data).hexdigest()
    return f"f\nregular file|644|0|0\n{len(data)}\n{digest}  /f\n".encode() + data


def test_a_cut_short_reply_is_never_data():
    data = b"line\n" * 600
    whole = _reply(data)
    assert _parse_reads(["/f"], whole)["/f"].data == data
    for cut in (0, 10, len(whole) - len(data), len(whole) - 1):
        with pytest.raises(TransferError):
            _parse_reads(["/f"], whole[:cut])
    with pytest.raises(TransferError):
        _parse_reads(["/f"], whole.replace(b"line", b"lime", 1))
    with pytest.raises(TransferError):
        _parse_reads(["/f"], whole + b"extra")


def test_read_many_and_write_round_trip(local, tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"one\ntwo\n")
    (tmp_path / "d").mkdir()
    found = local.read_many([str(f), str(tmp_path / "none"), str(tmp_path / "d")])
    assert found[str(f)].data == b"one\ntwo\n"
    assert not found[str(tmp_path / "none")].exists
    assert found[str(tmp_path / "d")].exists and found[str(tmp_path / "d")].data is None
    owner = f"{os.getuid()}:{os.getgid()}"
    local.write(str(f), b"\x00binary\xff" * 1000, 0o600, owner)
    assert f.read_bytes() == b"\x00binary\xff" * 1000
    assert f.stat().st_mode & 0o777 == 0o600
    assert local.read(str(tmp_path / "none")) is None


def test_write_refuses_bytes_that_do_not_match(local, tmp_path):
    f = tmp_path / "b.txt"
    f.write_bytes(b"before")
    owner = f"{os.getuid()}:{os.getgid()}"
    with pytest.raises(TransferError):
        local._install(str(f), b"half", 0o644, owner, 8, hashlib.sha256(b"halfhalf").hexdigest())
    assert f.read_bytes() == b"before"
    assert [p.name for p in tmp_path.iterdir()] == ["b.txt"]


def test_timeout_is_its_own_error(local):
    with pytest.raises(CommandTimeout):
        local.run(["sleep", "3"], timeout=0.2)


def test_batch_passes_hostile_arguments_intact_and_stops_at_the_first_failure(local, tmp_path):
    out = tmp_path / "args"
    hostile = ["a b", "$(id)", "*", "", "x\ny", "'q'", '"', "\\", "-rf", "${HOME}"]
    local.run_batch([(["sh", "-c", 'printf "%s|" "$@" > "$0"', str(out), *hostile], (0,)),
                     (["false"], (1,))])
    assert out.read_text() == "".join(f"{a}|" for a in hostile)
    marker = tmp_path / "not-reached"
    with pytest.raises(BatchFailed) as failed:
        local.run_batch([(["true"], (0,)), (["false"], (0,)), (["touch", str(marker)], (0,))])
    assert failed.value.finished == 1 and failed.value.rc == 1
    assert not marker.exists()


def test_a_write_cut_by_a_lost_link_leaves_no_temporary_file(tmp_path):
    """The link drops mid-write: stdin ends early and stderr is a closed pipe, as sshd leaves
    them. The shell's complaint then raises SIGPIPE; the temporary file must still go."""
    import subprocess

    from agent.connector.base import _WRITE_SCRIPT, WRITE_MISMATCH

    target = tmp_path / "shared.passwd"
    whole = b"x" * 1000
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads stderr any more
    proc = subprocess.run(["sh", "-c", _WRITE_SCRIPT, "sh", str(target), "600", "0:0",
                           str(len(whole)), hashlib.sha256(whole).hexdigest()],
                          input=whole[:10], stdout=subprocess.DEVNULL, stderr=write_end,
                          check=False)
    os.close(write_end)
    assert proc.returncode in (WRITE_MISMATCH, 91), proc.returncode
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_keeps_set_id_bits_and_refuses_a_folder(local, tmp_path):
    """The owner is set before the mode (a chown clears set-user/group-ID bits), and a path
    that is a folder is refused instead of receiving the file inside it."""
    owner = f"{os.getuid()}:{os.getgid()}"
    f = tmp_path / "prog"
    local.write(str(f), b"#!/bin/sh\n", 0o4750, owner)
    assert f.stat().st_mode & 0o7777 == 0o4750
    (tmp_path / "folder").mkdir()
    with pytest.raises(CommandFailed):
        local.write(str(tmp_path / "folder"), b"data", 0o644, owner)
    assert list((tmp_path / "folder").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "prog"]


def test_write_many_and_read_many_round_trip_through_the_local_connector(local, tmp_path):
    owner = f"{os.getuid()}:{os.getgid()}"
    files = [(str(tmp_path / name), name.encode() * 50, 0o640, owner)
             for name in ("a b", "-x", "new\nline", "ünï", "empty")]
    files[-1] = (files[-1][0], b"", 0o600, owner)
    local.write_many(files)
    found = local.read_many([f[0] for f in files] + [str(tmp_path / "none")])
    assert [(found[p].data, found[p].mode) for p, *_ in files] == [(d, m) for _, d, m, _ in files]
    assert not found[str(tmp_path / "none")].exists
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sa-tmp")]
