"""read_many and write_many through the local connector (the real scripts, a real shell; no
root, no servers): odd names, one command a call, server processes that do not grow per
file (read) or grow by two a file (write), all-or-nothing installs, no temporary file left.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from agent import failpoints
from agent.config.servers import Server
from agent.connector.base import Result
from agent.connector.local import LocalConnector
from agent.connector.many import READ_SCRIPT, WRITE_MISMATCH, WRITE_SCRIPT, parse_reads
from agent.errors import BatchFailed, CommandFailed, TransferError
from agent.steps.actions import FileState, Run, Write, carry_out

ODD = ["a b", "-lead", "--", "new\nline", "ünïcødé", "back\\slash", "tab\there", "'q'", "$(id)",
       "*", "x|y", "trailing ", ".sa-tmp.lookalike"]
TOOLS = ("stat", "sha256sum", "cat", "head", "mv", "chmod", "chown", "rm")


class Counting(LocalConnector):
    """The local connector, counting its commands; `stdin` and `reply` may alter what goes to
    the server and what comes back (a link that loses or changes bytes)."""

    def __init__(self, stdin: Callable[[bytes], bytes] | None = None,
                 reply: Callable[[Result, int], Result] | None = None) -> None:
        super().__init__(Server("here", "linux", "local"))
        self.execs: list[list[str]] = []
        self._alter_stdin = stdin
        self._alter_reply = reply

    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        self.execs.append(argv)
        if stdin and self._alter_stdin:
            stdin = self._alter_stdin(stdin)
        result = super()._exec(argv, stdin, timeout)
        return self._alter_reply(result, len(self.execs)) if self._alter_reply else result


@pytest.fixture
def conn() -> Counting:
    return Counting()


@pytest.fixture
def me() -> str:
    return f"{os.getuid()}:{os.getgid()}"


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Counter]:
    """Put shims of the scripts' tools first on PATH; return a function that counts (and
    forgets) the processes each tool started since the last call."""
    shims, log = tmp_path / "shims", tmp_path / "tools.log"
    shims.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, tool
        shim = shims / tool
        shim.write_text(f"#!/bin/sh\necho {tool} >> '{log}'\nexec {real} \"$@\"\n")
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")

    def counted() -> Counter:
        lines = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return Counter(lines)

    return counted


def _kind(path: Path) -> str:
    """What `stat -c %F` calls `path` (without following a link)."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return "symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    return "regular file" if st.st_size else "regular empty file"


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".sa-tmp.") and "lookalike" not in
            p.name]


def _tree(tmp_path: Path) -> list[str]:
    """Make files with odd names, an empty one, a big one, links, a folder; return paths
    covering them, a missing one and a duplicate."""
    d = tmp_path / "tree"
    (d / "sub dir").mkdir(parents=True)
    for i, name in enumerate(ODD):
        (d / name).write_bytes(f"{name}\n".encode() * (i + 1))
    (d / "empty").write_bytes(b"")
    (d / "sub dir" / "big").write_bytes(os.urandom(200_003))
    (d / "link").symlink_to(d / "a b")
    (d / "dangling").symlink_to(d / "nowhere")
    (d / "dirlink").symlink_to(d / "sub dir")
    names = [*ODD, "empty", "sub dir/big", "link", "dangling", "dirlink", "sub dir", "missing"]
    paths = [str(d / n) for n in names]
    return paths + [paths[0]]


def test_read_many_round_trips_odd_names_links_folders_and_missing_paths(conn, tmp_path):
    paths = _tree(tmp_path)
    found = conn.read_many(paths)
    assert len(conn.execs) == 1
    for path in paths:
        p = Path(path)
        got = found[path]
        if not p.exists() and not p.is_symlink():
            assert got.kind == "absent" and not got.exists and got.data is None
            continue
        st = p.lstat()
        assert (got.kind, got.mode, got.uid, got.gid) == (
            _kind(p), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), path
        assert got.data == (p.read_bytes() if p.is_file() else None), path


def test_relative_paths_are_never_options_or_standard_input(conn, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("-", "-n", "--help"):
        (tmp_path / name).write_bytes(name.encode())
    found = conn.read_many(["-", "-n", "--help", "absent-here"])
    assert [found[n].data for n in ("-", "-n", "--help")] == [b"-", b"-n", b"--help"]
    assert not found["absent-here"].exists


def test_read_many_starts_four_processes_whatever_the_number_of_files(conn, tmp_path, tools):
    paths = _tree(tmp_path)
    conn.read_many(paths[:3])
    few = tools()
    conn.read_many(paths)
    assert tools() == few == Counter(stat=2, sha256sum=1, cat=1)
    conn.read_many([str(tmp_path / "tree" / "sub dir"), str(tmp_path / "none")])
    assert tools() == Counter(stat=1)
    conn.read_many([str(tmp_path / "none")])
    assert tools() == Counter()


def _reply(conn: LocalConnector, paths: list[str]) -> bytes:
    return conn.run(["sh", "-c", READ_SCRIPT, "sh", *paths]).stdout


def test_a_cut_or_changed_reply_is_never_data(conn, tmp_path):
    paths = _tree(tmp_path)[:6]
    whole = _reply(conn, paths)
    assert parse_reads(paths, whole)[paths[0]].data == Path(paths[0]).read_bytes()
    for cut in range(len(whole)):
        with pytest.raises(TransferError):
            parse_reads(paths, whole[:cut])
    # A file that grew between its SHA-256 and `cat` (its new bytes dressed as a header in
    # the old layout): the parts describing the files all come first, so nothing the files
    # hold is read as one of them.
    forged = b"regular file|644|0|0|4|" + hashlib.sha256(b"fake").hexdigest().encode() + b"\nfake"
    for changed in (whole + b"x", whole + forged, whole[:-1] + b"!"):
        with pytest.raises(TransferError):
            parse_reads(paths, changed)


def test_a_path_that_changes_kind_while_it_is_read_is_read_again(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"content")
    # First reply: the path was sorted as no file (e) but stat then saw a regular file.
    lied = Result(0, b"e\nregular file|644|0|0\n", b"")
    conn = Counting(reply=lambda result, n: lied if n == 1 else result)
    assert conn.read_many([str(f)])[str(f)].data == b"content"
    assert len(conn.execs) == 2


def test_a_reply_that_keeps_changing_is_a_transfer_error_after_three_reads(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"content")
    conn = Counting(reply=lambda r, n: Result(r.rc, r.stdout[:-1] + b"?", r.stderr))
    with pytest.raises(TransferError):
        conn.read_many([str(f)])
    assert len(conn.execs) == 3


def test_a_tool_that_fails_is_retried_then_a_command_failure(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"content")
    vanished = Result(4, b"", b"sha256sum: f: No such file or directory")
    conn = Counting(reply=lambda result, n: vanished if n == 1 else result)
    assert conn.read_many([str(f)])[str(f)].data == b"content"
    conn = Counting(reply=lambda result, n: vanished)
    with pytest.raises(CommandFailed) as failed:
        conn.read_many([str(f)])
    assert failed.value.rc == 4 and "No such file" in str(failed.value)
    assert len(conn.execs) == 3


def _files(root: Path, me: str) -> list[tuple[str, bytes, int, str]]:
    """Files to write: odd names, empty ones, a big one, a folder of their own, mixed modes."""
    (root / "sub dir").mkdir(parents=True, exist_ok=True)
    names = [*ODD, "empty", "also-empty", "sub dir/big", "sub dir/-x", "65536", "65537"]
    files = []
    for i, name in enumerate(names):
        data = f"{name}|{i}\n".encode() * (i * 7)
        if name.isdigit():
            data = os.urandom(int(name))
        elif name == "sub dir/big":
            data = os.urandom(300_001)
        files.append((str(root / name), data, (0o600, 0o640, 0o755, 0o4750)[i % 4], me))
    return files


def _owner_names() -> str:
    return f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"


def test_write_many_then_read_many_is_byte_identical_with_modes_and_owners(conn, tmp_path, me):
    root = tmp_path / "w"
    files = _files(root, me)
    files[1] = (files[1][0], files[1][1], files[1][2], _owner_names())  # same owner, by name
    (root / "-lead").write_bytes(b"an older version")  # replaced
    conn.write_many(files)
    assert len(conn.execs) == 1
    found = conn.read_many([f[0] for f in files])
    for path, data, mode, _owner in files:
        got = found[path]
        assert (got.data, got.mode, f"{got.uid}:{got.gid}") == (data, mode, me), path
    assert _leftovers(root) == []


def test_write_many_starts_two_processes_a_file_and_a_few_more(conn, tmp_path, me, tools):
    root = tmp_path / "w"
    root.mkdir()
    for n in (3, 40):
        conn.write_many([(str(root / f"r{i}.json"), b"{}\n" * (i + 1), 0o600, me)
                         for i in range(n)])
        assert tools() == Counter(head=n, mv=n, stat=1, cat=1, sha256sum=1, chmod=1, chown=1)
    conn.write_many([(str(root / "a"), b"a", 0o600, me), (str(root / "b"), b"", 0o644, me),
                     (str(root / "c"), b"c", 0o600, _owner_names())])
    assert tools() == Counter(head=2, mv=3, stat=1, cat=1, sha256sum=1, chmod=2, chown=2)


def test_write_many_is_one_command_and_one_failpoint(tmp_path, me, monkeypatch):
    hits: list[str] = []
    monkeypatch.setattr(failpoints, "hit", hits.append)
    conn = Counting()
    conn.write_many([(str(tmp_path / f"f{i}"), b"x", 0o600, me) for i in range(5)])
    conn.write_many([(str(tmp_path / "one"), b"y", 0o600, me)])  # one file: the plain write
    conn.write_many([])
    assert len(conn.execs) == 2 and hits == ["command", "command"]
    assert (tmp_path / "one").read_bytes() == b"y"


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("alter", [
    lambda data: data[:-1],                      # the link dropped before the last byte
    lambda data: data[:len(data) // 2],          # ... half-way
    lambda data: b"",                            # ... before any byte
    lambda data: data[:100] + b"!" + data[101:],  # one byte changed
], ids=["last-byte", "half", "nothing", "changed"])
def test_bytes_that_do_not_match_install_nothing(tmp_path, me, alter):
    root = tmp_path / "w"
    files = _files(root, me)
    (root / "a b").write_bytes(b"kept as it was")
    before = _snapshot(root)
    conn = Counting(stdin=alter)
    with pytest.raises(TransferError) as failed:
        conn.write_many(files)
    assert "nothing was installed" in str(failed.value)
    assert _snapshot(root) == before and _leftovers(root) == []


def test_a_missing_folder_for_one_file_installs_none(conn, tmp_path, me):
    root = tmp_path / "w"
    files = _files(root, me)
    files.insert(5, (str(root / "no such folder" / "f"), b"data", 0o600, me))
    before = _snapshot(root)
    with pytest.raises(CommandFailed) as failed:
        conn.write_many(files)
    assert not isinstance(failed.value, BatchFailed) and "nothing was installed" in str(
        failed.value)
    assert _snapshot(root) == before and _leftovers(root) == []


def test_a_path_that_is_a_folder_or_an_unknown_owner_installs_none(conn, tmp_path, me):
    root = tmp_path / "w"
    files = _files(root, me)
    before = _snapshot(root)
    for bad in [(str(root / "sub dir"), b"data", 0o600, me),
                (str(root / "new"), b"data", 0o600, "no-such-user-sa:no-such-group-sa")]:
        with pytest.raises(CommandFailed):
            conn.write_many([*files[:4], bad, *files[4:]])
        assert _snapshot(root) == before and _leftovers(root) == []


def test_a_rename_that_fails_names_how_many_are_in_place(conn, tmp_path, me, monkeypatch):
    """A rename fails half-way (a folder vanished, say): the files before it are in place,
    those after it untouched, and no temporary file is left."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "mv").write_text('#!/bin/sh\nfor last do :; done\ncase $last in */fail-here) '
                              'echo "mv: cannot move: injected" >&2; exit 1;; esac\n'
                              f'exec {shutil.which("mv")} "$@"\n')
    (shims / "mv").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    root = tmp_path / "w"
    root.mkdir()
    files = [(str(root / n), n.encode(), 0o600, me) for n in ("a", "b", "fail-here", "c", "d")]
    (root / "c").write_bytes(b"old c")
    with pytest.raises(BatchFailed) as failed:
        conn.write_many(files)
    assert failed.value.finished == 2 and "fail-here" in failed.value.argv_display
    assert "injected" in str(failed.value)
    assert _snapshot(root) == {"a": b"a", "b": b"b", "c": b"old c"}


def test_the_script_splits_the_input_without_reading_past_a_file(tmp_path, me):
    """`head -c N` asks the pipe for at most the bytes still missing: sizes around the pipe's
    and head's buffers, zero-byte files between, all land exactly (the shell run directly,
    the bytes fed in small pieces as a slow link would)."""
    sizes = [0, 1, 8191, 8192, 8193, 0, 65535, 65536, 65537, 0, 131072, 3]
    datas = [os.urandom(n) for n in sizes]
    paths = [str(tmp_path / f"f{i}") for i in range(len(sizes))]
    operands = ["tok", hashlib.sha256(b"".join(datas)).hexdigest()]
    for path, data in zip(paths, datas, strict=True):
        operands += [path, "600", me, str(len(data))]
    proc = subprocess.Popen(["sh", "-c", WRITE_SCRIPT, "sh", *operands], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stream = b"".join(datas)
    for at in range(0, len(stream), 1000):
        proc.stdin.write(stream[at:at + 1000])
        proc.stdin.flush()
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert out == "".join(f"{i}\n" for i in range(len(sizes))).encode()
    assert [Path(p).read_bytes() for p in paths] == datas


def test_arguments_the_script_cannot_take_are_refused_before_anything_runs(conn, tmp_path, me):
    good = (str(tmp_path / "ok"), b"x", 0o600, me)
    for bad in [(str(tmp_path) + "/", b"x", 0o600, me), ("", b"x", 0o600, me),
                (str(tmp_path / "f"), b"x", 0o10000, me), (str(tmp_path / "f"), b"x", 0o600, "0"),
                (str(tmp_path / "f"), b"x", 0o600, "a b:c")]:
        with pytest.raises(ValueError):
            conn.write_many([good, bad])
    assert conn.execs == [] and not (tmp_path / "ok").exists()


def test_a_write_many_cut_by_a_lost_link_leaves_no_temporary_file(tmp_path, me):
    """The link drops mid-write: stdin ends early and stderr is a closed pipe, as sshd leaves
    them; the shell's complaint raises SIGPIPE. Nothing is installed, no temporary file
    stays."""
    datas = [b"x" * 1000, b"y" * 1000, b"z" * 10]
    operands = ["tok", hashlib.sha256(b"".join(datas)).hexdigest()]
    for i, data in enumerate(datas):
        operands += [str(tmp_path / f"f{i}"), "600", me, str(len(data))]
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads stderr any more
    proc = subprocess.run(["sh", "-c", WRITE_SCRIPT, "sh", *operands], input=datas[0][:10],
                          stdout=subprocess.DEVNULL, stderr=write_end, check=False)
    os.close(write_end)
    assert proc.returncode in (WRITE_MISMATCH, 91), proc.returncode
    assert list(tmp_path.iterdir()) == []


def _write(path: Path, data: bytes, me: str) -> Write:
    return Write(FileState(str(path), False), FileState(str(path), True, data, 0o640, me))


def test_carry_out_writes_consecutive_files_in_one_command(conn, tmp_path, me):
    """A plan's writes in a row (the landing page and its includes) cost one command."""
    actions = [_write(tmp_path / f"f{i}", f"file {i}\n".encode(), me) for i in range(3)]
    actions += [Run(["true"]), _write(tmp_path / "last", b"alone\n", me)]
    carry_out(conn, actions)
    assert len(conn.execs) == 3  # the three writes, the command, the last write
    assert [(tmp_path / f"f{i}").read_bytes() for i in range(3)] == [
        b"file 0\n", b"file 1\n", b"file 2\n"]
    assert stat.S_IMODE((tmp_path / "f2").stat().st_mode) == 0o640


def test_grouped_writes_refused_before_any_install_count_none_of_them(conn, tmp_path, me):
    """A missing folder or a path that is a folder: the group installs nothing, and
    `completed` counts only the actions before it (a rename that fails is BatchFailed with
    the files before it in place: test_a_rename_that_fails_names_how_many_are_in_place)."""
    (tmp_path / "dir").mkdir()
    for bad in (tmp_path / "no" / "b", tmp_path / "dir"):
        actions = [_write(tmp_path / "a", b"a", me), _write(bad, b"b", me),
                   _write(tmp_path / "c", b"c", me)]
        with pytest.raises(CommandFailed) as failed:
            carry_out(conn, [Run(["true"]), Run(["true"]), *actions])
        assert failed.value.completed == 2, bad
        assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_grouped_writes_whose_rename_fails_count_the_files_in_place(conn, tmp_path, me,
                                                                    monkeypatch):
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "mv").write_text('#!/bin/sh\nfor last do :; done\ncase $last in */fail-here) '
                              'exit 1;; esac\n' f'exec {shutil.which("mv")} "$@"\n')
    (shims / "mv").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    actions = [_write(tmp_path / n, n.encode(), me) for n in ("a", "b", "fail-here", "c")]
    with pytest.raises(BatchFailed) as failed:
        carry_out(conn, [Run(["true"]), *actions])
    assert failed.value.completed == 3  # the command, a and b
    assert (tmp_path / "b").read_bytes() == b"b" and not (tmp_path / "c").exists()
