"""EditLines: whole lines of a shared file replaced in place, recomputed on the content as
it is when carried out (agent/steps/actions.py carries several out with one read)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.connector import Connector
from agent.connector.base import FileData
from agent.errors import StepError


def file_lines(data: bytes | None) -> list[str]:
    """Return a file's lines exactly as EditLines sees them: split on "\\n" only, so a line
    ending in "\\r" (a file edited on Windows) keeps it and is matched as it is."""
    if not data:
        return []
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


@dataclass(frozen=True)
class EditLines:
    """Replace whole lines of a file in place, leaving every other line as it is.

    Used for files shared with other accounts (/etc/ftpusers, a PureDB source file) and
    for files holding secrets (password hashes): the edit is recomputed on the current
    content when carried out, so a line someone else changed meanwhile is never clobbered,
    and `summary` (not the lines) is what a dry run shows. Each pair is (old, new): an empty
    old appends new, an empty new removes old. Carrying it out twice changes nothing.
    """

    path: str
    pairs: tuple[tuple[str, str], ...]
    summary: tuple[str, ...]

    def describe(self) -> list[str]:
        return [f"edit  {self.path}: {line}" for line in self.summary]

    def reversed(self, summary: tuple[str, ...]) -> EditLines:
        return EditLines(self.path, tuple((new, old) for old, new in self.pairs), summary)

    @property
    def merge_key(self) -> tuple:
        return ("edit", self.path)

    def merged_with(self, other: EditLines) -> EditLines:
        """Return one edit of the file doing both (recomputed on the content as read)."""
        return EditLines(self.path, self.pairs + other.pairs, self.summary + other.summary)

    def carry_out(self, conn: Connector, found: FileData | None = None) -> None:
        """Edit the file as read now (or as `found`, read whole in this same carry-out)."""
        if found is None:
            found = conn.read_many([self.path])[self.path]
        if not found.exists or found.data is None:
            raise StepError(f"{self.path} does not exist on {conn.name} as a regular file")
        data = found.data
        lines = data.decode("utf-8", "surrogateescape").split("\n")
        tail = lines.pop() if lines and lines[-1] == "" else None
        for old, new in self.pairs:
            if old and old in lines:
                at = lines.index(old)
                lines[at:at + 1] = [new] if new else []
            elif not old and new not in lines:
                lines.append(new)
            elif old and new and new in lines:
                continue  # already carried out
            elif old and not new:
                continue  # already removed
            elif old:
                who = old.split(":", 1)[0]
                raise StepError(f"{self.path}: the line of {who!r} changed since it was read; "
                                "nothing was written")
        # A file left without lines is empty, not one newline: an agent-managed list that
        # starts empty (Dovecot's deny file) is byte-identical again after the round trip.
        text = "\n".join(lines) + ("\n" if tail is not None and lines else "")
        new_data = text.encode("utf-8", "surrogateescape")
        if new_data != data:
            conn.write(self.path, new_data, found.mode, f"{found.uid}:{found.gid}")
