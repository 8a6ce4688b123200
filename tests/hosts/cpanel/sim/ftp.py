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
        kind = {user: "main", f"{user}_logs": "logaccess"}.get(login, "sub")
        out.append({"login": login, "hash": fields[1], "uid": int(fields[2]),
                    "gid": int(fields[3]), "owner": fields[4], "homedir": fields[5],
                    "type": kind})
    return out


DOMLOGS = "/var/log/apache2/domlogs"


def ftpupdate() -> None:
    """bin/ftpupdate: rebuild every account's /etc/proftpd/USER as cPanel does (review F1).

    [SRC] asmrdevelop/cpanel @393631a2 bin/ftpupdate, processuser (lines 128-333): the file
    is read from USER.suspended when that exists (Cpanel/FtpUtils/Passwd.pm:382) and written
    only while the account is not suspended (lines 255-260), mode 0640. The main login's line
    is made again from the system passwd and shadow entries (lines 237-238:
    `USER:HASH:UID:GID:USER:HOME:SHELL`, the hash as is, a noshell shell as /bin/ftpsh, lines
    142-143); every line named ftp, anonymous, USER or USER_logs (with or without
    @maindomain) is dropped first, and lines that have not exactly 7 fields, an empty name or
    a `+` (lines 181-186). A sub-account without a domain gets @maindomain (196-200), its
    uid, gid and gecos those of the account (207); one of a domain the account does not own
    goes (it is kept for Pure-FTPd's own file only, 215-220). Its hash keeps a single `!`;
    a `!!` is stripped (293-323). Then the USER_logs line (246-248). Every rebuild gives the
    same file from the same input, so the cache that skips unchanged accounts (151-158)
    changes nothing here.
    """
    for user in store.accounts():
        _rebuild(user)


def _rebuild(user: str) -> None:
    path = f"{PROFTPD}/{user}"
    if os.path.exists(f"{store.SUSPENDED_DIR}/{user}"):
        return
    pw = store.passwd_entry(user)
    hashed = store.system_hash(user)
    main = (store.cpuser(user) or {}).get("DNS", "")
    if pw is None or hashed is None or not main:
        return
    uid, gid, home, shell = pw[2], pw[3], pw[5], pw[6]
    if shell.endswith("noshell"):
        shell = "/bin/ftpsh"
    source = f"{path}.suspended" if os.path.exists(f"{path}.suspended") else path
    dropped = {"ftp", "anonymous", user, f"{user}_logs"}
    owned = set(store.domains_of(user))
    lines = [f"{user}:{hashed}:{uid}:{gid}:{user}:{home}:{shell}"]
    for line in store.read(source).splitlines():
        fields = line.split(":")
        if len(fields) != 7 or not fields[0] or "+" in line:
            continue
        name, _at, domain = fields[0].partition("@")
        if name in dropped and domain in ("", main):
            continue
        domain = domain or main
        if domain not in owned:
            continue
        sub_hash = fields[1][2:] if fields[1].startswith("!!") else fields[1]
        lines.append(":".join([f"{name}@{domain}", sub_hash, uid, gid, user, fields[5],
                               fields[6]]))
    lines.append(f"{user}_logs:{hashed}:{uid}:{gid}:{user}:{DOMLOGS}/{user}:/bin/ftpsh")
    text = "".join(f"{line}\n" for line in lines)
    if store.read(path) != text:
        store.write_atomic(path, text, mode=0o640)


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
    elif login.endswith("_logs") and store.cpuser(login[:-5]) is not None:
        user = login[:-5]  # the account's log-access login, in its own file (ftpupdate)
    else:
        user = login
    if not user or not store.USERNAME_RE.match(user):
        return None
    for entry in accounts(user):
        if entry["login"] == login and crypt_matches(password, entry["hash"]):
            return {"uid": entry["uid"], "gid": entry["gid"], "dir": entry["homedir"]}
    return None


def crypt_matches(password: str, hashed: str) -> bool:
    """True when `password` matches crypt hash `hashed` (a `!` or `*` first never does)."""
    if not hashed or hashed[0] in "!*":
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # the image's python3.11 still has it; passlib is not there
    return crypt.crypt(password, hashed) == hashed
