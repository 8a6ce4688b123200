"""ftp_lock ends the FTP sessions the customer already had open, on both drivers (locking a
login alone only refuses new logins: a sync client would go on uploading). Seen from
outside: alice's sessions opened before the lock (a PureDB virtual user in the middle of an
upload and her own PAM login on the linux host; her main login and an FTP sub-account on the
cPanel simulator) are closed by the server and a new login is refused, while bob's session
and a connection not logged in yet go on answering and the server still takes logins (its
master process lives); after unsuspend alice logs in again."""

from __future__ import annotations

import ftplib
import threading
import time

import pytest

from tests.hosts import clients
from tests.hosts.cpanel import calls
from tests.hosts.cpanel.agent import certificate_for, make_agent
from tests.hosts.delayproxy import DelayProxy
from tests.hosts.provision import write_config
from tests.test_ladder_faults import one_stage

pytestmark = pytest.mark.testhost
TIMEOUT = 10.0
KILL = "kill  open FTP sessions of"


def ftp_session(host, user: str | None = None, password: str = "") -> ftplib.FTP:
    """Return an FTP control connection, logged in as `user` when given (a client sitting
    in its folder), else connected and greeted only."""
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(host.address, 21)
    if user is not None:
        ftp.login(user, password)
    return ftp


def alive(ftp: ftplib.FTP) -> bool:
    """Return True when the server still answers a NOOP on `ftp` (any reply: a connection
    not logged in may be told to log in first); False once it closed the connection."""
    try:
        ftp.sendcmd("NOOP")
        return True
    except ftplib.error_perm:
        return True
    except (ftplib.Error, OSError, EOFError):
        return False


def closed_soon(ftp: ftplib.FTP, within: float = 5.0) -> bool:
    """Return True when the server closes `ftp` within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(ftp):
            return True
        time.sleep(0.2)
    return False


class Upload(threading.Thread):
    """A sync client's upload that never ends by itself: STOR of 4 KiB every 50 ms until
    `stop` is set; `error` holds what ended it from the server's side."""

    def __init__(self, ftp: ftplib.FTP, name: str) -> None:
        super().__init__(daemon=True)
        self.ftp, self.remote, self.stop = ftp, name, threading.Event()
        self.error: BaseException | None = None
        self.sent = 0

    def read(self, _size: int) -> bytes:
        if self.stop.is_set():
            return b""
        time.sleep(0.05)
        self.sent += 4096
        return b"x" * 4096

    def run(self) -> None:
        try:
            self.ftp.storbinary(f"STOR {self.remote}", self)  # type: ignore[arg-type]
        except (ftplib.Error, OSError, EOFError) as exc:
            self.error = exc


def close_all(*sessions: ftplib.FTP) -> None:
    for ftp in sessions:
        try:
            ftp.close()
        except OSError:
            pass


def planned_kill(reply: dict) -> list[str]:
    return [line for p in reply["plan"] if p["step"] == "ftp_lock" for line in p["actions"]
            if line.startswith(KILL)]


# -- the linux driver on the main test host ----------------------------------------------
@pytest.fixture(params=["direct", "50ms"])
def linked_agent(request, agent_env, host, tmp_path):
    """The agent on the main host, straight or through the delay proxy (50 ms RTT with
    jitter), with a playbook that locks FTP at once."""
    one_stage(agent_env, "ftp-now", "backup, ftp_lock")
    if request.param == "direct":
        yield agent_env
        return
    books = agent_env.config.parent.parent / "playbooks"
    with DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.004) as proxy:
        agent_env.config = write_config(host, tmp_path / "slow", proxy_port=proxy.port,
                                        playbooks_dir=str(books))
        yield agent_env
        assert proxy.connections > 0  # the calls really went through the proxy
        # While the proxy is up (agent_env's own clean-up comes after it is gone): a failed
        # test must not leave alice locked for the next one.
        agent_env("unsuspend", host.name, "alice", timeout=60)


def test_linux_ftp_lock_ends_the_open_sessions_of_the_locked_logins_only(linked_agent, host):
    agent_env = linked_agent
    upload_file = host.path("/home/alice/public_html/sync-upload.bin")
    virtual = ftp_session(host, "alice_ftp", "ftp-pass-1")
    system = ftp_session(host, "alice", "alice-pass-1")
    bob = ftp_session(host, "bob_ftp", "bob-ftp-1")
    greeted = ftp_session(host)
    upload = Upload(virtual, "sync-upload.bin")
    try:
        upload.start()
        assert alive(system) and alive(bob) and alive(greeted)
        rc, reply, out = agent_env("--dry-run", "suspend", host.name, "alice",
                                   "--playbook", "ftp-now")
        assert rc == 0, out
        assert planned_kill(reply) == [f"{KILL} alice_ftp, alice (/usr/sbin/pure-ftpwho -s -H, "
                                       "then SIGTERM to those pure-ftpd sessions)"], reply
        time.sleep(0.5)
        assert upload.is_alive() and alive(system)  # the dry run changed nothing

        rc, reply, out = agent_env("suspend", host.name, "alice", "--playbook", "ftp-now")
        assert rc == 0 and reply["state"] == "suspended", out
        # Seen from outside: the upload is cut and alice's idle session closed; logging in
        # again (the client reconnecting) is refused.
        upload.join(timeout=5)
        assert not upload.is_alive(), "alice_ftp's upload is still going on"
        assert upload.error is not None and upload.sent > 0
        assert closed_soon(system), "the open FTP session of alice (PAM) still answers"
        assert clients.ftp_login(host, "alice_ftp", "ftp-pass-1").startswith("auth failed")
        assert clients.ftp_login(host, "alice", "alice-pass-1").startswith("auth failed")
        # bob's session, a connection not logged in yet and the server itself go on.
        assert alive(bob), "bob's open FTP session was ended too"
        assert alive(greeted), "a connection not logged in yet was ended"
        assert clients.ftp_login(host, "bob_ftp", "bob-ftp-1") == "ok"

        rc, reply, out = agent_env("unsuspend", host.name, "alice")
        assert rc == 0 and reply["state"] == "active", out
        assert clients.ftp_login(host, "alice_ftp", "ftp-pass-1") == "ok"
        assert clients.ftp_login(host, "alice", "alice-pass-1") == "ok"
        assert alive(bob)
    finally:
        upload.stop.set()
        upload.join(timeout=10)
        close_all(virtual, system, bob, greeted)
        upload_file.unlink(missing_ok=True)


# -- the cpanel driver on the cPanel simulator ---------------------------------------------
@pytest.fixture(scope="module")
def cp():
    """A cPanel host of its own (host index offset 32) whose WHM certificate names it."""
    for host, cpanel in calls.running_host(offset=32):
        yield host, certificate_for(host, cpanel)


@pytest.fixture(params=["cli", "api"])
def cp_agent(request, cp, tmp_path):
    """The agent over SSH, panel calls by whmapi1/uapi (cli) or the WHM API (api), with a
    playbook that locks FTP at once; alice's case is lifted and the simulator's state put
    back afterwards."""
    host, cpanel = cp
    agent = make_agent(host, tmp_path, request.param, cpanel.root_token)
    (tmp_path / "playbooks" / "ftp-now.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, ftp_lock]\n")
    yield agent
    # A failed test must not leave alice's FTP logins locked for the next one: reset()
    # does not undo edits of /etc/proftpd, the agent's own unsuspend does.
    agent("unsuspend", host.name, "alice", timeout=120)
    calls.reset(host)


@pytest.mark.xdist_group("cpanel-ftp-sessions")
def test_cpanel_ftp_lock_ends_the_open_sessions_of_the_locked_logins_only(cp, cp_agent):
    host, _cpanel = cp
    main = ftp_session(host, "alice", "alice-pass-1")
    sub = ftp_session(host, "ftpuser@alice.test", "ftp-pass-1")
    bob = ftp_session(host, "bob", "bob-pass-1")
    try:
        assert alive(main) and alive(sub) and alive(bob)
        rc, reply, out = cp_agent("--dry-run", "suspend", host.name, "alice",
                                  "--playbook", "ftp-now")
        assert rc == 0, out
        assert planned_kill(reply) == [f"{KILL} alice, alice_logs, ftpuser@alice.test "
                                       "(/usr/sbin/pure-ftpwho -s -H, then SIGTERM to those "
                                       "pure-ftpd sessions)"]
        assert alive(main) and alive(sub)

        rc, reply, out = cp_agent("suspend", host.name, "alice", "--playbook", "ftp-now")
        assert rc == 0 and reply["state"] == "suspended", out
        assert closed_soon(main), "the open FTP session of alice still answers"
        assert closed_soon(sub), "the open FTP session of ftpuser@alice.test still answers"
        assert clients.ftp_login(host, "alice", "alice-pass-1").startswith("auth failed")
        assert clients.ftp_login(host, "ftpuser@alice.test", "ftp-pass-1").startswith(
            "auth failed")
        assert alive(bob), "bob's open FTP session was ended too"
        assert clients.ftp_login(host, "bob", "bob-pass-1") == "ok"

        rc, reply, out = cp_agent("unsuspend", host.name, "alice")
        assert rc == 0 and reply["state"] == "active", out
        assert clients.ftp_login(host, "alice", "alice-pass-1") == "ok"
        assert clients.ftp_login(host, "ftpuser@alice.test", "ftp-pass-1") == "ok"
        assert alive(bob)
    finally:
        close_all(main, sub, bob)
