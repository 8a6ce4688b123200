"""The many-file operations of the connector: their scripts, and the replies they give.

`read_many` and `write_many` (agent/connector/base.py) each move any number of files in one
command, and the number of processes they start on the server does not grow with the files
(read) or grows by two a file (write: one `head` to receive it, one `mv` to install it).
Like every helper script, these are constant strings run as `sh -c SCRIPT sh ARG...`: paths
travel as argv entries, never spliced into the script, and `eval` only ever sees references
built from numbers (`${P3}`), never an argument's text.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from agent.errors import TransferError


@dataclass(frozen=True)
class FileData:
    """A path's facts and, for a regular file, its whole content checked against the server's
    own size and SHA-256; `data` is None for anything but a regular file."""

    path: str
    kind: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    data: bytes | None = None

    @property
    def exists(self) -> bool:
        return self.kind != "absent"


# Read. The reply, in this order (every part before any byte a file holds, so no content can
# pass for the parts that describe it):
#   1. one line with one letter a path: f (a file `[ -f ]` accepts: it is read), e (exists,
#      is not read), a (absent), taken once so that every later tool sees the same paths;
#   2. `kind|mode|uid|gid` for each f and e path (`stat` without following a symlink);
#   3. the size of each f path (`stat -L`), then its `sha256sum` line (a name holding a
#      newline or backslash is escaped there, behind a leading backslash: one line a file);
#   4. the f paths' contents, concatenated (one `cat`), split by the sizes of part 3.
# The letters are taken in one pass; then each tool gets its paths through `xargs -0` from a
# pass over the arguments that keeps those whose letter is in its classes (the letters read
# off the front of a copy of the line, one a path). Growing an argument list with
# `set -- "$@" X` instead copies every argument each time: 554 paths took 1.2 s in dash, this
# takes 0.17 s (bench/reseller_cpanel.py's unsuspend reads that many). Four tools, each run
# once (xargs splits only past the system's argument limit). A tool that fails (a path
# vanished or changed kind in between) ends the script with READ_FAILED and the agent reads
# again. A path not starting with / is passed as ./PATH, so that none is taken for standard
# input (`-`).
READ_SCRIPT = (
    'k=; for p do if [ -f "$p" ]; then k=${k}f; elif [ -e "$p" ] || [ -L "$p" ]; then '
    'k=${k}e; else k=${k}a; fi; done; printf "%s\\n" "$k"; '
    'on() { keep=$1; shift; r=$k; for p do case $r in ["$keep"]*) case $p in /*) ;; '
    '*) p=./$p;; esac; printf "%s\\0" "$p";; esac; r=${r#?}; done; }; '
    'on ef "$@" | xargs -0r stat -c "%F|%a|%u|%g" -- && '
    'on f "$@" | xargs -0r stat -L -c %s -- && on f "$@" | xargs -0r sha256sum -- && '
    'on f "$@" | xargs -0r cat -- || exit 4'
)
READ_FAILED = 4


def read_command(paths: list[str]) -> list[str]:
    """Return the command that reads `paths` (what read_many sends; a batch may send it
    ahead among others: agent/connector/each.py)."""
    return ["sh", "-c", READ_SCRIPT, "sh", *paths]

# Write. Operands: a token naming this command's temporary files (random, new each time), the
# SHA-256 of all the files' bytes concatenated, then `path mode owner size` for each file;
# the bytes on stdin, concatenated in the same order.
#   1. Receive: file i goes into PATH's own folder as .sa-tmp.TOKEN.i, created by the shell
#      (noclobber: O_EXCL, so no existing file, nor a link planted to one, is written
#      through; umask 077: 0600) and filled by `head -c SIZE`, which asks the pipe for at
#      most the bytes still missing and so never takes the next file's (a 0-byte file reads
#      nothing; bytes after the last file are never read). A target that is a folder, or a
#      missing folder, stops here.
#   2. Check: every temporary file has its announced size (one `stat`) and together, in
#      order, they hash to the announced SHA-256 (one `cat | sha256sum`). Equal sizes and an
#      equal concatenation mean every file holds exactly its bytes. Else WRITE_MISMATCH.
#   3. Install, only now: one chown per distinct owner, then one chmod per distinct mode (a
#      chown clears set-user/group-ID bits), then the renames in order (`mv -T`: a target
#      folder is never entered), each printing its index on stdout, so that a rename that
#      fails (WRITE_STOPPED) tells how many are in place.
# The temporary files go on every exit (EXIT trap; HUP, PIPE from a lost link end the shell
# through it, as in the single-file write). `made` counts those created so far.
WRITE_SCRIPT = (
    'umask 077; set -C; tok=$1; sum=$2; shift 2; n=0; made=0; '
    'while [ "$#" -gt 0 ]; do eval "P$n=\\$1 M$n=\\$2 O$n=\\$3 Z$n=\\$4"; shift 4; '
    'n=$((n+1)); done; '
    # temps COUNT CMD...: run CMD on the first COUNT temporary files
    'temps() { c=$1; shift; k=0; while [ "$k" -lt "$c" ]; do '
    'eval "set -- \\"\\$@\\" \\"\\$T$k\\""; k=$((k+1)); done; "$@"; }; '
    # with VAR VALUE CMD: run `CMD -- VALUE` on the temporary files whose VAR is VALUE
    'with() { var=$1; val=$2; set -- "$3" -- "$2"; k=0; while [ "$k" -lt "$n" ]; do '
    'eval "[ \\"\\$$var$k\\" != \\"\\$val\\" ] || set -- \\"\\$@\\" \\"\\$T$k\\""; '
    'k=$((k+1)); done; "$@"; }; '
    # each VAR CMD: `with` once per distinct value of VAR
    'each() { seen=" "; j=0; while [ "$j" -lt "$n" ]; do eval "v=\\$$1$j"; '
    'case $seen in *" $v "*) ;; *) seen="$seen$v "; with "$1" "$v" "$2" || return 1;; esac; '
    'j=$((j+1)); done; }; '
    'trap \'temps "$made" rm -f --\' EXIT; trap "exit 91" HUP INT TERM PIPE; '
    'i=0; want=; while [ "$i" -lt "$n" ]; do eval "p=\\$P$i; z=\\$Z$i"; '
    'if [ -d "$p" ] && [ ! -L "$p" ]; then '
    'printf "%s is a folder; nothing was installed\\n" "$p" >&2; exit 1; fi; '
    'case $p in */*) t=${p%/*};; *) t=.;; esac; t=$t/.sa-tmp.$tok.$i; '
    'eval "T$i=\\$t"; made=$((i+1)); '
    'if [ "$z" -gt 0 ]; then head -c "$z" > "$t"; else : > "$t"; fi || exit 1; '
    'want="$want$z "; i=$((i+1)); done; '
    'if [ "$(temps "$n" stat --printf="%s " --)" != "$want" ] || '
    '[ "$(temps "$n" cat -- | sha256sum)" != "$sum  -" ]; then '
    'echo "received other bytes than announced (sizes or SHA-256)" >&2; exit 90; fi; '
    'each O chown && each M chmod || exit 1; '
    'i=0; while [ "$i" -lt "$n" ]; do eval "p=\\$P$i; t=\\$T$i"; '
    'mv -f -T -- "$t" "$p" || exit 92; echo "$i"; i=$((i+1)); done; trap - EXIT'
)
WRITE_MISMATCH = 90  # the single-file write script's status for it too
WRITE_STOPPED = 92

# An owner is `user:group` (ids or names), without blanks: the script keeps the distinct
# owners it has seen as one blank-separated list.
_OWNER = re.compile(r"[^\s:]+:[^\s:]+")
# `stat -c %F` of a regular file (GNU stat names an empty one apart), and of what `[ -f ]`
# accepts besides: a link to one.
_REGULAR = ("regular file", "regular empty file")
_READABLE = (*_REGULAR, "symbolic link")
_DIGEST = re.compile(rb"\\?([0-9a-f]{64}) [ *].*", re.DOTALL)


def write_operands(files: list[tuple[str, bytes, int, str]]) -> tuple[list[str], bytes]:
    """Return the write script's operands and its stdin for `files` (path, data, mode,
    owner); raise ValueError for a path, mode or owner the script cannot take."""
    stdin = b"".join(data for _path, data, _mode, _owner in files)
    operands = [secrets.token_hex(8), hashlib.sha256(stdin).hexdigest()]
    for path, data, mode, owner in files:
        if not path or path.endswith("/"):
            raise ValueError(f"not a file path: {path!r}")
        if not 0 <= mode <= 0o7777:
            raise ValueError(f"{path}: mode {mode:o} out of range")
        if not _OWNER.fullmatch(owner):
            raise ValueError(f"{path}: owner {owner!r} is not user:group")
        operands += [path, format(mode, "o"), owner, str(len(data))]
    return operands, stdin


def installed(stdout: bytes) -> int:
    """Return how many files the write script renamed into place (one index line each)."""
    return stdout.count(b"\n")


class _Reply:
    """The read script's output, consumed front to back; running short is a TransferError."""

    def __init__(self, out: bytes) -> None:
        self.out = out
        self.pos = 0

    def line(self, what: str) -> bytes:
        end = self.out.find(b"\n", self.pos)
        if end < 0:
            raise TransferError(f"the reply is cut short before {what}")
        line, self.pos = self.out[self.pos:end], end + 1
        return line

    def rest(self) -> bytes:
        return self.out[self.pos:]


def parse_reads(paths: list[str], out: bytes) -> dict[str, FileData]:
    """Return the verified FileData of every path from the read script's output.

    Raises TransferError unless the output is whole and every file's bytes match the size and
    SHA-256 the server took of it (the agent then reads again).
    """
    reply = _Reply(out)
    classes = reply.line("the kinds of the paths").decode("ascii", "replace")
    if len(classes) != len(paths) or not set(classes) <= set("fea"):
        raise TransferError(f"unreadable reply for {len(paths)} paths: {classes[:40]!r}")
    facts = [_facts(reply.line(f"the facts of {p}"), p, c)
             for p, c in zip(paths, classes, strict=True) if c != "a"]
    regular = [p for p, c in zip(paths, classes, strict=True) if c == "f"]
    sizes = [_size(reply.line(f"the size of {p}"), p) for p in regular]
    digests = [_digest(reply.line(f"the SHA-256 of {p}"), p) for p in regular]
    contents = iter(_split(reply.rest(), regular, sizes, digests))
    found: dict[str, FileData] = {}
    known = iter(facts)
    for path, c in zip(paths, classes, strict=True):
        if c == "a":
            found[path] = FileData(path, "absent")
            continue
        kind, mode, uid, gid = next(known)
        found[path] = FileData(path, kind, mode, uid, gid, next(contents) if c == "f" else None)
    return found


def _facts(line: bytes, path: str, c: str) -> tuple[str, int, int, int]:
    """Return (kind, mode, uid, gid) from a `stat` line; a path that changed kind since it
    was sorted (a file that became a folder, or the reverse) is a TransferError."""
    fields = line.decode("utf-8", "replace").split("|")
    if len(fields) != 4 or not all(f.isdigit() for f in fields[2:]):
        raise TransferError(f"unreadable facts of {path}: {fields!r}")
    kind, mode, uid, gid = fields
    # A file read (f) is a regular file or a link to one; a path not read (e) is no file.
    if (kind not in _READABLE) if c == "f" else kind in _REGULAR:
        raise TransferError(f"{path} changed kind while it was read ({kind})")
    try:
        return kind, int(mode, 8), int(uid), int(gid)
    except ValueError:
        raise TransferError(f"unreadable mode of {path}: {mode!r}") from None


def _size(line: bytes, path: str) -> int:
    if not line.isdigit():
        raise TransferError(f"unreadable size of {path}: {line[:40]!r}")
    return int(line)


def _digest(line: bytes, path: str) -> str:
    match = _DIGEST.fullmatch(line)
    if match is None:
        raise TransferError(f"unreadable SHA-256 of {path}: {line[:80]!r}")
    return match.group(1).decode()


def _split(data: bytes, paths: list[str], sizes: list[int], digests: list[str]) -> list[bytes]:
    """Cut the concatenated contents by `sizes`; ensure each piece matches its SHA-256."""
    if len(data) != sum(sizes):
        raise TransferError(f"got {len(data)} bytes of file contents where the server "
                            f"measured {sum(sizes)} (a file changed while it was read)")
    pieces, pos = [], 0
    for path, size, digest in zip(paths, sizes, digests, strict=True):
        piece, pos = data[pos:pos + size], pos + size
        if hashlib.sha256(piece).hexdigest() != digest:
            raise TransferError(f"{path}: got {size} bytes that do not match the server's "
                                "SHA-256 (it changed while it was read)")
        pieces.append(piece)
    return pieces
