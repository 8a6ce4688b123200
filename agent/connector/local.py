"""Local transport: the agent runs on the hosting server itself."""

from __future__ import annotations

import subprocess

from agent.connector.base import Connector, Result, quote
from agent.errors import CommandTimeout


class LocalConnector(Connector):
    """Run argv lists with subprocess (never a shell)."""

    def __init__(self, server) -> None:  # noqa: ANN001 - agent.config.servers.Server
        self.name = server.name
        self._prefix = ["sudo", "-n"] if server.sudo else []

    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        try:
            proc = subprocess.run(
                self._prefix + argv,
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeout(
                f"{self.name}: `{quote(argv)}` did not finish within {timeout:.0f}s") from exc
        except FileNotFoundError:
            return Result(127, b"", f"{argv[0]}: command not found".encode())
        return Result(proc.returncode, proc.stdout, proc.stderr)
