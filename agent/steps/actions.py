"""What a plan is made of: actions that say exactly what they will do, then do it (Run,
Write, Skipped; EditLines in agent/steps/edit_lines.py), file-state snapshots, and how a
list of actions is carried out in as few round trips as it can (several accounts' plans
at once, and their finish actions merged: agent/steps/together.py). The step protocol
they serve is agent/steps/protocol.py."""

from __future__ import annotations

import base64
import contextvars
import difflib
from dataclasses import dataclass
from typing import Protocol

from agent.connector import Connector, quote
from agent.connector.base import FileData
from agent.errors import AgentError, BatchFailed, CommandFailed, StepError, TransferError
from agent.steps.edit_lines import EditLines


@dataclass(frozen=True)
class Run:
    """Run one argv on the server, optionally feeding `stdin` (SQL, never secrets in argv)."""

    argv: list[str]
    ok_codes: tuple[int, ...] = (0,)
    timeout: float = 300.0
    stdin: bytes | None = None

    def describe(self) -> list[str]:
        if self.stdin is None:
            return [f"run   {quote(self.argv)}"]
        return [f"run   {quote(self.argv)} <<EOF"] + [
            "      " + line for line in self.stdin.decode("utf-8", "replace").splitlines()
        ] + ["      EOF"]

    def carry_out(self, conn: Connector) -> None:
        conn.run(self.argv, stdin=self.stdin, ok_codes=self.ok_codes, timeout=self.timeout)


@dataclass(frozen=True)
class FileState:
    """A file's content and metadata at one moment, or its absence; JSON-able via to_dict."""

    path: str
    exists: bool
    data: bytes = b""
    mode: int = 0o644
    owner: str = "0:0"

    def to_dict(self) -> dict:
        return {"path": self.path, "exists": self.exists,
                "data": base64.b64encode(self.data).decode(), "mode": self.mode,
                "owner": self.owner}

    @classmethod
    def from_dict(cls, d: dict) -> FileState:
        return cls(d["path"], d["exists"], base64.b64decode(d["data"]), d["mode"], d["owner"])


@dataclass(frozen=True)
class Write:
    """Make `path` hold `after` (or vanish when `after` is absent), shown as a diff."""

    before: FileState
    after: FileState

    def describe(self) -> list[str]:
        a = self.after
        head = (f"write {a.path} (mode {a.mode:04o}, owner {a.owner})" if a.exists
                else f"remove {a.path}")
        old = self.before.data.decode("utf-8", "replace").splitlines(keepends=True)
        new = a.data.decode("utf-8", "replace").splitlines(keepends=True) if a.exists else []
        diff = difflib.unified_diff(old, new, fromfile=f"{a.path} (now)",
                                    tofile=f"{a.path} (after)")
        return [head] + ["      " + line.rstrip("\n") for line in diff]

    def carry_out(self, conn: Connector) -> None:
        a = self.after
        if a.exists:
            conn.write(a.path, a.data, a.mode, a.owner)
        else:
            conn.run(["rm", "-f", "--", a.path])


@dataclass(frozen=True)
class Skipped:
    """A plan line saying what the step deliberately leaves undone; carrying it out does
    nothing, so the dry run, the plan and the audit log all show it."""

    text: str

    def describe(self) -> list[str]:
        return [f"skip  {self.text}"]

    def carry_out(self, conn: Connector) -> None:
        return None


class Action(Protocol):
    """What a plan is made of: it says exactly what it will do, then does it (an open
    protocol: Run and Write here, EditLines in agent.steps.edit_lines, ApiCall in
    agent.steps.api; a driver may add its own)."""

    def describe(self) -> list[str]: ...

    def carry_out(self, conn: Connector) -> None: ...


def with_parents(folders: list[str]) -> list[str]:
    """Return the folders and all their parents (but /), each once, parents first: what a
    plan reads to know which folders it makes, and so must remove again."""
    wanted: list[str] = []
    for folder in folders:
        parts = folder.rstrip("/").split("/")
        wanted += ["/".join(parts[:i]) for i in range(2, len(parts) + 1)]
    return list(dict.fromkeys(wanted))


def file_state(found: FileData, server: str) -> FileState:
    """Return a verified read as a FileState; a path that is not a regular file is refused."""
    if not found.exists:
        return FileState(found.path, False)
    if found.data is None:
        raise StepError(f"{found.path} on {server} is a {found.kind}, not a regular file")
    return FileState(found.path, True, found.data, found.mode, f"{found.uid}:{found.gid}")


def snapshot(conn: Connector, paths: list[str]) -> dict[str, FileState]:
    """Return the current state of each path (whole verified content, mode, owner), in one
    round trip; a path that exists but is not a regular file is refused."""
    return {path: file_state(found, conn.name) for path, found in conn.read_many(paths).items()}


# The runner sets a list here while a step is applied: every action carried out adds its
# description, so the audit log shows exactly what a real run did (and tests compare it with
# what `plan` and `--dry-run` showed).
CARRIED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("carried",
                                                                        default=None)


def carry_out(conn: Connector, actions: list[Action]) -> None:
    """Carry out actions in order; the first failure raises and stops the rest.

    Consecutive commands without input (file removals, and any action with an
    `as_command()`: RemoveDirs, say) go to the server as one batch,
    one round trip, still in order and still stopping at the first failure; so do
    consecutive writes of distinct files (Connector.write_many: each file received whole
    before any is installed, then installed in order). The raised
    AgentError carries `completed`: how many actions had finished, so the caller knows
    whether anything at all was changed on the server.
    """
    record = CARRIED.get()
    done = 0
    while done < len(actions):
        group = _batchable(actions[done:])
        edits = _edits(actions[done:])
        writes = _writes(actions[done:])
        try:
            if group:
                conn.run_batch([_as_command(a) for a in group],
                               timeout=sum(_timeout(a) for a in group))
            elif writes:
                group = writes
                _write_all(conn, writes)
            elif edits:
                # Several files edited in a row: read them all in one round trip.
                group = edits
                found = conn.read_many([e.path for e in edits])
                for finished, edit in enumerate(edits):
                    try:
                        edit.carry_out(conn, found[edit.path])
                    except AgentError as exc:
                        exc.finished = finished  # type: ignore[attr-defined]
                        raise
            else:
                group = [actions[done]]
                group[0].carry_out(conn)
        except AgentError as exc:
            if not hasattr(exc, "finished"):
                exc.completed = done  # type: ignore[attr-defined]
                raise
            exc.completed = done + exc.finished  # type: ignore[attr-defined]
            if record is not None:
                record.extend(line for a in group[:exc.finished] for line in a.describe())
            raise
        done += len(group)
        if record is not None:
            record.extend(line for a in group for line in a.describe())


def kind(action: Action) -> str:
    """Return how carry_out sends the action: "batch" (a command without input, a
    removal, an action with `as_command()`: many in one batch), "write" (content: many
    in one write_many) or "other"."""
    if isinstance(action, Run) and action.stdin is None or (
            isinstance(action, Write) and not action.after.exists) or hasattr(
            action, "as_command"):
        return "batch"
    return "write" if isinstance(action, Write) else "other"


def _batchable(actions: list[Action]) -> list[Action]:
    """Return the leading actions that can run as one batch (two or more, else none)."""
    group = []
    for action in actions:
        if kind(action) != "batch":
            break
        group.append(action)
    return group if len(group) > 1 else []


def _writes(actions: list[Action]) -> list[Write]:
    """Return the leading Writes of content to distinct files (two or more, else none)."""
    group: list[Write] = []
    for action in actions:
        if not isinstance(action, Write) or not action.after.exists or action.after.path in {
                w.after.path for w in group}:
            break
        group.append(action)
    return group if len(group) > 1 else []


def _write_all(conn: Connector, writes: list[Write]) -> None:
    """Write every file in one command; a failure says how many are in place (`finished`):
    the renames stopped at one (BatchFailed), or none was installed (any other refusal). A
    lost link says nothing, as for one write: the undo data covers every file."""
    try:
        conn.write_many([(w.after.path, w.after.data, w.after.mode, w.after.owner)
                         for w in writes])
    except BatchFailed:
        raise
    except (CommandFailed, TransferError) as exc:
        exc.finished = 0  # type: ignore[attr-defined]
        raise


def _edits(actions: list[Action]) -> list[EditLines]:
    """Return the leading EditLines of distinct files (two or more, else none)."""
    group: list[EditLines] = []
    for action in actions:
        if not isinstance(action, EditLines) or action.path in {e.path for e in group}:
            break
        group.append(action)
    return group if len(group) > 1 else []


def _as_command(action: Action) -> tuple[list[str], tuple[int, ...]]:
    if isinstance(action, Run):
        return action.argv, action.ok_codes
    if hasattr(action, "as_command"):
        return action.as_command()  # an action that is one command without input
    return ["rm", "-f", "--", action.after.path], (0,)  # a Write that removes


def _timeout(action: Action) -> float:
    return action.timeout if isinstance(action, Run) else 60.0
