"""MySQL (MariaDB) of a cPanel account: its users and databases carry the `USER8_` prefix
(panels.md A13), plus one MariaDB user named as the account itself.

suspendmysqlusers: panels.md A7 step 8 leaves cPanel's method open ("password changed/locked",
[3P]). The simulator uses `ALTER USER ... ACCOUNT LOCK` and kills the users' open sessions:
MariaDB refuses a locked user at login with its own error (4151), the lock is reversible
without keeping password hashes, and it is the method design.md names for db_lock. Like the
rest of unsuspendacct (A8), unsuspendmysqlusers unlocks EVERY user of the account, including
one that was locked before the suspension.
"""

from __future__ import annotations

import re

from . import store

_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_HOST = re.compile(r"^[a-z0-9_.%:-]{1,255}$")


def prefix(user: str) -> str:
    """Return the database-name prefix of `user`: its first 8 characters and `_` (A13)."""
    return user[:8] + "_"


def _query(sql: str) -> list[list[str]]:
    code, out, err = store.capture(["mysql", "--batch", "--skip-column-names"], stdin=sql)
    if code != 0:
        raise RuntimeError(f"mysql failed: {err.strip()}")
    return [line.split("\t") for line in out.splitlines() if line]


def _like(user: str) -> str:
    # Only names matching _NAME get here, so quoting them in a literal is safe.
    return prefix(user).replace("_", "\\\\_") + "%"


def users(user: str) -> list[tuple[str, str]]:
    """Return (name, host) of every MariaDB user of the account."""
    if not _NAME.match(user):
        return []
    rows = _query("SELECT User, Host FROM mysql.user WHERE User = "
                  f"'{user}' OR User LIKE '{_like(user)}' ORDER BY User, Host;\n")
    return [(r[0], r[1]) for r in rows if _NAME.match(r[0]) and _HOST.match(r[1])]


def databases(user: str) -> list[str]:
    """Return every database whose name starts with the account's prefix."""
    if not _NAME.match(user):
        return []
    rows = _query(f"SHOW DATABASES LIKE '{_like(user)}';\n")
    return sorted(r[0] for r in rows)


def grants(user: str) -> dict[str, set[str]]:
    """Return database -> users holding a grant on it, for the account's databases."""
    out: dict[str, set[str]] = {db: set() for db in databases(user)}
    for row in _query("SELECT Db, User FROM mysql.db;\n"):
        db = row[0].replace("\\_", "_")
        if db in out:
            out[db].add(row[1])
    return out


def set_locked(user: str, locked: bool) -> list[str]:
    """suspendmysqlusers / unsuspendmysqlusers: ACCOUNT LOCK (and kill open sessions) or
    ACCOUNT UNLOCK every user of the account; return the names changed."""
    found = users(user)
    if not found:
        return []
    verb = "LOCK" if locked else "UNLOCK"
    sql = "".join(f"ALTER USER '{n}'@'{h}' ACCOUNT {verb};\n" for n, h in found)
    _query(sql)
    if locked:
        names = ", ".join(f"'{n}'" for n, _h in found)
        ids = _query(f"SELECT ID FROM information_schema.PROCESSLIST WHERE USER IN ({names});\n")
        for row in ids:
            if row[0].isdigit():
                store.run(["mysql", "-e", f"KILL {row[0]}"])
    return sorted({n for n, _h in found})


def is_locked(name: str) -> bool:
    """True when MariaDB user `name` is locked (any host)."""
    if not _NAME.match(name):
        return False
    rows = _query("SELECT JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv "
                  f"WHERE User = '{name}';\n")
    return any(r[0] == "true" for r in rows)


def list_users(user: str) -> list[dict]:
    """Mysql::list_users (A6): {user, shortuser, databases[]} per user."""
    owned = grants(user)
    out = []
    for name in sorted({n for n, _h in users(user)}):
        short = name[len(prefix(user)):] if name.startswith(prefix(user)) else name
        out.append({"user": name, "shortuser": short,
                    "databases": sorted(db for db, who in owned.items() if name in who)})
    return out


def list_databases(user: str) -> list[dict]:
    """Mysql::list_databases (A6; field names [INF]): {database, users[], disk_usage}."""
    return [{"database": db, "users": sorted(who), "disk_usage": 0}
            for db, who in sorted(grants(user).items())]


def dump(db: str) -> str:
    """Return `mysqldump` of one database (pkgacct's mysql/DB.sql, A11)."""
    if not _NAME.match(db):
        raise ValueError(f"bad database name {db!r}")
    code, out, err = store.capture(["mysqldump", "--single-transaction", "--databases", db])
    if code != 0:
        raise RuntimeError(f"mysqldump {db} failed: {err[-500:]}")
    return out
