"""MySQL (MariaDB) of a cPanel account: its users and databases carry its prefix, up to 16
characters of its name without `_` and `.` and `_` (review F2; panels.md A13's "8" is the
documentation's, older servers' rule), plus one MariaDB user named as that dbowner form.

suspendmysqlusers (review F16; [SRC] asmrdevelop/cpanel @393631a2 scripts/suspendmysqlusers
:74-117, scripts/unsuspendmysqlusers:84-172, Cpanel/MysqlUtils/Support.pm:86-93): on MySQL
5.7.6 and later (below 10.0) every user of the account gets `ACCOUNT LOCK` and
unsuspendmysqlusers `ACCOUNT UNLOCK`, also one locked before the suspension. On MariaDB (the
test hosts' server) it locks no account: each user's stored hash `*HEX` becomes `-` and HEX
reversed (a blank password is taken as 41 `*`), so the password no longer matches, and
unsuspend turns every 41-character `-...` back (a `-` and 40 `*` back to blank); an
`ACCOUNT LOCK` is left as it is both ways. The simulator takes MariaDB's way unless
/var/cpanel/sim/mysql-flavour says `mysql` (a MySQL 8 server's layout). Open sessions of
the users are killed on suspension, in both.
"""

from __future__ import annotations

import re

from . import store

_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_HOST = re.compile(r"^[a-z0-9_.%:-]{1,255}$")


PREFIX_LENGTH = 16  # MariaDB ([SRC] asmrdevelop/cpanel @393631a2 Cpanel/Database/MariaDB.pm:25)
CPANEL_CONFIG = "/var/cpanel/cpanel.config"
DB_MAPS = "/var/cpanel/databases"


def dbowner(user: str) -> str:
    """username_to_dbowner: the name without `_` and `.` (Cpanel/DB/Utils.pm:19)."""
    return user.replace("_", "").replace(".", "")


def use_prefix() -> bool:
    """Tweak Setting `database_prefix` (default 1; Cpanel/Config/CpConfGuard/Default.pm:83,
    Whostmgr/TweakSettings/Main.pm:2535-2551), read from cpanel.config."""
    for line in store.read(CPANEL_CONFIG).splitlines():
        if line.startswith("database_prefix="):
            return line.split("=", 1)[1].strip() != "0"
    return True


def prefix(user: str) -> str:
    """Return the database-name prefix of `user`: up to 16 characters of its dbowner form
    and `_` (review F2: Cpanel/DB/Prefix.pm username_to_prefix and get_prefix_length; the
    documentation's 8 characters hold only for MySQL 5.5/5.6 or force_short_prefix)."""
    return dbowner(user)[:PREFIX_LENGTH] + "_"


def get_restrictions(user: str) -> dict:
    """UAPI Mysql::get_restrictions (Cpanel/API/Mysql.pm:82-99): the prefix, null when
    prefixing is off; MariaDB's name lengths (Cpanel/Validate/DB/Name.pm:15, 47 for users)."""
    return {"prefix": prefix(user) if use_prefix() else None,
            "max_database_name_length": 64, "max_username_length": 47}


def _map(user: str) -> dict | None:
    # /var/cpanel/databases/USER.json, the account's DB map (Cpanel/DB/Map.pm:536-551):
    # {"MYSQL": {"dbs": {DB: server}, "dbusers": {NAME: {"dbs": {...}}}}}; when a test
    # wrote one, it decides (as on cPanel, always); else the names' prefix does.
    import json

    text = store.read(f"{DB_MAPS}/{user}.json")
    return json.loads(text).get("MYSQL") if text else None


def _query(sql: str) -> list[list[str]]:
    code, out, err = store.capture(["mysql", "--batch", "--skip-column-names"], stdin=sql)
    if code != 0:
        raise RuntimeError(f"mysql failed: {err.strip()}")
    return [line.split("\t") for line in out.splitlines() if line]


def _like(user: str) -> str:
    # Only names matching _NAME get here, so quoting them in a literal is safe.
    return prefix(user).replace("_", "\\\\_") + "%"


def users(user: str) -> list[tuple[str, str]]:
    """Return (name, host) of every MariaDB user of the account: its map's users (or those
    with its prefix) and its own login (dbowner)."""
    if not _NAME.match(dbowner(user)):
        return []
    found = _map(user)
    if found is not None:
        names = [n for n in (found.get("dbusers") or {}) if _NAME.match(n)]
        listed = " OR ".join(f"User = '{n}'" for n in names)
        where = f"User = '{dbowner(user)}'" + (f" OR {listed}" if listed else "")
    else:
        where = f"User = '{dbowner(user)}' OR User LIKE '{_like(user)}'"
    rows = _query(f"SELECT User, Host FROM mysql.user WHERE {where} ORDER BY User, Host;\n")
    return [(r[0], r[1]) for r in rows if _NAME.match(r[0]) and _HOST.match(r[1])]


def databases(user: str) -> list[str]:
    """Return the account's databases: its map's, or those with its prefix."""
    found = _map(user)
    if found is not None:
        return sorted(d for d in (found.get("dbs") or {}) if _NAME.match(d))
    if not _NAME.match(dbowner(user)):
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


FLAVOUR = "/var/cpanel/sim/mysql-flavour"


def account_locking() -> bool:
    """True when (un)suspendmysqlusers uses ACCOUNT LOCK (MySQL), False on MariaDB."""
    return store.read(FLAVOUR).strip() == "mysql"


def _mangled(hashed: str, locked: bool) -> str:
    """The stored hash after suspendmysqlusers (`locked`) or unsuspendmysqlusers."""
    if locked:
        hashed = hashed or "*" * 41
        if hashed.startswith("*"):
            return "-" + hashed[1:][::-1]
        if re.fullmatch(r"[0-9a-f]{16}", hashed):
            return "!" * 25 + hashed[::-1]
        return hashed
    if len(hashed) == 41 and hashed.startswith("-"):
        rest = hashed[1:]
        return "" if set(rest) == {"*"} else "*" + rest[::-1]
    if len(hashed) == 41 and hashed.startswith("+"):
        return "*" + hashed[1:]
    old = re.fullmatch(r"!+([0-9a-f]{16})", hashed)
    return old.group(1)[::-1] if old else hashed


def set_locked(user: str, locked: bool) -> list[str]:
    """suspendmysqlusers / unsuspendmysqlusers on every user of the account (see the module
    text; open sessions killed on suspension); return the names changed."""
    found = users(user)
    if not found:
        return []
    if account_locking():
        verb = "LOCK" if locked else "UNLOCK"
        _query("".join(f"ALTER USER '{n}'@'{h}' ACCOUNT {verb};\n" for n, h in found))
    else:
        _set_hashes(found, locked)
    if locked:
        names = ", ".join(f"'{n}'" for n, _h in found)
        ids = _query(f"SELECT ID FROM information_schema.PROCESSLIST WHERE USER IN ({names});\n")
        for row in ids:
            if row[0].isdigit():
                store.run(["mysql", "-e", f"KILL {row[0]}"])
    return sorted({n for n, _h in found})


def set_locked_one(name: str, locked: bool) -> bool:
    """(un)suspendmysqlusers in team mode (`OWNER_TEAMUSER 1`, scripts/suspendmysqlusers
    :38-60): only that MariaDB user, if it exists; return whether it exists."""
    if not _NAME.match(name):
        return False
    rows = _query(f"SELECT User, Host FROM mysql.user WHERE User = '{name}';\n")
    found = [(r[0], r[1]) for r in rows if _HOST.match(r[1])]
    if found and account_locking():
        verb = "LOCK" if locked else "UNLOCK"
        _query("".join(f"ALTER USER '{n}'@'{h}' ACCOUNT {verb};\n" for n, h in found))
    elif found:
        _set_hashes(found, locked)
    return bool(found)


def _set_hashes(found: list[tuple[str, str]], locked: bool) -> None:
    # MariaDB keeps the hash in mysql.global_priv's JSON; cPanel sets it through
    # Cpanel::Mysql::Passwd, here written straight into it (what it stores is the point).
    where = " OR ".join(f"(User = '{n}' AND Host = '{h}')" for n, h in found)
    rows = _query("SELECT User, Host, IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') "
                  f"FROM mysql.global_priv WHERE {where};\n")
    sql = ""
    for name, host, *rest in rows:
        hashed = rest[0] if rest else ""
        new = _mangled(hashed, locked)
        if new != hashed and re.fullmatch(r"[-*+!0-9A-Fa-f]*", new):
            sql += ("UPDATE mysql.global_priv SET Priv = JSON_SET(Priv, "
                    f"'$.authentication_string', '{new}') "
                    f"WHERE User = '{name}' AND Host = '{host}';\n")
    if sql:
        _query(sql + "FLUSH PRIVILEGES;\n")


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
    # get_dbusers leaves out cPanel's temporary phpMyAdmin users (Cpanel/DB/Map/Reader.pm
    # 214-219, TEMP_USER_PREFIX cpses_; review F13); suspendmysqlusers locks them too.
    for name in sorted({n for n, _h in users(user) if not n.startswith("cpses_")}
                       - {dbowner(user)}):
        short = (name[len(prefix(user)):] if use_prefix() and name.startswith(prefix(user))
                 else name)
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
