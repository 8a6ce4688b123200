"""Whether the host map (agent/steps/hostmap.py) can put an account's sites behind the
landing page on a plain Debian host, and if not, why.

The map is used when it is installed (the global include enabled, the map file and the
landing page in place: docs/linux-host.md) and covers every vhost of the account: each one
carries the map's vhost hook in its hook folder and none has a directive that defeats the
server-level rules (`hostmap.uncovered`). Otherwise the landing page falls back to the
per-account include and a graceful reload, which covers those shapes too.
"""

from __future__ import annotations

from agent.config.servers import LinuxPaths
from agent.connector import Connector
from agent.connector.base import FileData
from agent.drivers import linux
from agent.drivers.linux import VHost
from agent.steps import hostmap, map_edit
from agent.steps.protocol import Memo, memo


def hook_path(paths: LinuxPaths, account: str) -> str:
    """Return the account's vhost hook file of the host map."""
    return f"{linux.hook_dir(paths, account)}/{hostmap.HOOK_FILE}"


# Every account's vhost hook of the host map ($1/*/$2) as NUL, path, NUL, content.
_DUMP_HOOKS = ('for f in "$1"/*/"$2"; do [ -f "$f" ] || continue; printf "\\0%s\\0" "$f"; '
               'cat -- "$f"; done')


def why_not(conn: Connector, paths: LinuxPaths, account: str | None,
            hosts: list[VHost], shared: Memo | None = None) -> tuple[str | None, set[str]]:
    """Return why the host map cannot cover the account's vhosts (None: it covers them all)
    and the names the map holds now, from one read: the include, the map, the landing page
    and the account's vhost hook. With `shared` (a batch of accounts), the server's files
    and every account's hook are read once for the whole batch.

    Without `account`, only whether the map is installed on the server (for `check`).
    """
    found = _read(conn, paths, account, shared)
    reason, data = _why_not(paths, account, hosts, found)
    return reason, (map_edit.parse(data, paths.host_map) if data is not None else set())


def _read(conn: Connector, paths: LinuxPaths, account: str | None,
          shared: Memo | None) -> dict[str, FileData | bytes | None]:
    page = f"{paths.host_map_landing}/index.html"
    wanted = [paths.host_map_conf, paths.host_map, page]
    if shared is None:
        return dict(conn.read_many(wanted + ([hook_path(paths, account)] if account else [])))
    def read() -> dict[str, FileData]:
        files = conn.read_many(wanted)
        shared.saw({paths.host_map: files[paths.host_map]})  # the batch's map edit starts here
        return files

    found: dict[str, FileData | bytes | None] = dict(
        memo(shared, ("host map files", paths.host_map), read))
    if account is not None:
        def hooks() -> dict[str, bytes]:
            raw = conn.run(["sh", "-c", _DUMP_HOOKS, "sh", paths.apache_hook_dir,
                            hostmap.HOOK_FILE]).stdout
            return linux.split_dump(raw)

        every = memo(shared, ("host map hooks", paths.apache_hook_dir), hooks)
        found[hook_path(paths, account)] = every.get(hook_path(paths, account))
    return found


def _why_not(paths: LinuxPaths, account: str | None, hosts: list[VHost],
             found: dict) -> tuple[str | None, bytes | None]:
    page = f"{paths.host_map_landing}/index.html"
    conf = found[paths.host_map_conf]
    data = found[paths.host_map].data
    if not conf.exists or conf.data is None or hostmap.BEGIN.encode() not in conf.data:
        return f"the host map's include {paths.host_map_conf} is not installed", None
    if f'"txt:{paths.host_map}"'.encode() not in conf.data:
        return f"{paths.host_map_conf} does not name the host map {paths.host_map}", None
    if data is None:
        return f"the host map {paths.host_map} does not exist as a regular file", None
    if not found[page].exists:
        return f"the host map's landing page {page} is missing", data
    if account is None:
        return None, data
    hook = found[hook_path(paths, account)]
    # A FileData (read alone) or the hook's bytes from the batch's dump (None: missing).
    text = hook.data if isinstance(hook, FileData) else hook
    if text is None or b"RewriteEngine On" not in text:
        return f"{hook_path(paths, account)} (the host map's vhost hook) is missing", data
    problems = uncovered(text.decode("utf-8", "replace"), hosts)
    return ("; ".join(problems) if problems else None), data


def uncovered(hook_text: str, hosts: list[VHost]) -> list[str]:
    """Return what keeps the map from covering the vhosts (empty: it covers all), checked on
    the vhost blocks as written with the hook file inlined where the vhost reads it."""
    problems = []
    for vh in hosts:
        first, _, rest = vh.text.partition("\n")
        for problem in hostmap.uncovered(f"{first}\n{hook_text}{rest}"):
            problems.append(f"{vh.file} ({vh.names[0] if vh.names else '?'}:{vh.port}): "
                            f"{problem}")
    return problems
