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
        except Unreachable as exc:
            ok, unreachable = False, True
            lines.append(f"unreachable: {exc}")
        except AgentError as exc:
            ok = False
            lines.append(f"error: {exc}")
        reports.append({"server": name, "ok": ok, "unreachable": unreachable, "lines": lines})
    return reports
