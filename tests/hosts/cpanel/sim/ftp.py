"""FTP accounts as cPanel keeps them, checked for real by Pure-FTPd through pure-authd.

/etc/proftpd/USER          `login:hash:uid:gid:owner:homedir:shell`, the account's main login
                           and its sub-accounts (`name@domain`); suspendacct copies it to
                           USER.suspended and overwrites it with `# Account suspended`
                           (panels.md A7 step 12), unsuspendacct moves it back (A8).
Pure-FTPd runs with `--login extauth:/run/ftpd.sock`; pure-authd runs `bin/pureauth` for
each login, which reads these files (authenticate() below), so a suspended file refuses
every FTP login of the account at once.
"""

from __future__ import annotations

import os
import warnings

from . import store

PROFTPD = "/etc/proftpd"
SUSPENDED_TEXT = "# Account suspended\n"


def _entries(path: str) -> list[list[str]]:
    return [line.split(":") for line in store.read(path).splitlines()
            if line and not line.startswith("#") and line.count(":") >= 6]


def accounts(user: str) -> list[dict]:
    """Return the FTP logins in /etc/proftpd/USER (empty while suspended)."""
    out = []
    for fields in _entries(f"{PROFTPD}/{user}"):
        login = fields[0]
        out.append({"login": login, "hash": fields[1], "uid": int(fields[2]),
                    "gid": int(fields[3]), "owner": fields[4], "homedir": fields[5],
                    "type": "main" if login == user else "sub"})
    return out


def suspend(user: str) -> bool:
    """suspendacct step 12: keep the file as USER.suspended and replace it with the
    suspended marker; return False when there was nothing to suspend."""
    path = f"{PROFTPD}/{user}"
    text = store.read(path)
    if not text or text == SUSPENDED_TEXT:
        return False
    store.write_atomic(f"{path}.suspended", text, mode=0o640)
    store.write_atomic(path, SUSPENDED_TEXT, mode=0o640)
    return True


def unsuspend(user: str) -> bool:
    """unsuspendacct (A8): USER.suspended back to USER; return False when none was kept."""
    path = f"{PROFTPD}/{user}"
    if not os.path.exists(f"{path}.suspended"):
        return False
    os.replace(f"{path}.suspended", path)
    return True


def list_ftp(user: str) -> list[dict]:
    """Ftp::list_ftp (A6): {user, type, homedir, reldir, serverlogin} per login."""
    from .mail import home

    base = home(user)
    return [{"user": a["login"], "serverlogin": a["login"], "type": a["type"],
             "homedir": a["homedir"],
             "reldir": a["homedir"][len(base):].lstrip("/") if a["homedir"].startswith(base)
             else a["homedir"]} for a in accounts(user)]


def authenticate(login: str, password: str) -> dict | None:
    """Return uid, gid and dir for a correct FTP login, or None: what pure-authd needs.

    The account is found by the domain of `name@domain`, else the login is an account name.
    """
    if not login or "/" in login or login.startswith("."):
        return None
    if "@" in login:
        user = store.user_of_domain(login.split("@", 1)[1])
    else:
        user = login
    if not user or not store.USERNAME_RE.match(user):
        return None
    for entry in accounts(user):
        if entry["login"] == login and _check(password, entry["hash"]):
            return {"uid": entry["uid"], "gid": entry["gid"], "dir": entry["homedir"]}
    return None


def _check(password: str, hashed: str) -> bool:
    if not hashed or hashed[0] in "!*":
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # the image's python3.11 still has it; passlib is not there
    return crypt.crypt(password, hashed) == hashed
