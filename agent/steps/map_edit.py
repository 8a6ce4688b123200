"""MapEdit: add and remove host names in the host map (agent/steps/hostmap.py), the one file
that puts any set of sites behind the landing page without a reload.

Like EditLines it is recomputed on the file's current content when carried out (read whole
and verified first), so two cases' names never clobber each other, and carrying it out
twice changes nothing. Unlike a plain write it makes sure the new file's mtime differs from
the old one's: mod_rewrite re-reads a txt map only when the mtime changes, and two writes
within one kernel clock tick (a suspend and a quick unsuspend) could otherwise keep the old
mtime and leave Apache on the old map.
"""

from __future__ import annotations

import contextvars
import hashlib
from dataclasses import dataclass

from agent import ids
from agent.connector import Connector
from agent.errors import StepError, TransferError
from agent.steps.hostmap import WHOLE_SERVER

# The connector's atomic install (size and SHA-256 checked on the server), with the mtime
# bump before the rename: at least one second past the old file's whole seconds (chown
# before chmod, as there: chown clears set-ID bits; `mv -T` never moves into a folder).
# $6: the SHA-256 of the map the new content was computed from; a map that is no longer
# that (another process wrote it since it was read) is left alone (_CHANGED), and the edit
# starts again from what is there now.
_INSTALL = (
    't=; trap \'[ -z "$t" ] || rm -f -- "$t"\' EXIT; trap "exit 91" HUP INT TERM PIPE; '
    'set -e; d=$(dirname -- "$1"); t=$(mktemp -- "$d/.sa-tmp.XXXXXXXX"); '
    'cat > "$t"; n=$(wc -c < "$t"); h=$(sha256sum < "$t"); '
    'if [ "$((n))" != "$4" ] || [ "${h%% *}" != "$5" ]; then '
    'echo "received $((n)) bytes, expected $4 (or a different SHA-256)" >&2; exit 90; fi; '
    'old=$(stat -c %Y -- "$1" 2>/dev/null || echo 0); new=$(stat -c %Y -- "$t"); '
    'if [ "$new" -le "$old" ]; then touch -d "@$((old + 1))" -- "$t"; fi; '
    'chown "$3" "$t"; chmod "$2" "$t"; '
    'cur=$(sha256sum < "$1") || exit 93; [ "${cur%% *}" = "$6" ] || exit 93; '
    'mv -f -T -- "$t" "$1"; trap - EXIT'
)
_MISMATCH = 90
_CHANGED = 93
_ATTEMPTS = 3
# Files a batch read moments ago (path -> FileData), set around its shared finish: the edit
# starts from the map found there instead of reading it again (one round trip less), which
# is safe because its install checks that the map is still exactly that.
KNOWN: contextvars.ContextVar[dict | None] = contextvars.ContextVar("known", default=None)
_HEAD = "# suspension-agent host map: written by the agent, do not edit"


@dataclass(frozen=True)
class MapEdit:
    """Ensure the `add` names are `name yes` lines of the map and the `remove` names are not."""

    path: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        lines = []
        if self.add:
            lines.append(f"map   {self.path}: + {' '.join(self.add)}")
        if self.remove:
            lines.append(f"map   {self.path}: - {' '.join(self.remove)}")
        return lines

    @property
    def merge_key(self) -> tuple:
        return ("map", self.path)

    def merged_with(self, other: MapEdit) -> MapEdit:
        """Return one edit doing both (a batch of accounts: one read, one write)."""
        return MapEdit(self.path, self.add + other.add, self.remove + other.remove)

    def carry_out(self, conn: Connector) -> None:
        known = KNOWN.get()
        found = known.pop(self.path, None) if known is not None else None
        for _attempt in range(_ATTEMPTS):
            if found is None:
                found = conn.read_many([self.path])[self.path]
            if not found.exists or found.data is None:
                raise StepError(f"{self.path} does not exist on {conn.name} as a regular file: "
                                "the host map is not installed (docs/linux-host.md)")
            names = parse(found.data, self.path)
            wanted = (names | {_name(n) for n in self.add}) - {_name(n) for n in self.remove}
            if wanted == names:
                return
            data = render(wanted)
            result = conn.run(["sh", "-c", _INSTALL, "sh", self.path, format(found.mode, "o"),
                               f"{found.uid}:{found.gid}", str(len(data)),
                               hashlib.sha256(data).hexdigest(),
                               hashlib.sha256(found.data).hexdigest()], stdin=data,
                              ok_codes=(0, _MISMATCH, _CHANGED))
            if result.rc == _MISMATCH:
                raise TransferError(f"{conn.name}:{self.path}: {result.err.strip()}; nothing "
                                    "was installed")
            if result.rc == 0:
                return
            found = None  # written by someone else meanwhile: start from what is there now
        raise StepError(f"{conn.name}:{self.path} kept changing while the agent edited it "
                        f"({_ATTEMPTS} attempts); nothing was installed")


def _name(name: str) -> str:
    """Return a host name as the map holds it (the whole-server line as it is)."""
    return name if name == WHOLE_SERVER else ids.domain(name)


def parse(data: bytes, path: str) -> set[str]:
    """Return the names of a map file's `name yes` lines; refuse anything else in it."""
    names = set()
    for number, line in enumerate(data.decode("ascii", "replace").splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2 or words[1] != "yes":
            raise StepError(f"{path}:{number}: not a `name yes` line; the host map is the "
                            "agent's own file, leave it to the agent")
        names.add(words[0])
    return names


def render(names: set[str]) -> bytes:
    """Return the map file holding `names` (sorted; `__all__` first when present)."""
    ordered = sorted(names, key=lambda n: (n != WHOLE_SERVER, n))
    return (_HEAD + "\n" + "".join(f"{n} yes\n" for n in ordered)).encode("ascii")
