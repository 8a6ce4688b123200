"""server_landing (whole-server cases, implied by `landing_page`): the server's bare
addresses behind the landing page too, through the host map's `__all__` line.

A request for the server's IP address, with a Host header no vhost names, or without any
Host (HTTP/1.0) goes to the default vhost of its address and port: the first one Apache
read for it (`apachectl -S` names it, "default server ... (file:line)"; reference/
lockouts.md 3.1). The host map's rules answer every request of the server with the page
while the map holds `__all__ yes` (agent/steps/hostmap.py), but only in a vhost that runs
them: so each default vhost must carry the map's vhost hook (through the agent's hook
include of its account) or a `RewriteEngine On` of its own, and nothing that defeats the
server rules (`hostmap.uncovered`). A default vhost that does not is refused before
anything changes, naming its file and line. ACME files of every domain still answer: the
map's ACME rule comes first.

One write of the map, no reload; the reversal takes out the line it added (an `__all__`
found there already was not the agent's and stays). Verified from outside on the server's
public address: HTTP and HTTPS with the address as Host, and HTTP/1.0 without Host.
"""

from __future__ import annotations

import http.client
import re
import socket
from typing import Any

from agent.drivers.linux import host_map
from agent.drivers.linux.landing_page import MAP_LOCK
from agent.errors import StepError, VerifyFailed
from agent.steps import hostmap, map_edit
from agent.steps.map_edit import MapEdit
from agent.steps.protocol import Context, Plan

# `apachectl -S`: an address:port with several vhosts names its default; one with a
# single vhost names only that one.
_DEFAULT = re.compile(r"^\s*default server (\S+) \((.+):(\d+)\)\s*$")
_ADDRESS = re.compile(r"^(\S+:\d+)\s+(?:is a NameVirtualHost|(\S+) \((.+):(\d+)\))\s*$")
_INCLUDE = re.compile(r"^\s*Include(?:Optional)?\s+\"?([^\s\"]+)\"?\s*$", re.I | re.M)
_PROBE_TIMEOUT = 5.0


def default_vhosts(text: str) -> list[tuple[str, str, str, int]]:
    """Return (address:port, server name, file, line) of each default vhost that
    `apachectl -S` lists."""
    found, pending = [], None
    for line in text.splitlines():
        address = _ADDRESS.match(line)
        if address:
            pending = address.group(1)
            if address.group(2):
                found.append((pending, address.group(2), address.group(3),
                              int(address.group(4))))
                pending = None
            continue
        default = _DEFAULT.match(line)
        if default and pending:
            found.append((pending, default.group(1), default.group(2), int(default.group(3))))
            pending = None
    return found


def block_at(text: str, line: int) -> str:
    """Return the <VirtualHost> block that starts at `line` (1-based) of a config file."""
    lines = text.splitlines()[line - 1:]
    if not lines or not lines[0].lstrip().lower().startswith("<virtualhost"):
        raise StepError(f"apachectl -S names line {line}, which opens no <VirtualHost>")
    block = []
    for raw in lines:
        block.append(raw)
        if raw.strip().lower().startswith("</virtualhost"):
            break
    return "\n".join(block) + "\n"


def readiness(conn: Any, paths: Any) -> tuple[str | None, list, set[str]]:
    """Return why the host map cannot put the server's bare addresses behind the page
    (None: it can), the default vhosts `apachectl -S` names, and the map's names now."""
    why, present = host_map.why_not(conn, paths, None, [])
    if why is not None:
        return (f"the server's bare addresses are put behind the landing page through the "
                f"host map, and {why} (docs/linux-host.md, 'The host map')", [], present)
    defaults = default_vhosts(conn.run([paths.apachectl, "-S"]).text)
    if not defaults:
        return f"apachectl -S on {conn.name} lists no virtual host", [], present
    problems = _uncovered(conn, paths, defaults)
    if problems:
        return ("the server's default vhosts would keep serving its bare addresses: "
                + "; ".join(problems) + " (add the host map's hook or `RewriteEngine On` to "
                "each: docs/linux-host.md, 'Whole server')", defaults, present)
    return None, defaults, present


def _uncovered(conn: Any, paths: Any, defaults: list[tuple[str, str, str, int]]
               ) -> list[str]:
    """Return why each default vhost would not run the host map's rules (its block with
    the agent's hook include inlined, checked with hostmap.uncovered)."""
    files = conn.read_many(sorted({f for _a, _n, f, _l in defaults}))
    blocks = {}
    for address, name, path, line in defaults:
        found = files[path]
        if not found.exists or found.data is None:
            return [f"{path} (the default vhost of {address}) cannot be read"]
        blocks[(address, name, path, line)] = block_at(found.data.decode("utf-8", "replace"),
                                                       line)
    hooks = sorted({inc.replace("*.conf", hostmap.HOOK_FILE)
                    for text in blocks.values() for inc in _INCLUDE.findall(text)
                    if inc.startswith(paths.apache_hook_dir + "/")})
    hook_files = conn.read_many(hooks) if hooks else {}

    def inline(match: re.Match) -> str:
        hook = match.group(1).replace("*.conf", hostmap.HOOK_FILE)
        data = hook_files[hook].data if hook in hook_files else None
        return match.group(0) + "\n" + (data or b"").decode("utf-8", "replace")

    problems = []
    for (address, name, path, line), text in blocks.items():
        problems += [f"{path}:{line} ({name}, the default vhost of {address}): {p}"
                     for p in hostmap.uncovered(_INCLUDE.sub(inline, text))]
    return problems


class ServerLanding:
    """Puts every request of the server (bare addresses, unknown names) behind the page."""

    name = "server_landing"

    def plan(self, ctx: Context) -> Plan:
        paths = ctx.server.linux
        why, defaults, present = readiness(ctx.conn, paths)
        if why is not None:
            raise StepError(why)
        ports = sorted({int(a.rsplit(":", 1)[1]) for a, *_rest in defaults})
        address = ctx.server.address
        probe = [(address, ctx.server.http_port, False)] if ctx.server.http_port in ports \
            else []
        probe += [(address, ctx.server.https_port, True)] if ctx.server.https_port in ports \
            else []
        added = hostmap.WHOLE_SERVER not in present
        said = [f"{a} {n} ({f}:{n_line})" for a, n, f, n_line in defaults]
        return Plan(self.name, [MapEdit(paths.host_map, add=(hostmap.WHOLE_SERVER,))]
                    if added else [], lock=MAP_LOCK,
                    facts={"default vhosts": said, "mechanism": "host map"},
                    undo={"map": paths.host_map, "added": added, "probe": probe},
                    note="" if added else f"{paths.host_map} already holds "
                    f"{hostmap.WHOLE_SERVER} (not the agent's: it stays)")

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        from agent.steps.actions import carry_out

        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        remove = [MapEdit(undo["map"], remove=(hostmap.WHOLE_SERVER,))] if undo["added"] else []
        return Plan(self.name, remove, lock=MAP_LOCK, undo=undo)

    def repair_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan | None:
        """Return the edit that puts `__all__` back when something took it out of the map
        while the case is open; None when it is there."""
        found = ctx.conn.read_many([undo["map"]])[undo["map"]]
        if found.exists and found.data is not None and \
                hostmap.WHOLE_SERVER in map_edit.parse(found.data, undo["map"]):
            return None
        return Plan(self.name, [MapEdit(undo["map"], add=(hostmap.WHOLE_SERVER,))],
                    lock=MAP_LOCK, undo=undo, note=f"{hostmap.WHOLE_SERVER} was gone from the "
                    "host map")

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """The server's public address answers (or no longer answers) the landing page over
        HTTP and HTTPS with the address as Host, and over HTTP/1.0 without Host."""
        from agent.steps import probes

        targets = [tuple(t) for t in undo["probe"]]
        if not targets:
            raise VerifyFailed("no default vhost listens on the server's HTTP or HTTPS port: "
                               "nothing could be asked")
        probes.check_landing(ctx.server, targets, suspended)
        for address, port, tls in targets:
            if not tls and probes.looks_suspended(_without_host(address, port)) != suspended:
                raise VerifyFailed(f"http://{address}:{port}/ over HTTP/1.0 without Host "
                                   + ("does not answer the landing page" if suspended else
                                      "still answers the landing page"))


class _Bare:
    """A reply's status and headers (what probes.looks_suspended reads)."""

    def __init__(self, status: int, headers: Any) -> None:
        self.status_code, self.headers = status, headers


def _without_host(address: str, port: int) -> _Bare:
    """Ask address:port as an HTTP/1.0 client without a Host header would."""
    try:
        with socket.create_connection((address, port), timeout=_PROBE_TIMEOUT) as sock:
            sock.sendall(b"GET /sa-probe-bare HTTP/1.0\r\nUser-Agent: suspension-agent\r\n\r\n")
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            resp.read(4096)
            return _Bare(resp.status, {k: v for k, v in resp.getheaders()})
    except (OSError, http.client.HTTPException) as exc:
        raise VerifyFailed(f"http://{address}:{port}/ (HTTP/1.0, no Host) gave no answer: "
                           f"{exc.__class__.__name__}") from None
