"""db_lock: every database user of the account is locked and its open connections killed.

Mechanism (MariaDB >= 10.4.2, MySQL >= 5.7.6): `ALTER USER ... ACCOUNT LOCK`, one user per
client call so a failure leaves a known prefix done. The account's users are the account's
own name and the names matching `db_pattern` (cPanel's `<account>_x` convention). Users
already locked are left alone and stay locked after unsuspend. Statements travel on the
client's stdin and credentials in its defaults file, never in argv.
"""

from __future__ import annotations

from typing import Any

from agent.drivers import linux
from agent.errors import StepError, VerifyFailed
from agent.steps.actions import Run, carry_out
from agent.steps.protocol import Context, Plan
from agent.steps.sql import (
    MIN_VERSION,
    KillSessions,
    batch_value,
    quotable,
    server_kind,
    sql_name,
    sql_string,
)


def account_users(ctx: Context) -> tuple[str, list[tuple[str, str, bool]]]:
    """Return the server kind and the account's users as (user, host, locked); a user whose
    name cannot be written in a statement is returned as locked=None (reported, skipped)."""
    paths = ctx.server.linux
    version = _query(ctx, "SELECT VERSION();")
    kind, number = server_kind(version[0][0] if version else "")
    if number < MIN_VERSION[kind]:
        raise StepError(f"{ctx.server.name} runs {kind} {'.'.join(map(str, number))}, which has "
                        f"no ACCOUNT LOCK (needs {'.'.join(map(str, MIN_VERSION[kind]))} or "
                        "later); db_lock refuses rather than change passwords")
    pattern = paths.db_pattern.format(account=ctx.account)
    where = f"User LIKE {sql_string(pattern)} OR User = {sql_string(ctx.account)}"
    if kind == "mariadb":
        sql = ("SELECT User, Host, IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') "
               f"FROM mysql.global_priv WHERE {where} ORDER BY User, Host;")
    else:
        sql = f"SELECT User, Host, account_locked FROM mysql.user WHERE {where} ORDER BY 1, 2;"
    users = []
    for row in _query(ctx, sql):
        user, host, flag = row[0], row[1], row[2].lower()
        ok = quotable(user) and quotable(host)
        users.append((user, host, flag in ("true", "y", "1") if ok else None))
    return kind, users


class DbLock:
    """Locks the account's database users and ends their sessions."""

    name = "db_lock"

    def plan(self, ctx: Context) -> Plan:
        kind, users = account_users(ctx)
        to_lock = [(u, h) for u, h, locked in users if locked is False]
        already = [f"{u}@{h}" for u, h, locked in users if locked]
        odd = [f"{u!r}@{h!r}" for u, h, locked in users if locked is None]
        actions: list = [_alter(ctx, u, h, "LOCK") for u, h in to_lock]
        if to_lock:
            names = sorted({u for u, _h in to_lock})
            actions.append(KillSessions(tuple(linux.mysql_argv(ctx.server.linux)), tuple(names)))
        return Plan(self.name, actions,
                    facts={"server": kind, "locked": [f"{u}@{h}" for u, h in to_lock],
                           "already_locked": already, "skipped_odd_names": odd},
                    undo={"users": [list(x) for x in to_lock], "already_locked": already})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        return Plan(self.name, [_alter(ctx, u, h, "UNLOCK") for u, h in undo["users"]], undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the lock flags from the server, and look for sessions left open."""
        _kind, users = account_users(ctx)
        state = {(u, h): locked for u, h, locked in users}
        problems = [f"{u}@{h} is {'not ' if suspended else ''}locked"
                    for u, h in undo["users"] if state.get((u, h), False) != suspended]
        if suspended and undo["users"]:
            names = ", ".join(sql_string(u) for u in sorted({u for u, _h in undo["users"]}))
            rows = _query(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                               f"WHERE USER IN ({names}) AND COMMAND <> 'Killed';")
            if rows and rows[0][0] != "0":
                problems.append(f"{rows[0][0]} connection(s) of the account are still open")
        if problems:
            raise VerifyFailed("; ".join(problems))


def _alter(ctx: Context, user: str, host: str, how: str) -> Run:
    sql = f"ALTER USER {sql_name(user)}@{sql_name(host)} ACCOUNT {how};\n"
    return Run(linux.mysql_argv(ctx.server.linux), stdin=sql.encode())


def _query(ctx: Context, sql: str) -> list[list[str]]:
    result = ctx.conn.run(linux.mysql_argv(ctx.server.linux), stdin=sql.encode())
    return [[batch_value(f) for f in line.split("\t")]
            for line in result.text.split("\n") if line]
