"""Typed exceptions. Only the CLI turns them into exit codes (see EXIT_CODES there)."""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""


class BadInput(AgentError, ValueError):
    """The caller asked for something invalid; nothing was changed anywhere (exit 2)."""


class ConfigError(AgentError):
    """Config or playbook files are invalid; carries every problem found (exit 78)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class Busy(AgentError):
    """Another run holds the target's lock, or a server is unreachable (exit 75)."""


class Unreachable(Busy):
    """A server could not be reached now; retrying later may work (exit 75)."""


class JournalError(AgentError):
    """The state database cannot be read or is from a newer agent (exit 78)."""


class HostKeyRefused(AgentError):
    """The SSH host key is unknown or changed; never accepted automatically (exit 78)."""


class CommandFailed(AgentError):
    """A command on a server exited with a status it should not have."""

    def __init__(self, argv_display: str, rc: int, stderr: str) -> None:
        self.argv_display = argv_display
        self.rc = rc
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-3:] if stderr.strip() else []
        detail = (": " + " | ".join(tail)) if tail else ""
        super().__init__(f"`{argv_display}` exited {rc}{detail}")


class BatchFailed(CommandFailed):
    """One command of a batch failed; `finished` commands before it had succeeded."""

    def __init__(self, argv_display: str, rc: int, stderr: str, finished: int) -> None:
        super().__init__(argv_display, rc, stderr)
        self.finished = finished


class StepError(AgentError):
    """A step could not be planned, applied, verified or reverted."""


class CommandTimeout(StepError):
    """A command ran longer than its timeout; the link itself may be fine (exit 1)."""


class TransferError(StepError):
    """Bytes read from or written to a server did not match what the other side holds.

    Never data: a read that fails this check is not returned, a write is not installed.
    """


class VerifyFailed(StepError):
    """A step claimed success but the probe from outside shows no effect."""


class StepUnavailable(StepError, BadInput):
    """The playbook names a step this server's driver does not implement yet (exit 2)."""


class AuthFailed(AgentError):
    """The server refused the configured SSH key (exit 78)."""
