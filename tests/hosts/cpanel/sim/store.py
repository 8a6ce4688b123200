"""Files of a cPanel server as the simulator keeps them: cpuser files, owners, domains, locks.

Paths are real cPanel paths (panels.md A5, A7, A8); every write is atomic (temp + rename)
so a reader such as Exim or Dovecot never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator

USERS_DIR = "/var/cpanel/users"
USERDATA_DIR = "/var/cpanel/userdata"
SUSPENDED_DIR = "/var/cpanel/suspended"
SUSPENDINFO_DIR = "/var/cpanel/suspendinfo"
BWLIMITED_DIR = "/var/cpanel/bwlimited"
RESELLERS = "/var/cpanel/resellers"
USERDOMAINS = "/etc/userdomains"
TRUEUSEROWNERS = "/etc/trueuserowners"
OUTGOING_SUSPENDED = "/etc/outgoing_mail_suspended_users"
OUTGOING_HOLD = "/etc/outgoing_mail_hold_users"
SIM_DIR = "/var/cpanel/sim"
LOCK_FILE = "/var/cpanel/sim/.lock"
# Not cPanel's: one line per /scripts/NAME run (its name), so a test can count the rebuilds
# and restarts a call cost (tests/hosts/cpanel/calls.py: script_runs).
SCRIPT_LOG = "/var/cpanel/sim/scripts.log"
# Reserved names refused by the scripts (panels.md A13, subset).
RESERVED = {"root", "nobody", "all", "mailman", "postgres", "virtfs", "cpanel", "admin"}
USERNAME_RE = re.compile(r"^[a-z0-9][-._a-z0-9]{0,15}$")


def write_atomic(path: str, text: str, mode: int = 0o644, owner: tuple[int, int] | None = None,
                 ) -> None:
    """Ensure `path` holds exactly `text`, replaced in one rename, with `mode` and `owner`
    (default: the old file's owner, else root)."""
    if owner is None:
        try:
            st = os.stat(path)
            owner = (st.st_uid, st.st_gid)
        except FileNotFoundError:
            owner = (0, 0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.cpsim-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chown(tmp, *owner)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def log_script(name: str) -> None:
    """Append `name` to SCRIPT_LOG (one short write: lines of concurrent runs stay whole)."""
    os.makedirs(SIM_DIR, exist_ok=True)
    with open(SCRIPT_LOG, "a") as log:
        log.write(name + "\n")


def read(path: str, default: str = "") -> str:
    """Return the text of `path`, or `default` when it does not exist."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return default


_held = threading.local()


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Hold the simulator's one write lock (API calls, the daemon's threads and scripts may
    run side by side). Re-entrant within a thread: a nested `locked()` (a WHM function
    calling one that locks too) goes through instead of waiting on itself."""
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    os.makedirs(SIM_DIR, exist_ok=True)
    with open(LOCK_FILE, "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- cpuser files: key=value lines (panels.md A7 step 9, A8) ---------------------------------
def cpuser(user: str) -> dict[str, str] | None:
    """Return the cpuser file of `user` as an ordered dict, or None when it has none."""
    if not USERNAME_RE.match(user):
        return None
    text = read(f"{USERS_DIR}/{user}", default="\0")
    if text == "\0":
        return None
    data: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            data[key] = value
    return data


def save_cpuser(user: str, data: dict[str, str]) -> None:
    """Ensure the cpuser file of `user` holds exactly `data` (order kept)."""
    write_atomic(f"{USERS_DIR}/{user}", "".join(f"{k}={v}\n" for k, v in data.items()),
                 mode=0o644)


def update_cpuser(user: str, set_keys: dict[str, str] | None = None,
                  drop: tuple[str, ...] = ()) -> None:
    """Ensure the cpuser file has `set_keys` and none of `drop` (other lines untouched)."""
    data = cpuser(user) or {}
    for key in drop:
        data.pop(key, None)
    data.update(set_keys or {})
    save_cpuser(user, data)


def accounts() -> list[str]:
    """Return every cPanel account (a file in /var/cpanel/users), sorted."""
    try:
        names = os.listdir(USERS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if USERNAME_RE.match(n) and not n.endswith(".lock"))


def domains_of(user: str) -> list[str]:
    """Return every domain of `user` from /etc/userdomains (main domain first)."""
    data = cpuser(user) or {}
    main = data.get("DNS", "")
    found = [d for d, owner in _pairs(USERDOMAINS) if owner == user]
    return ([main] if main in found else []) + sorted(d for d in found if d != main)


def owner_of(user: str) -> str:
    """Return the reseller (or root) owning `user`, from /etc/trueuserowners."""
    for name, owner in _pairs(TRUEUSEROWNERS):
        if name == user:
            return owner
    return (cpuser(user) or {}).get("OWNER", "root")


def user_of_domain(domain: str) -> str | None:
    """Return the account owning `domain`, or None."""
    for name, owner in _pairs(USERDOMAINS):
        if name == domain.lower():
            return owner
    return None


def _pairs(path: str) -> list[tuple[str, str]]:
    out = []
    for line in read(path).splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            out.append((key.strip(), value.strip()))
    return out


def resellers() -> dict[str, str]:
    """Return reseller -> ACL text from /var/cpanel/resellers (`name:acl,acl` lines)."""
    return dict(_pairs(RESELLERS))


# -- list files of names (outgoing mail lists, panels.md A4/A6) ------------------------------
def list_file(path: str) -> list[str]:
    """Return the names listed one per line in `path`."""
    return [line.split(":")[0].strip() for line in read(path).splitlines() if line.strip()]


def list_add(path: str, name: str) -> None:
    """Ensure `name` is listed in `path`."""
    names = list_file(path)
    if name not in names:
        write_atomic(path, "".join(f"{n}\n" for n in [*names, name]))


def list_remove(path: str, name: str) -> None:
    """Ensure `name` is not listed in `path`."""
    names = list_file(path)
    if name in names or not os.path.exists(path):
        write_atomic(path, "".join(f"{n}\n" for n in names if n != name))


# -- system accounts ------------------------------------------------------------------------
def system_hash(user: str) -> str | None:
    """Return the password field of `user` in /etc/shadow, or None."""
    for line in read("/etc/shadow").splitlines():
        fields = line.split(":")
        if fields[0] == user and len(fields) > 1:
            return fields[1]
    return None


def set_system_hash(user: str, new_hash: str) -> None:
    """Ensure /etc/shadow gives `user` the password field `new_hash`, other lines as they are."""
    lines = []
    for line in read("/etc/shadow").splitlines():
        fields = line.split(":")
        if fields[0] == user:
            fields[1] = new_hash
        lines.append(":".join(fields))
    write_atomic("/etc/shadow", "\n".join(lines) + "\n", mode=0o640,
                 owner=(0, _gid("shadow")))


def passwd_entry(user: str) -> list[str] | None:
    """Return the /etc/passwd fields of `user`, or None."""
    for line in read("/etc/passwd").splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields
    return None


def _gid(group: str) -> int:
    for line in read("/etc/group").splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return int(fields[2])
    return 0


def is_suspended_hash(value: str | None) -> bool:
    """True when a system hash marks a suspended account (panels.md A5 [SRC]: starts with
    `!` or contains `*LOCKED*`)."""
    return bool(value) and (value.startswith("!") or "*LOCKED*" in value)


def run(argv: list[str], stdin: str | None = None) -> tuple[int, str]:
    """Run `argv` (never a shell) and return (exit code, stdout+stderr)."""
    code, out, err = capture(argv, stdin)
    return code, out + err


def spawn(argv: list[str]) -> None:
    """Start `argv` detached (own session, no pipes) and reap it when it ends, so a
    long-running caller (the WHM daemon) keeps no zombies."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    threading.Thread(target=proc.wait, daemon=True).start()


def capture(argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    """Run `argv` (never a shell) and return (exit code, stdout, stderr) apart."""
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


# -- fault injection (tests write /var/cpanel/sim/faults.json) --------------------------------
FAULTS = "/var/cpanel/sim/faults.json"


def fault(name: str) -> dict | None:
    """Return the fault a test set for `name` (a WHM function, `Module::function` or a script
    name), consuming one of its `times` if it has a count; None: behave faithfully.

    Format: {"NAME": {"mode": "noop"|"hang"|"fail", "seconds": N, "exit": N,
    "message": TEXT, "times": N}}; an absent or unreadable file means no faults.
    """
    with locked():
        try:
            faults = json.loads(read(FAULTS, "{}") or "{}")
        except ValueError:
            return None
        entry = faults.get(name)
        if not isinstance(entry, dict):
            return None
        if "times" in entry:
            entry["times"] = int(entry["times"]) - 1
            if entry["times"] <= 0:
                del faults[name]
            write_atomic(FAULTS, json.dumps(faults))
    if entry.get("mode") == "hang":
        time.sleep(float(entry.get("seconds", 30)))
    return entry
