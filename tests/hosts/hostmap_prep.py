"""Install the host map on a test host as docs/linux-host.md tells an admin to ("The host
map"), and take it out again: the global include enabled, an empty map, the landing page,
and the vhost hook in each account's hook folder; one configtest and graceful each way."""

from __future__ import annotations

import os
from pathlib import Path

from agent import PROJECT_ROOT, landing
from agent.config.config import Branding
from agent.config.servers import LinuxPaths
from agent.steps import hostmap
from tests.hosts.testhost import TestHost

CONF_AVAILABLE = "/etc/apache2/conf-available/suspension-agent.conf"


def _files(branding: Branding, accounts: list[str]) -> dict[str, bytes]:
    paths = LinuxPaths()
    page = landing.render(str(PROJECT_ROOT / "landing_pages"), branding).encode()
    files = {CONF_AVAILABLE: hostmap.global_conf(paths.host_map, paths.host_map_landing,
                                                 branding.retry_after).encode(),
             paths.host_map: hostmap.map_text([]),
             f"{paths.host_map_landing}/index.html": page}
    for account in accounts:
        files[f"{paths.apache_hook_dir}/{account}/{hostmap.HOOK_FILE}"] = \
            hostmap.vhost_hook().encode()
    return files


def install(host: TestHost, branding: Branding, accounts: list[str]) -> list[str]:
    """Install the host map for `accounts`; return every path made (for `remove`)."""
    made: list[str] = []
    for inside, data in _files(branding, accounts).items():
        target = host.path(inside)
        missing = []
        p = target.parent
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            d.mkdir(mode=0o755)
            made.append("/" + str(d.relative_to(host.root)))
        target.write_bytes(data)
        os.chmod(target, 0o644)
        made.append(inside)
    link = host.path(LinuxPaths().host_map_conf)
    os.symlink("../conf-available/suspension-agent.conf", link)
    made.append(LinuxPaths().host_map_conf)
    _reload(host)
    return made


def remove(host: TestHost, made: list[str]) -> None:
    """Take out what `install` made, newest first, and reload Apache."""
    for inside in reversed(made):
        p: Path = host.path(inside)
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            p.rmdir()
    _reload(host)


def _reload(host: TestHost) -> None:
    test = host.run(["/usr/sbin/apache2ctl", "configtest"], check=False)
    if test.returncode != 0:
        raise RuntimeError(f"configtest after the host map change: {test.stderr.decode()}")
    host.run(["/usr/sbin/apache2ctl", "graceful"])
