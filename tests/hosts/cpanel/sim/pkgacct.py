"""/scripts/pkgacct and WHM's start_background_pkgacct (panels.md A11).

pkgacct USER [DEST] writes DEST/cpmove-USER.tar.gz (default DEST /home) holding, under
cpmove-USER/: homedir/ (the whole home: sites, ~/mail Maildirs, ~/etc mailbox files),
mysql/DB.sql for every database, mysql.sql (the users' grants), cp/USER, userdata/,
proftpdpasswd, shadow, and suspended/ + suspendinfo/ when the account is suspended.

start_background_pkgacct returns a session id at once; the run logs JSON lines to
/var/cpanel/pkgacct_sessions/<id>/master.log and its state (RUNNING, COMPLETED, FAILED) is
what get_pkgacct_session_state answers (both documented with start_background_pkgacct:
https://api.docs.cpanel.net/openapi/whm/operation/start_background_pkgacct ,
.../get_pkgacct_session_state , .../fetch_pkgacct_master_log).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
import time

from . import db, ftp, mail, store

SESSIONS = "/var/cpanel/pkgacct_sessions"
SIM_BIN = "/usr/local/cpanel/sim/bin"


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def pkgacct(user: str, dest: str = "/home", log=print) -> tuple[int, str]:  # noqa: ANN001
    """Write DEST/cpmove-USER.tar.gz for `user`; return (exit code, archive path or error).

    The archive appears under its final name only when complete (written beside, renamed).
    """
    if store.cpuser(user) is None or user in store.RESERVED:
        return 1, f"pkgacct: {user} is not a cPanel account"
    if not os.path.isdir(dest):
        return 1, f"pkgacct: destination {dest} is not a directory"
    top = f"cpmove-{user}"
    final = f"{dest}/{top}.tar.gz"
    tmp = f"{final}.part-{os.getpid()}"
    log(f"pkgacct started.\npkgacct version 10 - user : {user} - tarball: 1")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            log("Copying homedir...")
            tar.add(mail.home(user), arcname=f"{top}/homedir")
            log("Storing mysql dbs...")
            grants = []
            for name, host in db.users(user):
                code, out, _err = store.capture(["mysql", "--batch", "--skip-column-names",
                                                 "-e", f"SHOW GRANTS FOR '{name}'@'{host}'"])
                grants.append(out if code == 0 else f"-- no grants for {name}\n")
            _add_text(tar, f"{top}/mysql.sql", "".join(grants))
            for database in db.databases(user):
                _add_text(tar, f"{top}/mysql/{database}.sql", db.dump(database))
            tar.add(f"{store.USERS_DIR}/{user}", arcname=f"{top}/cp/{user}")
            if os.path.isdir(f"{store.USERDATA_DIR}/{user}"):
                tar.add(f"{store.USERDATA_DIR}/{user}", arcname=f"{top}/userdata")
            _add_text(tar, f"{top}/proftpdpasswd",
                      store.read(f"{ftp.PROFTPD}/{user}.suspended")
                      or store.read(f"{ftp.PROFTPD}/{user}"))
            _add_text(tar, f"{top}/shadow", (store.system_hash(user) or "") + "\n")
            log("Copying Suspension Info (if needed)...")
            for folder in (store.SUSPENDED_DIR, store.SUSPENDINFO_DIR):
                for name in (user, f"{user}.lock"):
                    if os.path.exists(f"{folder}/{name}"):
                        tar.add(f"{folder}/{name}",
                                arcname=f"{top}/{os.path.basename(folder)}/{name}")
            _add_text(tar, f"{top}/version", "pkgacct version: 10\narchive version: 4\n")
        os.replace(tmp, final)
    except (OSError, RuntimeError, ValueError) as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        return 1, f"pkgacct failed: {exc}"
    log(f"pkgacct completed\nBackup written to {final}")
    return 0, final


def start_background(user: str, dest: str = "/home") -> str:
    """Start a pkgacct session in a detached process; return its session id at once."""
    sid = f"{user}{time.strftime('%Y%m%d%H%M%S')}{secrets.token_urlsafe(8)[:10]}"
    sid = "".join(c for c in sid if c.isalnum())
    folder = f"{SESSIONS}/{sid}"
    os.makedirs(folder, mode=0o700)
    store.write_atomic(f"{folder}/state", "RUNNING\n", mode=0o600)
    store.spawn([f"{SIM_BIN}/pkgacct-session", sid, user, dest])
    return sid


def run_session(sid: str, user: str, dest: str) -> int:
    """Body of the detached session: run pkgacct, logging JSON lines, then set the state."""
    folder = f"{SESSIONS}/{sid}"

    def log(text: str) -> None:
        for line in text.splitlines():
            record = {"contents": line + "\n", "partial": 0, "pid": os.getpid(), "indent": 0,
                      "timestamp": time.strftime("%Y-%m-%d %H:%M:%S %z"), "type": "out"}
            with open(f"{folder}/master.log", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    injected = store.fault("pkgacct")
    if injected and injected.get("mode") == "fail":
        code, text = 1, injected.get("message", "pkgacct failed (injected)")
    else:
        code, text = pkgacct(user, dest, log=log)
    if code != 0:
        log(text)
    store.write_atomic(f"{folder}/state", "COMPLETED\n" if code == 0 else "FAILED\n",
                       mode=0o600)
    return code


def session_state(sid: str) -> str | None:
    """Return RUNNING, COMPLETED or FAILED for a session id, None when unknown."""
    if not sid.isalnum():
        return None
    text = store.read(f"{SESSIONS}/{sid}/state").strip()
    return text or None


def session_log(sid: str) -> str | None:
    """Return the session's master log (JSON lines), None when unknown."""
    if not sid.isalnum() or not os.path.isdir(f"{SESSIONS}/{sid}"):
        return None
    return store.read(f"{SESSIONS}/{sid}/master.log")
