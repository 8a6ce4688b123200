"""db_lock on cPanel: the account's database users are locked and their sessions ended.

cPanel's only native database lock is the one inside `suspendacct` (reference/panels.md A7
step 8, C1), which comes with the rest of the full suspension. What the agent does instead:
the users are the ones the panel itself lists (UAPI `Mysql::list_users`, each carrying the
account's prefix as `Mysql::get_restrictions` gives it: up to 16 characters of the name
without `_` and `.` on MariaDB, none when prefixing is off; review F2) plus the account's
own database login (its name without `_` and `.`, username_to_dbowner); each existing user@host
gets `ALTER USER ... ACCOUNT LOCK` (MariaDB >= 10.4.2, MySQL >= 5.7.6; older servers are
refused rather than having passwords changed) and its open connections are killed. Users
already locked are left alone and stay locked. The SQL travels on the client's stdin with
names as hex literals and backquoted identifiers (the helpers the linux driver uses).
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.facts import Panel, account_name, dbowner
from agent.errors import StepError, VerifyFailed
from agent.steps.actions import Run, carry_out
from agent.steps.protocol import Context, Plan
from agent.steps.sql import (
    MIN_VERSION,
    KillSessions,
    batch_value,
    client_argv,
    quotable,
    server_kind,
    sql_name,
    sql_string,
)


def mysql_argv(ctx: Context) -> list[str]:
    """Return the mysql client argv; credentials from root's own files, never argv."""
    return mysql_argv_for(ctx.server.cpanel)


def mysql_argv_for(s: Any) -> list[str]:
    """Return the mysql client argv of a server's cpanel settings."""
    return client_argv(s.mysql, s.mysql_defaults_file)


def _query(ctx: Context, sql: str) -> list[list[str]]:
    out = ctx.conn.run(mysql_argv(ctx), stdin=sql.encode()).text
    return [[batch_value(f) for f in line.split("\t")] for line in out.split("\n") if line]


def user_states(ctx: Context, names: list[str]) -> list[tuple[str, str, bool | None]]:
    """Return (user, host, locked) for every user@host of `names` on the database server;
    locked is None for a name no statement can carry (reported, never touched)."""
    version = _query(ctx, "SELECT VERSION();")
    kind, number = server_kind(version[0][0] if version else "")
    if number < MIN_VERSION[kind]:
        raise StepError(f"{ctx.server.name} runs {kind} {'.'.join(map(str, number))}, without "
                        "ACCOUNT LOCK; db_lock refuses rather than change passwords")
    if not names:
        return []
    listed = ", ".join(sql_string(n) for n in names)
    if kind == "mariadb":
        sql = ("SELECT User, Host, IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') "  # noqa: S608
               f"FROM mysql.global_priv WHERE User IN ({listed}) ORDER BY 1, 2;")
    else:  # names are hex literals (sql_string), never quoted text
        sql = ("SELECT User, Host, account_locked FROM mysql.user "  # noqa: S608
               f"WHERE User IN ({listed}) ORDER BY 1, 2;")
    rows = []
    for user, host, locked in (r[:3] for r in _query(ctx, sql) if len(r) >= 3):
        ok = quotable(user) and quotable(host)
        rows.append((user, host, locked.lower() in ("true", "y", "1") if ok else None))
    return rows


def session_users(ctx: Context) -> list[str]:
    """Return the account's temporary phpMyAdmin users (`cpses_*`) from its database map:
    cPanel makes one inside a cPanel session, Mysql::list_users leaves them out, and its own
    suspendmysqlusers locks them (scripts/suspendmysqlusers:48-58; review F13). A map that
    is missing or not JSON gives none; its users are checked as any other name."""
    import json

    path = f"{ctx.server.cpanel.databases_dir}/{ctx.account}.json"
    found = ctx.conn.read_many([path])[path]
    if not found.exists or not found.data:
        return []
    try:
        mysql = json.loads(found.data).get("MYSQL") or {}
        users = mysql.get("dbusers") or {}
    except (ValueError, AttributeError):
        return []
    return sorted(n for n in users if isinstance(n, str) and n.startswith("cpses_"))


def alter(ctx: Context, user: str, host: str, how: str) -> Run:
    # One statement per call: a failure leaves a known prefix of the users changed.
    sql = f"ALTER USER {sql_name(user)}@{sql_name(host)} ACCOUNT {how};\n"
    return Run(mysql_argv(ctx), stdin=sql.encode())


class DbLock:
    """Locks the database users cPanel lists for the account and ends their sessions."""

    name = "db_lock"

    def plan(self, ctx: Context) -> Plan:
        user = account_name(ctx.account)
        names = Panel(ctx.server, ctx.conn).db_users(user) + [dbowner(user)]
        names += session_users(ctx)
        rows = user_states(ctx, names)
        lock = [(u, h) for u, h, locked in rows if locked is False]
        already = [f"{u}@{h}" for u, h, locked in rows if locked]
        odd = [f"{u!r}@{h!r}" for u, h, locked in rows if locked is None]
        actions: list = [alter(ctx, u, h, "LOCK") for u, h in lock]
        if lock:
            actions.append(KillSessions(tuple(mysql_argv(ctx)),
                                        tuple(sorted({u for u, _h in lock}))))
        return Plan(self.name, actions,
                    facts={"locked": [f"{u}@{h}" for u, h in lock], "already_locked": already,
                           "skipped_odd_names": odd, "panel_users": names},
                    undo={"users": [list(x) for x in lock], "already_locked": already})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        return Plan(self.name, [alter(ctx, u, h, "UNLOCK") for u, h in undo["users"]],
                    undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read each lock flag, and (suspended) the sessions still open."""
        names = sorted({u for u, _h in undo["users"]})
        state = {(u, h): locked for u, h, locked in user_states(ctx, names)}
        problems = [f"{u}@{h} is {'not ' if suspended else 'still '}locked"
                    for u, h in undo["users"] if state.get((u, h), False) != suspended]
        if suspended and names:
            listed = ", ".join(sql_string(n) for n in names)
            rows = _query(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "  # noqa: S608
                               f"WHERE USER IN ({listed}) AND COMMAND <> 'Killed';")
            if rows and rows[0][0] != "0":
                problems.append(f"{rows[0][0]} connection(s) of the account are still open")
        if problems:
            raise VerifyFailed("; ".join(problems[:8]))
