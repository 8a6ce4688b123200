"""SSH transport: one paramiko connection per server, reused for every command of a run."""

from __future__ import annotations

import socket
import threading
import time

import paramiko

from agent.connector.base import Connector, Result, quote
from agent.errors import AuthFailed, CommandTimeout, HostKeyRefused, Unreachable

# OpenSSH's sshd allows MaxSessions (default 10) open sessions on one connection; the
# agent's threads (parallel reverts, a probe beside a settle) stay below it, and a refusal
# while the link is alive (the server frees a slot only after the close is through) is
# retried for SESSION_WAIT seconds instead of being taken for a lost link.
MAX_SESSIONS = 8
SESSION_WAIT = 10.0

# The server must never close a channel before the agent's last message on it has arrived.
# paramiko sends a channel's data and EOF from the calling thread after its "still open?"
# check, while its reader thread answers the server's CLOSE with the agent's own CLOSE: when a
# command ends first, the data or EOF can leave after that CLOSE. OpenSSH has then freed the
# channel and drops the whole connection ("data packet referred to nonexistent channel",
# "ieof packet ..."; paramiko issues #1115, #1705), a live link taken down by a timing slip.
# So a command without input reads /dev/null and gets no EOF from the agent, and a command
# with input is followed by a drain that reads what it left to the agent's EOF, so the
# server's CLOSE (sent only once the process has ended) always comes after the agent's EOF.
_NO_INPUT = 'exec "$@" </dev/null'
# sshd's effective MaxSessions for this very connection (Match blocks on the user and the
# address the agent comes from), read with `sshd -T -C`; the sshd binary arrives as $1.
_MAX_SESSIONS = (
    'sshd=$1; set -- $SSH_CONNECTION; "$sshd" -T -C "user=$(id -un),addr=${1:-127.0.0.1},'
    'host=${1:-127.0.0.1},laddr=${3:-127.0.0.1},lport=${4:-22}" | '
    "awk '$1 == \"maxsessions\" { print $2 }'"
)
# When sshd cannot say (not root, an sshd elsewhere): what a hardened host allows.
FALLBACK_SESSIONS = 2
_DRAIN_INPUT = '"$@"; rc=$?; cat >/dev/null; exit "$rc"'


class SSHConnector(Connector):
    """Run argv lists on a server over SSH with strict host-key checking and key auth."""

    def __init__(self, server) -> None:  # noqa: ANN001 - agent.config.servers.Server
        self.name = server.name
        self._server = server
        self._client: paramiko.SSHClient | None = None
        self._prefix = ["sudo", "-n"] if server.sudo else []
        self.connections_opened = 0
        # Once a connection is lost mid-run it stays lost for this run: reconnecting silently
        # in the middle of a stage would hide that earlier commands may not have finished.
        self._lost: str | None = None
        # Reverts of independent steps run side by side on this one connection.
        self._connecting = threading.Lock()
        self._sessions = threading.BoundedSemaphore(MAX_SESSIONS)
        self._channels: int | None = None
        self.max_sessions: int | None = None

    def _connect(self) -> paramiko.SSHClient:
        s = self._server
        client = paramiko.SSHClient()
        # Only the configured known_hosts file counts; unknown keys are refused, never added.
        client.load_host_keys(s.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = _open_socket(s.host, s.port, s.connect_timeout, s.name)
        try:
            client.connect(
                s.host,
                port=s.port,
                sock=sock,
                username=s.user,
                key_filename=s.key_file,
                timeout=s.connect_timeout,
                banner_timeout=s.connect_timeout,
                auth_timeout=s.connect_timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            sock.close()
            raise HostKeyRefused(
                f"{s.name}: host key of {s.host}:{s.port} does not match {s.known_hosts} "
                "(changed key: check the server before updating known_hosts)"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            sock.close()
            raise AuthFailed(f"{s.name}: key authentication as {s.user} failed: {exc}") from exc
        except paramiko.SSHException as exc:
            client.close()
            sock.close()
            if "not found in known_hosts" in str(exc):
                raise HostKeyRefused(
                    f"{s.name}: host key of {s.host}:{s.port} is not in {s.known_hosts}; "
                    "add it after checking its fingerprint"
                ) from exc
            raise Unreachable(f"{s.name}: SSH to {s.host}:{s.port} failed: {exc}") from exc
        except (TimeoutError, OSError, EOFError) as exc:
            client.close()
            sock.close()
            raise Unreachable(f"{s.name}: cannot reach {s.host}:{s.port}: {exc}") from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
        self.connections_opened += 1
        return client

    def _ensure(self) -> paramiko.SSHClient:
        if self._lost is not None:
            raise Unreachable(self._lost)
        with self._connecting:
            client = self._client
            if client is None:
                self._client = client = self._connect()
        if not _alive(client):
            self._lose(f"{self.name}: the SSH connection closed")
        return client

    def _lose(self, why: str) -> None:
        """Mark the connection lost for the rest of this run and raise Unreachable."""
        self._lost = why
        if self._client is not None:
            self._client.close()
            self._client = None
        raise Unreachable(why)

    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        with self._sessions:
            return self._exec_one(argv, stdin, timeout)

    def _open(self, client: paramiko.SSHClient) -> paramiko.Channel:
        """Open a session channel; a refusal on a live link (sshd still counts sessions that
        just closed against MaxSessions) is tried again for a few seconds."""
        deadline = time.monotonic() + SESSION_WAIT
        while True:
            transport = client.get_transport()
            if transport is None:  # another thread found the link lost and closed it
                raise EOFError("the SSH connection closed")
            try:
                return transport.open_session()
            except paramiko.SSHException:
                if not _alive(client) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _exec_one(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        client = self._ensure()
        chan = None
        try:
            chan = self._open(client)
            chan.settimeout(timeout)  # bounds sendall of stdin; reads wait in _drain
            chan.exec_command(_remote_command(self._prefix + argv, bool(stdin)))
            # Without input nothing is sent: the EOF could arrive after the channel's end.
            # A command whose channel closed while it was fed answers with its exit status.
            if stdin and _send_input(client, chan, stdin):
                chan.shutdown_write()
            out, err = _drain(chan, time.monotonic() + timeout)
            rc = chan.recv_exit_status() if chan.exit_status_ready() else -1
        except (_Timeout, TimeoutError):
            _close_quietly(chan)
            raise CommandTimeout(
                f"{self.name}: `{quote(argv)}` did not finish within {timeout:.0f}s") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            _close_quietly(chan)
            self._lose(f"{self.name}: connection lost running `{quote(argv)}`: "
                       f"{type(exc).__name__}: {exc}")
        chan.close()
        if rc == -1:
            # The channel closed without an exit status: the command was killed by a signal
            # (exit-signal) or the link went away; only a live transport tells them apart.
            if not _alive(client):
                self._lose(f"{self.name}: connection lost running `{quote(argv)}`")
            return Result(255, out, err + b"\n(no exit status: killed by a signal)")
        return Result(rc, out, err)

    def channels(self, sshd: str = "/usr/sbin/sshd") -> int:
        """Return how many commands may run side by side: one below the server's effective
        MaxSessions (read once per connection), at most MAX_SESSIONS; and hold every later
        command to it. Called before a batch starts its threads."""
        if self._channels is None:
            result = self.run(["sh", "-c", _MAX_SESSIONS, "sh", sshd], ok_codes=(0, 1, 127))
            text = result.text.strip()
            self.max_sessions = int(text) if text.isdigit() else FALLBACK_SESSIONS
            self._channels = max(1, min(MAX_SESSIONS, self.max_sessions - 1))
            self._sessions = threading.BoundedSemaphore(self._channels)
        return self._channels

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _remote_command(argv: list[str], has_input: bool) -> str:
    """Return the command line for sshd that runs `argv` and ends only after its input did.

    Without input, `argv` reads /dev/null (the agent sends no EOF); with input, whatever
    `argv` left unread is read to the agent's EOF before the shell exits with `argv`'s status
    (a command killed by a signal then answers 128 + the signal's number).
    """
    return quote(["sh", "-c", _DRAIN_INPUT if has_input else _NO_INPUT, "sh", *argv])


def _open_socket(host: str, port: int, timeout: float, name: str) -> socket.socket:
    """Return a TCP connection to host:port with TCP_NODELAY; raise Unreachable.

    A refused connection is tried again until `timeout` has passed: sshd re-executes itself
    on SIGHUP (after an sshd_config change, ours included) and refuses connections until
    it listens again, which takes more than a second on a loaded machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            break
        except ConnectionRefusedError as exc:
            if time.monotonic() >= deadline:
                raise Unreachable(f"{name}: cannot reach {host}:{port}: {exc}") from exc
            time.sleep(0.2)
        except OSError as exc:
            raise Unreachable(f"{name}: cannot reach {host}:{port}: {exc}") from exc
    # Without TCP_NODELAY each small SSH packet waits on Nagle (~40 ms an exec).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _send_input(client: paramiko.SSHClient, chan: paramiko.Channel, stdin: bytes) -> bool:
    """Send all of `stdin`; return False when the command's channel closed first.

    The drain (`_remote_command`) reads whatever a command leaves unread, so the channel
    closes before its input is sent only when the remote shell itself was killed: paramiko's
    send then says "Socket is closed". With the link alive, that is the command's own answer
    (its exit status, if any, follows), not a lost link.
    """
    try:
        chan.sendall(stdin)
        return True
    except (OSError, paramiko.SSHException):
        if chan.closed and _alive(client):
            return False
        raise


def _alive(client: paramiko.SSHClient) -> bool:
    """Return True while the client's connection is up (None: another thread of this run
    found it lost and closed it)."""
    transport = client.get_transport()
    return transport is not None and transport.is_active()


class _Timeout(Exception):
    """The command's own time limit passed (the link may be fine)."""


def _drain(chan: paramiko.Channel, deadline: float) -> tuple[bytes, bytes]:
    """Read stdout and stderr until the channel's end of data, then wait for its exit status.

    The exit status may arrive before the last output (sshd sends it when the process ends,
    not when its pipes are empty), so the end is EOF on the channel, never the status; both
    streams are read as they come so a chatty command cannot fill a window and stall.
    """
    # A plain Event, not the channel's OS pipe (`select` on the channel): data arriving after
    # the channel was closed would be signalled on a closed pipe, and the EBADF raised in
    # paramiko's reader thread kills the whole connection.
    ready = threading.Event()
    chan.in_buffer.set_event(ready)
    chan.in_stderr_buffer.set_event(ready)
    out, err = bytearray(), bytearray()
    while True:
        got = False
        while chan.recv_ready():
            out += chan.recv(1 << 17)
            got = True
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(1 << 17)
            got = True
        if got:
            continue
        # eof_received is set after everything sent before the EOF was buffered: once it is
        # set and both buffers are empty, nothing more can come.
        if chan.eof_received or chan.closed:
            break
        _wait(ready, deadline)
        ready.clear()  # re-checked above before the next wait: no wakeup is lost
    while not chan.exit_status_ready():
        _wait(chan.status_event, deadline)
    return bytes(out), bytes(err)


def _wait(event: threading.Event, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Timeout
    event.wait(min(remaining, 0.5))


def _close_quietly(chan: paramiko.Channel | None) -> None:
    if chan is not None:
        try:
            chan.close()
        except (paramiko.SSHException, OSError, EOFError):
            pass
