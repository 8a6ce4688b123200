"""SQL that every panel's db_lock shares: ACCOUNT LOCK support, names and strings that
hold any character under any sql_mode, reading the mysql client's --batch output, and
ending a user's open connections."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.connector import Connector
from agent.errors import StepError


def client_argv(mysql: str, defaults_file: str) -> list[str]:
    """Return the mysql client argv; credentials come from a defaults file (which must be
    the first option), never from argv."""
    extra = [f"--defaults-extra-file={defaults_file}"] if defaults_file else []
    return [mysql, *extra, "--batch", "--skip-column-names"]


# First versions with ACCOUNT LOCK (MariaDB 10.4.2 and MySQL 5.7.6 release notes).
MIN_VERSION = {"mariadb": (10, 4, 2), "mysql": (5, 7, 6)}


def server_kind(version: str) -> tuple[str, tuple[int, ...]]:
    """Return ("mariadb"|"mysql", version tuple) from `SELECT VERSION()`'s answer."""
    found = re.match(r"^(\d+)\.(\d+)\.(\d+)", version.strip())
    if not found:
        raise StepError(f"cannot read the database server version from {version!r}")
    kind = "mariadb" if "mariadb" in version.lower() else "mysql"
    return kind, tuple(int(x) for x in found.groups())


def sql_string(value: str) -> str:
    """Return `value` as an SQL string: a hex literal, the same under every sql_mode
    (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) whatever characters the name holds."""
    return f"_utf8mb4 X'{value.encode().hex()}'" if value else "''"


def sql_name(value: str) -> str:
    """Return a user or host name as a backquoted identifier (backquotes doubled)."""
    return "`" + value.replace("`", "``") + "`"


def quotable(value: str) -> bool:
    """Return True for a user or host name db_lock can name in a statement: MariaDB allows
    nearly anything (`alice_x y`), but a control character in a name is refused."""
    return bool(value) and len(value) <= 255 and value.isprintable()


@dataclass(frozen=True)
class KillSessions:
    """End every open connection of the named users (found when carried out)."""

    mysql: tuple[str, ...]
    names: tuple[str, ...]

    def describe(self) -> list[str]:
        return [f"kill  open connections of database users {', '.join(self.names)}"]

    def carry_out(self, conn: Connector) -> None:
        quoted = ", ".join(sql_string(n) for n in self.names)
        listed = conn.run(list(self.mysql), stdin=(
            "SELECT ID FROM information_schema.PROCESSLIST "
            f"WHERE USER IN ({quoted}) AND ID <> CONNECTION_ID();\n").encode()).text.split()
        ids = [i for i in listed if i.isdigit()]
        if ids:
            # --force: a connection that ended meanwhile must not stop the others' KILL.
            conn.run([*self.mysql, "--force"],
                     stdin="".join(f"KILL CONNECTION {i};\n" for i in ids).encode(),
                     ok_codes=(0, 1))


def batch_value(field: str) -> str:
    """Undo the mysql client's --batch escaping of one output field (\\t \\n \\0 \\\\)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 1 < len(field):
            out.append({"t": "\t", "n": "\n", "0": "\0", "\\": "\\"}.get(field[i + 1],
                                                                     field[i + 1]))
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
