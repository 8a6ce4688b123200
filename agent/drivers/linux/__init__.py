"""Facts about accounts on a plain Debian/Ubuntu host: home, Apache vhosts, databases."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent import ids
from agent.config.servers import LinuxPaths
from agent.connector import Connector
from agent.errors import BadInput
from agent.steps import sql
from agent.steps.protocol import Memo, memo

# Prints every regular file of a folder as NUL, path, NUL, content: one round trip.
_DUMP_FILES = (
    'for f in "$1"/*; do [ -f "$f" ] || continue; printf "\\0%s\\0" "$f"; cat -- "$f"; done')
_SECTION = re.compile(r"^\s*<(/?)VirtualHost\b([^>]*)>", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^\s*(\w+)\s+(.*?)\s*$")


@dataclass(frozen=True)
class VHost:
    """One <VirtualHost> block of an account."""

    file: str
    port: int
    tls: bool
    names: tuple[str, ...]
    docroot: str | None
    # The block as written, <VirtualHost> lines included (for the host map's coverage check).
    text: str = ""


def hook_dir(paths: LinuxPaths, account: str) -> str:
    """Return the folder an account's vhosts include (`IncludeOptional <dir>/*.conf`)."""
    return f"{paths.apache_hook_dir}/{account}"


def passwd_entry(conn: Connector, paths: LinuxPaths, account: str) -> list[str]:
    """Return the seven passwd fields of the account; raise BadInput when it does not exist."""
    result = conn.run([paths.getent, "passwd", account], ok_codes=(0, 2))
    fields = result.text.strip().split(":")
    if result.rc == 2 or len(fields) < 7 or fields[0] != account:
        raise BadInput(f"account {account!r} does not exist on {conn.name}")
    return fields


def home(conn: Connector, paths: LinuxPaths, account: str) -> str:
    """Return the account's home folder; raise BadInput when the account does not exist."""
    fields = passwd_entry(conn, paths, account)
    if not fields[5].startswith("/"):
        raise BadInput(f"account {account!r} has no usable home folder on {conn.name}")
    return fields[5]


_LOGIN = '"$1" passwd -- "$2" || exit 2; "$1" shadow -- "$2" || exit 3'


def login_entry(conn: Connector, paths: LinuxPaths, account: str) -> tuple[list[str], str]:
    """Return the account's seven passwd fields and its shadow password field, in one
    round trip; raise BadInput when either entry is missing."""
    result = conn.run(["sh", "-c", _LOGIN, "sh", paths.getent, account], ok_codes=(0, 2, 3))
    lines = result.text.splitlines()
    fields = lines[0].split(":") if lines else []
    shadow = lines[1].split(":") if len(lines) > 1 else []
    if result.rc == 2 or len(fields) < 7 or fields[0] != account:
        raise BadInput(f"account {account!r} does not exist on {conn.name}")
    if result.rc == 3 or len(shadow) < 2 or shadow[0] != account:
        raise BadInput(f"account {account!r} has no shadow entry on {conn.name}")
    return fields, shadow[1]


def mysql_defaults(paths: LinuxPaths) -> list[str]:
    """Return the client option naming the credentials file (must come first), if any."""
    if not paths.mysql_defaults_file:
        return []
    return [f"--defaults-extra-file={paths.mysql_defaults_file}"]


def mysql_argv(paths: LinuxPaths) -> list[str]:
    """Return the mysql client argv; credentials come from a defaults file, never argv."""
    return sql.client_argv(paths.mysql, paths.mysql_defaults_file)


def parse_vhosts(files: dict[str, str], include_prefix: str) -> list[VHost]:
    """Return the VirtualHost blocks of `files` that include a path under `include_prefix`."""
    return hooked(parse_blocks(files), include_prefix)


def hooked(blocks: list[tuple[VHost, tuple[str, ...]]], include_prefix: str) -> list[VHost]:
    """Return the blocks (from parse_blocks) that include a path under `include_prefix`."""
    return [vh for vh, includes in blocks
            if any(v.startswith(include_prefix) for v in includes)]


def parse_blocks(files: dict[str, str]) -> list[tuple[VHost, tuple[str, ...]]]:
    """Return every VirtualHost block of `files` with the paths it Includes (parsed once
    for a whole batch of accounts: each account then picks its own)."""
    found: list[tuple[VHost, tuple[str, ...]]] = []
    for path, text in files.items():
        block: dict | None = None
        for line in text.splitlines():
            section = _SECTION.match(line)
            if section and not section.group(1):
                port = re.search(r":(\d+)", section.group(2))
                block = {"port": int(port.group(1)) if port else 80, "names": [], "tls": False,
                         "docroot": None, "includes": [], "lines": [line]}
                continue
            if block is not None:
                block["lines"].append(line)
            if section and block is not None:
                found.append((VHost(path, block["port"], block["tls"], tuple(block["names"]),
                                    block["docroot"], "\n".join(block["lines"]) + "\n"),
                              tuple(block["includes"])))
                block = None
                continue
            directive = _DIRECTIVE.match(line)
            if block is None or not directive:
                continue
            name, value = directive.group(1).lower(), directive.group(2).strip('"')
            if name in ("servername", "serveralias"):
                block["names"] += [v.lower() for v in value.split()]
            elif name == "documentroot":
                block["docroot"] = value
            elif name == "sslengine":
                block["tls"] = value.lower() == "on"
            elif name in ("include", "includeoptional"):
                block["includes"].append(value)
    return found


def vhosts(conn: Connector, paths: LinuxPaths, account: str,
           shared: Memo | None = None) -> list[VHost]:
    """Return the account's vhosts: the enabled ones that include the account's hook folder.

    With `shared` (a batch of accounts), the vhost files are read once for all of them.
    """
    return hooked(_blocks(conn, paths, shared), hook_dir(paths, account) + "/")


def _blocks(conn: Connector, paths: LinuxPaths, shared: Memo | None
            ) -> list[tuple[VHost, tuple[str, ...]]]:
    def read() -> dict[str, str]:
        raw = conn.run(["sh", "-c", _DUMP_FILES, "sh", paths.apache_sites_dir]).stdout
        return {path: data.decode("utf-8", "replace") for path, data in split_dump(raw).items()}

    return memo(shared, ("vhost blocks", paths.apache_sites_dir),
                lambda: parse_blocks(read()))


def unhooked(conn: Connector, paths: LinuxPaths, account: str, home: str,
             shared: Memo | None = None) -> list[VHost]:
    """Return the enabled vhosts that look like the account's but do not include its hook
    folder: a DocumentRoot at or under its home, the home anywhere in the block (an alias,
    a proxy socket), or the account named by SuexecUserGroup or AssignUserID. Empty: this
    host serves no website of the account (a mail-only customer, an admin login)."""
    prefix, inside = hook_dir(paths, account) + "/", home.rstrip("/") + "/"
    owner = re.compile(rf"^\s*(SuexecUserGroup|AssignUserID)\s+{re.escape(account)}\b",
                       re.I | re.M)
    found = []
    for vh, includes in _blocks(conn, paths, shared):
        if any(v.startswith(prefix) for v in includes):
            continue
        if ((vh.docroot or "") + "/").startswith(inside) or inside in vh.text \
                or owner.search(vh.text):
            found.append(vh)
    return found


def split_dump(raw: bytes) -> dict[str, bytes]:
    """Return path -> content from a dump of NUL, path, NUL, content records (root-owned
    configuration text: a NUL inside a file would end it there)."""
    parts = raw.split(b"\0")
    return {parts[i].decode("utf-8", "replace"): parts[i + 1]
            for i in range(1, len(parts) - 1, 2)}


def domains(hosts: list[VHost]) -> list[str]:
    """Return the distinct domain names of `hosts`, in order of appearance."""
    seen: dict[str, None] = {}
    for vh in hosts:
        for name in vh.names:
            seen.setdefault(name, None)
    return list(seen)


def databases(conn: Connector, paths: LinuxPaths, account: str) -> list[str]:
    """Return the account's MariaDB databases (names matching `db_pattern`)."""
    pattern = paths.db_pattern.format(account=account)
    if "'" in pattern or "\\'" in pattern:
        raise BadInput("db_pattern must not contain quotes")
    # The account name is validated (ids.account) before it gets here; the pattern is config.
    result = conn.run(mysql_argv(paths), stdin=f"SHOW DATABASES LIKE '{pattern}';\n".encode())
    # One name a line, in --batch's escaping (a name may hold spaces or '-').
    return [ids.database(sql.batch_value(line)) for line in result.text.split("\n") if line]


