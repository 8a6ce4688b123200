"""`check`: read-only look at each server: reachable, binaries and hooks of every step."""

from __future__ import annotations

from typing import Any

from agent import drivers
from agent.errors import AgentError, Unreachable


def check_servers(engine: Any, only: str | None) -> list[dict[str, Any]]:
    """Return one report per server; never changes anything on a server."""
    names = [engine.server(only).name] if only else sorted(engine.config.servers)
    reports = []
    for name in names:
        server = engine.config.servers[name]
        lines = [f"panel {server.panel}, transport {server.transport}, steps available: "
                 + (", ".join(drivers.step_names(server.panel)) or "none")]
        ok, unreachable = True, False
        try:
            conn = engine._conn(server)
            conn.run(["true"])
            lines.append("reachable")
            ok = drivers.check(server, conn, lines) and ok
            lines.append(_whole_server(engine, server, conn))
        except Unreachable as exc:
            ok, unreachable = False, True
            lines.append(f"unreachable: {exc}")
        except AgentError as exc:
            ok = False
            lines.append(f"error: {exc}")
        reports.append({"server": name, "ok": ok, "unreachable": unreachable, "lines": lines})
    return reports


def _whole_server(engine: Any, server: Any, conn: Any) -> str:
    """Return the line saying which logins `suspend --whole-server` would lock first, and
    how many accounts it would take (the tree as the driver finds it now)."""
    protected = set(engine.config.protected_accounts) | set(server.protected_accounts)
    try:
        tree = drivers.server_tree(server, conn, engine.config.min_uid, protected)
    except Unreachable:
        raise
    except AgentError as exc:
        return f"whole server: cannot build the tree: {exc}"
    logins = ", ".join(tree.logins) or "none"
    return (f"whole server: would lock the logins {logins} first, then "
            f"{len(tree.accounts)} account(s); never root nor the agent's own login "
            f"{server.user!r}")
