"""ftp_lock ends the open Pure-FTPd sessions of exactly the logins it locked, on both drivers:
`pure-ftpwho -s` read exactly, the lock before the kill, only pure-ftpd processes running as
the login's uid signalled (never the master), refused at plan time without pure-ftpwho. The
kill script itself runs for real against local processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config.servers import LinuxPaths, Server
from agent.connector.base import Result
from agent.drivers.linux.ftp_lock import FtpLock
from agent.engine.checks import check_servers
from agent.errors import StepError
from agent.steps import ftp_sessions
from agent.steps.actions import Run
from agent.steps.edit_lines import EditLines
from agent.steps.protocol import Context
from tests.fast.fakes import FakeConnector
from tests.fast.test_cpanel_check import PRESENT
from tests.fast.test_cpanel_fakes import FTPUPDATE, FakeCpanel
from tests.fast.test_cpanel_ladder import Cp, cp, write_config  # noqa: F401 - the fixture

WHO = "/usr/sbin/pure-ftpwho"
# As on the test host: not logged in yet, a unix login, escaped `|` and `\`, a long name.
LISTED = ("9184|?|4|IDLE||10.0.0.1|10.0.0.2|21|0|0|0|0\n"
          "9180|alice|4|IDLE||10.0.0.1|10.0.0.2|21|0|0|0|0\n"
          "9177|alice_ftp|4| UL |up/x\\|y.bin|10.0.0.1|10.0.0.2|21|10|20|50|3\n"
          "9190|al\\|ce|1|IDLE||10.0.0.1|10.0.0.2|21|0|0|0|0\n"
          "9191|al\\\\ce|1|IDLE||10.0.0.1|10.0.0.2|21|0|0|0|0\n"
          f"9192|alice_{'x' * 60}|1|IDLE||10.0.0.1|10.0.0.2|21|0|0|0|0\n")


def _escaped(account: str) -> str:
    """Return `account` as pure-ftpwho -s prints it (src/pure-ftpwho.c shell_escaped)."""
    return account.replace("\\", "\\\\").replace("|", "\\|")


class FtpProcesses:
    """Pure-FTPd's side of a fake server: the scoreboard `pure-ftpwho -s -H` prints (None:
    its folder does not exist yet), the processes (pid -> (name, effective uid), pid 100 the
    master), and the agent's two helper scripts answered as the shell on the server would."""

    def __init__(self) -> None:
        super().__init__()
        self.put(WHO, b"\x7fELF pure-ftpwho", 0o755)  # type: ignore[attr-defined]
        self.procs: dict[int, tuple[str, int]] = {100: ("pure-ftpd", 0)}
        self.board: list[tuple[int, str]] | None = []
        self.ended: list[int] = []

    def session(self, pid: int, account: str, uid: int) -> None:
        self.board.append((pid, account))
        self.procs[pid] = ("pure-ftpd", uid)

    def _command(self, argv: list[str], stdin: bytes | None) -> Result:
        if argv[0] == WHO and argv[1:] == ["-s", "-H"]:
            if self.board is None:
                return Result(ftp_sessions.NO_SCOREBOARD, b"", b"")
            lines = "".join(f"{pid}|{_escaped(acct)}|5|IDLE||10.0.0.1|10.0.0.2|21|0|0|0|0\n"
                            for pid, acct in self.board)
            return Result(0, lines.encode(), b"")
        if argv[:3] == ["sh", "-c", ftp_sessions.KILL_SCRIPT]:
            words = argv[4:]
            for pid, uid in zip(words[::2], words[1::2], strict=True):
                name, euid = self.procs.get(int(pid), ("", -1))
                if name == "pure-ftpd" and euid != 0 and str(euid) == uid:
                    del self.procs[int(pid)]
                    self.board = [(p, a) for p, a in self.board if p != int(pid)]
                    self.ended.append(int(pid))
            return Result(0, b"", b"")
        return super()._command(argv, stdin)  # type: ignore[misc]


class FakeLinuxFtp(FtpProcesses, FakeConnector):
    def __init__(self) -> None:
        super().__init__()
        self.put("/etc/pure-ftpd/pureftpd.passwd",
                 b"alice_ftp:$6$a:1000:1000::/home/alice/./::::::::::::\n"
                 b"alice_old:!$6$o:1000:1000::/home/alice/./::::::::::::\n"
                 b"bob_ftp:$6$b:1001:1001::/home/bob/./::::::::::::\n", 0o600)
        self.put("/etc/ftpusers", b"root\n")


class FakeCpanelFtp(FtpProcesses, FakeCpanel):
    """The fake cPanel server with Pure-FTPd's sessions."""


# -- parsing -------------------------------------------------------------------------------
def test_the_account_field_is_read_exactly_escapes_undone() -> None:
    sessions = ftp_sessions.parse_sessions(LISTED)
    assert [(s.pid, s.account) for s in sessions] == [
        (9184, "?"), (9180, "alice"), (9177, "alice_ftp"), (9190, "al|ce"), (9191, "al\\ce"),
        (9192, "alice_" + "x" * 60)]


def test_only_an_exact_name_is_a_target() -> None:
    sessions = ftp_sessions.parse_sessions(LISTED + "9200|alice_ft|1|IDLE||a|b|21|0|0|0|0\n"
                                           "9201|ALICE_FTP|1|IDLE||a|b|21|0|0|0|0\n"
                                           "9202|alice_ftp2|1|IDLE||a|b|21|0|0|0|0\n")
    assert ftp_sessions.targets(sessions, {"alice_ftp": "1000", "al|ce": "1000"}) == [
        (9177, "1000"), (9190, "1000")]
    assert ftp_sessions.targets(sessions, {"alice_": "1000", "al": "1000"}) == []


@pytest.mark.parametrize("text", ["Please compile the server with --with-ftpwho\n",
                                  "x|alice|1|IDLE||a|b|21|0|0|0|0\n", "9|alice|1|IDLE\n"])
def test_output_that_is_not_a_session_list_is_an_error(text: str) -> None:
    with pytest.raises(StepError, match="not a session"):
        ftp_sessions.parse_sessions(text)


# -- the kill script, for real ----------------------------------------------------------------
@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's own tmp folders are root's only, when root)."""
    folder = Path(tempfile.mkdtemp(prefix="sa-ftp-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def _process(folder: Path, name: str, uid: int | None) -> subprocess.Popen:
    """Start `sleep` under the process name `name` (a link's name becomes /proc's comm)."""
    (folder / str(uid)).mkdir(mode=0o755, exist_ok=True)
    link = folder / str(uid) / name
    link.symlink_to(shutil.which("sleep") or "/bin/sleep")
    proc = subprocess.Popen([str(link), "60"], user=uid)
    for _ in range(100):
        if Path(f"/proc/{proc.pid}/comm").read_text().strip() == name:
            return proc
        time.sleep(0.02)
    raise AssertionError(f"{name} never ran")


def test_the_kill_script_signals_only_pure_ftpd_running_as_the_uid(open_dir: Path) -> None:
    root = os.geteuid() == 0
    uid = 65534 if root else os.geteuid()  # as root, the sessions run as nobody
    session = _process(open_dir, "pure-ftpd", uid if root else None)
    other = _process(open_dir, "sleep", uid if root else None)
    master = _process(open_dir, "pure-ftpd", 0) if root else None
    try:
        pairs = [str(session.pid), str(uid + 1), str(other.pid), str(uid), "4194999", str(uid)]
        if master is not None:  # a root pure-ftpd (the master) listed under a locked name
            pairs += [str(master.pid), "0", str(master.pid), str(uid)]
        subprocess.run(["sh", "-c", ftp_sessions.KILL_SCRIPT, "sh", *pairs], check=True)
        assert session.poll() is None and other.poll() is None  # wrong uid, not pure-ftpd
        assert master is None or master.poll() is None
        subprocess.run(["sh", "-c", ftp_sessions.KILL_SCRIPT, "sh", str(session.pid), str(uid)],
                       check=True)
        assert session.wait(timeout=5) == -15 and other.poll() is None
    finally:
        for proc in (p for p in (session, other, master) if p and p.poll() is None):
            proc.kill()
            proc.wait()


# -- the linux driver's step ------------------------------------------------------------------
def _ctx(fake: FakeConnector) -> Context:
    server = Server("web1", "linux", "local", linux=LinuxPaths())
    return Context(None, server, fake, "alice", "case1", 0.0)  # type: ignore[arg-type]


@pytest.fixture
def lx() -> FakeLinuxFtp:
    fake = FakeLinuxFtp()
    fake.session(201, "alice_ftp", 1000)
    fake.session(202, "alice", 1000)  # the account's own (PAM) login
    fake.session(203, "bob_ftp", 1001)
    fake.session(204, "?", 0)  # connected, not logged in yet
    fake.session(205, "alice_old", 1000)  # disabled before the case: not this step's lock
    fake.session(206, "alice_ftp", 1001)  # another uid's login of that name (a unix user)
    fake.board.append((100, "alice_ftp"))  # a stale entry whose pid is now the master's
    return fake


def test_linux_plan_locks_first_and_then_kills_exactly_the_locked_logins(lx) -> None:
    plan = FtpLock().plan(_ctx(lx))
    assert [type(a) for a in plan.actions] == [EditLines, Run, EditLines,
                                               ftp_sessions.KillFtpSessions]
    assert plan.actions[-1].logins == (("alice_ftp", "1000"), ("alice", "1000"))
    assert plan.describe()[-1] == (f"kill  open FTP sessions of alice_ftp, alice ({WHO} -s -H, "
                                   "then SIGTERM to those pure-ftpd sessions)")
    assert plan.facts["sessions_ended"] == ["alice_ftp", "alice"]
    assert lx.ended == [] and not [a for a in lx.log if a[0] == WHO]  # planning changes nothing


def test_linux_apply_ends_those_sessions_after_the_lock(lx) -> None:
    ctx, step = _ctx(lx), FtpLock()
    undo = step.apply(ctx, step.plan(ctx))
    assert sorted(lx.ended) == [201, 202]
    assert set(lx.procs) == {100, 203, 204, 205, 206}  # master, bob, `?`, other uids untouched
    assert lx.log.index(["write", "/etc/ftpusers"]) < lx.log.index([WHO, "-s", "-H"])
    # Reversal lifts the lock and runs nothing of Pure-FTPd's: sessions are not restored.
    back = step.revert_plan(ctx, undo)
    assert not [a for a in back.actions if isinstance(a, ftp_sessions.KillFtpSessions)]


def test_linux_an_account_denied_before_keeps_its_own_login_and_no_scoreboard_is_fine(lx):
    lx.put("/etc/ftpusers", b"root\nalice\n")
    lx.board = None  # pure-ftpwho exits 255: nobody connected since its folder was cleared
    ctx = _ctx(lx)
    plan = FtpLock().plan(ctx)
    assert plan.actions[-1].logins == (("alice_ftp", "1000"),)
    FtpLock().apply(ctx, plan)
    assert lx.ended == [] and b"alice_ftp:!$6$a" in lx.files["/etc/pure-ftpd/pureftpd.passwd"].data


@pytest.mark.parametrize("mode", [None, 0o644])
def test_linux_without_a_usable_pure_ftpwho_the_step_is_refused_at_plan_time(lx, mode) -> None:
    if mode is None:
        del lx.files[WHO]
    else:
        lx.files[WHO].mode = mode
    with pytest.raises(StepError, match="linux.pure_ftpwho") as err:
        FtpLock().plan(_ctx(lx))
    assert ("does not exist" if mode is None else "is not executable") in str(err.value)
    assert not [a for a in lx.log if a[0] in ("write", WHO)]


def test_linux_nothing_to_lock_needs_no_pure_ftpwho(lx) -> None:
    del lx.files[WHO]
    lx.put("/etc/pure-ftpd/pureftpd.passwd", b"alice_old:!$6$o:1000:1000::/h/./::::::::::::\n")
    lx.put("/etc/ftpusers", b"alice\n")
    assert FtpLock().plan(_ctx(lx)).actions == []


# -- the cpanel driver, through the engine -------------------------------------------------
@pytest.fixture
def cpf(cp: Cp) -> Cp:  # noqa: F811
    cp.fake = FakeCpanelFtp()
    (cp.tmp / "playbooks" / "cp-ftp.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, ftp_lock]\n")
    cp.fake.session(301, "alice", 1001)
    cp.fake.session(302, "up@alice.test", 1001)
    cp.fake.session(303, "bob", 1002)
    cp.fake.board.append((100, "up@alice.test"))
    return cp


def test_cpanel_plan_shows_the_kill_after_ftpupdate(cpf: Cp) -> None:
    out = cpf.suspend("cp-ftp", dry_run=True)
    assert out.errors == [], out.errors
    lines = [line for p in out.plans if p["step"] == "ftp_lock" for line in p["actions"]]
    assert lines[-2:] == [f"run   {FTPUPDATE}", f"kill  open FTP sessions of alice, "
                          f"alice_logs, up@alice.test ({WHO} -s -H, then SIGTERM to those "
                          "pure-ftpd sessions)"]
    assert cpf.fake.ended == []


def test_cpanel_suspend_ends_the_sessions_of_the_locked_logins_only(cpf: Cp) -> None:
    out = cpf.suspend("cp-ftp")
    assert out.errors == [] and out.state == "suspended", out.errors
    assert sorted(cpf.fake.ended) == [301, 302] and set(cpf.fake.procs) == {100, 303}
    log = cpf.fake.log
    assert log.index([FTPUPDATE]) < log.index([WHO, "-s", "-H"])
    applied = len(log)
    back = cpf.unsuspend()
    assert back.errors == [] and back.state == "active", back.errors
    assert not [a for a in log[applied:] if a[0] == WHO]


def test_cpanel_without_pure_ftpwho_ftp_lock_is_refused_before_any_change(cpf: Cp) -> None:
    del cpf.fake.files[WHO]
    before = cpf.fake.files["/etc/proftpd/alice"].data
    out = cpf.suspend("cp-ftp")
    assert [e["step"] for e in out.errors] == ["ftp_lock"], out.errors
    message = out.errors[0]["message"]
    assert f"{WHO} does not exist" in message and "cpanel.pure_ftpwho" in message
    assert cpf.fake.files["/etc/proftpd/alice"].data == before and cpf.fake.ended == []


def test_cpanel_the_setting_is_used(cpf: Cp) -> None:
    write_config(cpf.tmp, "    cpanel:\n      pure_ftpwho: /opt/pure/sbin/pure-ftpwho\n")
    del cpf.fake.files[WHO]
    cpf.fake.put("/opt/pure/sbin/pure-ftpwho", b"", 0o755)
    out = cpf.suspend("cp-ftp", dry_run=True)
    assert out.errors == [], out.errors
    assert "/opt/pure/sbin/pure-ftpwho -s -H" in str(out.plans), out.plans


def test_cpanel_check_says_ftp_lock_needs_pure_ftpwho(cpf: Cp) -> None:
    for path in PRESENT:
        cpf.fake.put(path, b"")
    del cpf.fake.files[WHO]
    report = check_servers(cpf.engine(), "cp1")[0]
    assert not report["ok"]
    assert (f"step ftp_lock: NOT available: missing {WHO} (cpanel.pure_ftpwho: without "
            "pure-ftpwho, ftp_lock cannot end the open FTP sessions of the logins it locks, so "
            "it refuses)") in report["lines"]
    assert "step db_lock: available" in report["lines"]

