"""SSH transport: one paramiko connection per server, reused for every command of a run."""

from __future__ import annotations

import select
import time

import paramiko

from agent.connector.base import Connector, Result, quote
from agent.errors import AuthFailed, HostKeyRefused, Unreachable


class SSHConnector(Connector):
    """Run argv lists on a server over SSH with strict host-key checking and key auth."""

    def __init__(self, server) -> None:  # noqa: ANN001 - agent.config.Server
        self.name = server.name
        self._server = server
        self._client: paramiko.SSHClient | None = None
        self._prefix = ["sudo", "-n"] if server.sudo else []
        self.connections_opened = 0

    def _connect(self) -> paramiko.SSHClient:
        s = self._server
        client = paramiko.SSHClient()
        # Only the configured known_hosts file counts; unknown keys are refused, never added.
        client.load_host_keys(s.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                s.host,
                port=s.port,
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
            raise HostKeyRefused(
                f"{s.name}: host key of {s.host}:{s.port} does not match {s.known_hosts} "
                "(changed key: check the server before updating known_hosts)"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise AuthFailed(f"{s.name}: key authentication as {s.user} failed: {exc}") from exc
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise HostKeyRefused(
                    f"{s.name}: host key of {s.host}:{s.port} is not in {s.known_hosts}; "
                    "add it after checking its fingerprint"
                ) from exc
            raise Unreachable(f"{s.name}: SSH to {s.host}:{s.port} failed: {exc}") from exc
        except (TimeoutError, OSError, EOFError) as exc:
            client.close()
            raise Unreachable(f"{s.name}: cannot reach {s.host}:{s.port}: {exc}") from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
        self.connections_opened += 1
        return client

    def _ensure(self) -> paramiko.SSHClient:
        client = self._client
        transport = client.get_transport() if client is not None else None
        if client is None or transport is None or not transport.is_active():
            self._client = client = self._connect()
        return client

    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        client = self._ensure()
        command = quote(self._prefix + argv)
        try:
            chan = client.get_transport().open_session()
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = self._drain(chan, timeout)
            rc = chan.recv_exit_status()
            chan.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise Unreachable(
                f"{self.name}: connection lost running `{quote(argv)}`: {exc}") from exc
        if rc == -1:
            self.close()
            raise Unreachable(f"{self.name}: no exit status for `{quote(argv)}` (connection lost)")
        return Result(rc, out, err)

    @staticmethod
    def _drain(chan: paramiko.Channel, timeout: float) -> tuple[bytes, bytes]:
        # Read both streams as they come so a chatty command cannot fill a window and stall;
        # select() on the channel wakes us as soon as data or the exit status arrives.
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        while True:
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            # OpenSSH sends all output, then EOF, then the exit status, in that order.
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no exit after {timeout:.0f}s")
            select.select([chan], [], [], min(remaining, 1.0))
        return bytes(out), bytes(err)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
