"""`check`: read-only look at each server: reachable, binaries present, vhosts hooked."""

from __future__ import annotations

from typing import Any

from agent import drivers
from agent.errors import AgentError


def check_servers(engine: Any, only: str | None) -> list[dict[str, Any]]:
    """Return one report per server; never changes anything on a server."""
    names = [engine.server(only).name] if only else sorted(engine.config.servers)
    reports = []
    for name in names:
        server = engine.config.servers[name]
        lines = [f"panel {server.panel}, transport {server.transport}, steps available: "
                 + (", ".join(sorted(drivers.AVAILABLE_STEPS.get(server.panel, ()))) or "none")]
        ok = True
        try:
            conn = engine._conn(server)
            conn.run(["true"])
            lines.append("reachable")
            if server.panel == "linux":
                p = server.linux
                binaries = [p.apachectl, p.mysql, p.mysqldump, p.tar, p.sha256sum, p.getent]
                stats = conn.stat_many(binaries + [p.apache_sites_dir])
                for path, st in stats.items():
                    if not st.exists:
                        ok = False
                        lines.append(f"missing: {path}")
                hooked = conn.run(["grep", "-RlF", "--", p.apache_hook_dir + "/",
                                   p.apache_sites_dir], ok_codes=(0, 1)).text.split()
                lines.append(f"vhost files with the suspension-agent hook: {len(hooked)}")
        except AgentError as exc:
            ok = False
            lines.append(f"error: {exc}")
        reports.append({"server": name, "ok": ok, "lines": lines})
    return reports
