"""Writing a file cPanel guards with its own lock (Cpanel::SafeFile), under that lock
(review F17).

[SRC] asmrdevelop/cpanel @393631a2 Cpanel/SafeFile.pm: cPanel's code (ftpupdate, its FTP
functions, Cpanel/FtpUtils/Passwd.pm `lock_storage_ex`) edits `/etc/proftpd/USER` holding
the dot-lock `USER.lock` (_calculate_lockfile, 709-710): a file holding the holder's pid,
its name and the path, written beside it and then `link()`ed into place, so only one process
gets it (_write_temp_lock_file, _try_to_install_lockfile, 385-462), plus flock() on the file
itself. A process that finds the lock waits (between 60 and 350 s) before it takes it over.

The agent's install takes the same two locks around the moment it replaces the file: its
shell links its own lock file into place (its pid is alive while it holds it), flock()s the
file, checks that the file is still exactly what the agent read, renames the new content
over it, and lets both locks go. The read before needs no lock: if anything changed the
file since, the check fails and the edit starts again from what is there. The agent never
takes over a lock someone else holds: after `wait` seconds it gives up, changing nothing.
"""

from __future__ import annotations

import hashlib

from agent.connector import Connector
from agent.errors import StepError, TransferError

# $1 path, $2 mode, $3 owner, $4 size, $5 SHA-256 of the new content, $6 SHA-256 of the
# content it was computed from, $7 tenths of a second to wait for the lock. Run under
# `flock -w` on the file itself. The lock goes on every exit (the EXIT trap), only ours.
SCRIPT = (
    't=; k=; l=; trap \'rm -f -- ${t:+"$t"} ${k:+"$k"} ${l:+"$l"}\' EXIT; '
    'trap "exit 91" HUP INT TERM PIPE; '
    'set -e; d=$(dirname -- "$1"); t=$(mktemp -- "$d/.sa-tmp.XXXXXXXX"); '
    'cat > "$t"; n=$(wc -c < "$t"); h=$(sha256sum < "$t"); '
    'if [ "$((n))" != "$4" ] || [ "${h%% *}" != "$5" ]; then exit 90; fi; '
    'chown "$3" "$t"; chmod "$2" "$t"; k=$(mktemp -- "$1.lock-sa.XXXXXXXX"); '
    'printf "%s\\nsuspension-agent\\n%s\\n" "$$" "$1" > "$k"; i=0; '
    'until ln -- "$k" "$1.lock" 2>/dev/null; do i=$((i+1)); '
    '[ "$i" -le "$7" ] || { head -n 2 -- "$1.lock" >&2 || :; exit 94; }; sleep 0.1; done; '
    'l="$1.lock"; cur=$(sha256sum < "$1") || exit 93; [ "${cur%% *}" = "$6" ] || exit 93; '
    'mv -f -T -- "$t" "$1"; t='
)
MISMATCH, CHANGED, HELD = 90, 93, 94


def install(conn: Connector, path: str, new: bytes, base: bytes, mode: int, owner: str,
            wait: float) -> bool:
    """Replace `path` by `new` under cPanel's locks if it still holds `base`; return False
    when it no longer does (the caller reads it again). A lock held longer than `wait`
    seconds is a StepError naming its holder, and nothing is changed."""
    tenths = max(1, int(wait * 10))
    result = conn.run(["flock", "-w", str(max(1, int(wait))), "-E", str(HELD), path,
                       "sh", "-c", SCRIPT, "sh", path, format(mode, "o"), owner, str(len(new)),
                       hashlib.sha256(new).hexdigest(), hashlib.sha256(base).hexdigest(),
                       str(tenths)], stdin=new, ok_codes=(0, MISMATCH, CHANGED, HELD))
    if result.rc == MISMATCH:
        raise TransferError(f"{conn.name}:{path}: the new file did not arrive complete; "
                            "nothing was installed")
    if result.rc == HELD:
        holder = " ".join(result.err.split())[:120] or "flock on the file"
        raise StepError(f"{path} is locked by another process ({holder}) for more than "
                        f"{wait:g} s; nothing was changed")
    return result.rc == 0
