"""ea-nginx in front of Apache (cpanel-review.md F5): what landing_page adds on such a server.

EA4's "NGINX with reverse proxy" caches every user's pages by default: a 200, 301 or 302
stays fresh for an hour and, when Apache answers 503, is served stale (cache.json's
`proxy_cache_use_stale ... http_503`; CpanelInc/ea-nginx @9822ea2 SOURCES/cpanel/ea-nginx/
cache.json and server.conf.tt:99-128). Behind the landing page Apache answers 503, so a page
cached before the suspension would keep reaching visitors. While the landing page is on,
the account's own caching setting (`/var/cpanel/userdata/USER/nginx-cache.json`, merged over
the global file: cpanel-scripts-ea-nginx:1668-1686) says `"enabled" : false`, as
`ea-nginx cache USER --enabled=0` writes it; the account's NGINX conf is rebuilt without any
cache (`ea-nginx config USER --no-reload`), NGINX reloaded once (`restartsrv_nginx reload`,
what `ea-nginx reload` runs) and the account's cached files removed (`ea-nginx clear_cache
USER...`), after Apache restarted with the include. Reverting puts the file back byte for
byte and runs the same finish, which also drops anything cached meanwhile.

A server where NGINX serves the sites itself (`enable.standalone`) has no Apache behind it
for the include to act on: landing_page refuses there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.connector import quote
from agent.errors import StepError

_OFF = {"enabled": False}


def paths(s: Any, user: str) -> dict[str, str]:
    """Return the files landing_page reads on every cPanel server to learn about ea-nginx:
    the global cache file (present whenever ea-nginx is installed), the standalone flag and
    the account's own caching file."""
    return {"global": f"{s.ea_nginx_dir}/cache.json",
            "standalone": f"{s.ea_nginx_dir}/enable.standalone",
            "user": f"{s.panel_userdata_dir}/{user}/nginx-cache.json"}


def present(found: dict[str, Any], where: dict[str, str], server: str) -> bool:
    """Return True when ea-nginx proxies to Apache on this server; raise StepError when it
    serves the sites standalone (no Apache behind it)."""
    if found[where["standalone"]].exists:
        raise StepError(f"{server}: ea-nginx runs standalone ({where['standalone']}): no "
                        "Apache is behind NGINX for the landing include to act on")
    return bool(found[where["global"]].exists)


def cache_off(current: bytes | None) -> bytes:
    """Return the account's caching file with caching off: its settings kept and `enabled`
    false, in the form ea-nginx's own `_write_json` writes (pretty, canonical, 3 spaces). A
    file ea-nginx cannot read (not a JSON object) counts as empty, as ea-nginx treats it."""
    try:
        data = json.loads(current) if current else {}
    except ValueError:
        data = {}
    data = {**(data if isinstance(data, dict) else {}), **_OFF}
    return (json.dumps(data, indent=3, separators=(",", " : "), sort_keys=True)
            + "\n").encode()


@dataclass(frozen=True)
class Refresh:
    """The finish on an ea-nginx server, after Apache restarted: every account's NGINX conf
    rebuilt (no reload), one NGINX reload, then the accounts' cached files removed. A batch
    merges every account's into one."""

    ea_nginx: str
    restartsrv_nginx: str
    users: tuple[str, ...]

    def commands(self) -> list[list[str]]:
        users = list(dict.fromkeys(self.users))
        return ([[self.ea_nginx, "config", u, "--no-reload"] for u in users]
                + [[self.restartsrv_nginx, "reload"], [self.ea_nginx, "clear_cache", *users]])

    def describe(self) -> list[str]:
        return [f"run   {quote(argv)}" for argv in self.commands()]

    @property
    def merge_key(self) -> tuple:
        return ("ea-nginx refresh", self.ea_nginx, self.restartsrv_nginx)

    def merged_with(self, other: Refresh) -> Refresh:
        return Refresh(self.ea_nginx, self.restartsrv_nginx, self.users + other.users)

    def carry_out(self, conn: Any) -> None:
        # One round trip; `config` of a few hundred accounts is the slow part.
        conn.run_batch([(argv, (0,)) for argv in self.commands()],
                       timeout=120.0 + 10.0 * len(self.users))


def refresh(s: Any, user: str) -> Refresh:
    """Return the finish of one account's landing_page on an ea-nginx server."""
    return Refresh(s.ea_nginx, s.restartsrv_nginx, (user,))
