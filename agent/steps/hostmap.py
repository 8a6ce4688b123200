"""The host map: one global Apache include puts any set of host names behind the landing page.

Installed once (one reload), the include holds server-level mod_rewrite rules that vhosts
inherit *before* their own rules (`RewriteOptions InheritDownBefore`), keyed on a `txt:`
RewriteMap of suspended host names. mod_rewrite stats a txt map on every lookup and drops its
cache when the mtime changes, so suspending or restoring any set of hosts is one atomic write
of the map file (temp file + rename) and no reload. A line `__all__ yes` puts every request of
the server behind the page: bare IPs, HTTP/1.0 without Host, the default vhost, unknown names.

A vhost inherits the server rules only if it has a mod_rewrite directive of its own at vhost
level. Apache gives a vhost without one the main server's mod_rewrite config itself, and
mod_rewrite's translate hook declines when that config's server is not the request's (the
"ugly API case" in hook_uri2file): no server rule runs, whatever InheritDown says. So the
install also puts `vhost_hook()` (`RewriteEngine On`) into every vhost once, through the same
per-vhost include line the landing_page step uses (HOOK_FILE beside its file); a vhost without
it is not covered (tests/test_hostmap_apache.py, nohook.test).

How a suspended request is answered (proved on Apache 2.4 by tests/test_hostmap_apache.py):

1. translate-name, server level (before Alias, ProxyPass, the vhost's own rules and every
   `.htaccess`): the Host header without port and trailing dot, lower-cased, is looked up.
   A hit is rewritten to the *file path* `<landing_dir>/suspended` (so no Alias, ProxyPass or
   vhost rule sees the request) with the env var SUSPENSION_AGENT=1;
2. the directory walk is then on the landing folder, never the customer's docroot: no customer
   `.htaccess` (rewrites, redirects, `ErrorDocument 503 /mine.html`, auth) is read at all;
3. a per-directory rule of the landing folder answers 503; the ErrorDocument used is the one of
   an `<If "%{ENV:SUSPENSION_AGENT} == '1'">` block. `<If>` sections are merged after every
   other section (vhost, `<Location>`, `<Directory>`), so it beats a later global
   `ErrorDocument 503 /503.shtml` (cPanel's errordocument.conf), a vhost's own, a vhost's
   `<Location>` one and an external-URL one (which would turn the 503 into a 302). Before the
   rewrite sets the env var the `<If>` is false (the first `<If>` walk runs before
   translate-name), so a 503 of a site that is not suspended keeps the site's own ErrorDocument;
4. the error document's internal redirect carries REDIRECT_SUSPENSION_AGENT=1 and is served
   from the landing folder by rule 1, before the vhost's rules;
5. the three headers are set in the same `<If>` (`Header always set`, and the `onsuccess`
   copies a vhost may set are removed), so they appear on suspended hosts only.

ACME: on a suspended host only `/.well-known/acme-challenge/<[A-Za-z0-9_-]+>` that exists as a
file under DOCUMENT_ROOT is served, rewritten to that file path with [END] (no `.htaccess`
rewrite, no Alias, no ProxyPass), and an `<If>` on SUSPENSION_AGENT_ACME makes it a static
`text/plain` file (`SetHandler default-handler`, `Options None`); everything else is the 503.
These overrides apply only while the host is suspended: a live site's challenge folder is as
its owner configured it. Gap (shared with the per-vhost include of landing_include.py): an
`.htaccess` `<If>` section is merged after every `<If>` and `<LocationMatch>` of the server,
so `<If "true"> SetHandler ... </If>` in the customer's challenge folder (or docroot) still
picks the handler of an existing challenge file (tests/test_hostmap_apache.py, acme.test).

What the map cannot cover, and how `check` sees it from the vhost config with its includes
expanded (`uncovered`):

- no mod_rewrite directive at vhost level (no `vhost_hook()`): the server rules never run;
- `RewriteEngine Off` at vhost level: no server rule runs in that vhost (the site is served);
- `RewriteOptions IgnoreInherit` at vhost level: the server rules are not inherited (served);
- `RewriteOptions Inherit` at vhost level: the vhost's rules run *first*; any of them that
  matches with [L], a redirect or a proxy answers instead of the 503 (what no rule of the vhost
  matches still gets the 503);
- `ErrorDocument 503` inside a vhost's own `<If>`/`<ElseIf>`/`<Else>` (merged after ours);
- access control at vhost level in `<Location>`/`<LocationMatch>` (`Require`, `Auth*`): it is
  checked before the 503 and answers 401/403 (a docroot `.htaccess` or `<Directory>` is not,
  because the request is mapped out of the docroot);
- not visible in the vhost text: a front end that serves without Apache (nginx in front,
  LiteSpeed), Include'd files (run `uncovered` on the expanded text).

Side effect `check` should report before the install (`dormant_rules`): a vhost with
RewriteRule lines but no `RewriteEngine` line had inert rules; the hook's `RewriteEngine On`
makes them live.

The map writer must give the new file an mtime different from the old one: mod_rewrite keys its
cache on mtime alone, so a rename of a file with the same mtime (two writes within one kernel
clock tick, or a copy that keeps times) is not seen until the next mtime change. The map file
must exist when the config is loaded (configtest refuses a missing txt map); deleting it later
fails open (every lookup misses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agent import ids

# Which vhosts the host map covers is read off the vhost's own text: vhost_scan.py.
from agent.steps.vhost_scan import dormant_rules, uncovered

__all__ = ["dormant_rules", "uncovered"]

WHOLE_SERVER = "__all__"
LANDING_URL = "/.suspension-agent-landing/index.html"
MAP_NAME = "suspension_agent_hosts"
BEGIN = "# BEGIN SUSPENSION-AGENT host map"
END = "# END SUSPENSION-AGENT host map"
# The env vars our rules set; an `<If>` on them scopes the ErrorDocument and headers.
ENV = "SUSPENSION_AGENT"
ENV_ACME = "SUSPENSION_AGENT_ACME"

HOOK_FILE = "00-host-map.conf"

_TEMPLATE = r"""@BEGIN@
# Written once by suspension-agent (one reload). The hosts behind the landing page are the
# "host yes" lines of the map below ("__all__ yes": every request), re-read by mod_rewrite
# when its mtime changes: suspending or lifting is a rename of that file, no reload.
# Do not edit.

# Every vhost with a mod_rewrite directive of its own (the agent's per-vhost hook says
# RewriteEngine On) gets the rules below before its own rules (InheritDownBefore), unless
# it says RewriteEngine Off or RewriteOptions IgnoreInherit / Inherit (agent/steps/hostmap.py).
RewriteEngine On
RewriteOptions InheritDownBefore
RewriteMap @NAME@ "txt:@MAP@"
RewriteMap suspension_agent_lower "int:tolower"

# 1. The error document's internal redirect of a suspended request (ours only: the env var is
#    set by rule 3): the landing page itself, before any rule of the vhost.
RewriteCond %{ENV:REDIRECT_@ENV@} =1
RewriteRule ^/\.suspension-agent-landing/index\.html$ @LANDING@/index.html [END,E=@ENV@:1]

# 2. ACME on a suspended host: only a plain name that exists as a file in the docroot's
#    challenge folder, rewritten to that file ([END]: no .htaccess rewrite, Alias or ProxyPass).
#    The Host header is matched without port and trailing dot, lower-cased.
RewriteCond %{HTTP_HOST} ^(.*?)\.?(?::[0-9]+)?$
RewriteCond ${@NAME@:__all__|${@NAME@:${suspension_agent_lower:%1}|no}} =yes
RewriteCond %{REQUEST_URI} ^/\.well-known/acme-challenge/[A-Za-z0-9_-]+$
RewriteCond %{DOCUMENT_ROOT}%{REQUEST_URI} -f
RewriteRule ^ %{DOCUMENT_ROOT}%{REQUEST_URI} [END,E=@ENV_ACME@:1,E=@ENV@:1]

# 3. Every other request to a suspended host: mapped out of the docroot to a file path in the
#    landing folder, so no Alias, ProxyPass, vhost rule or customer .htaccess sees it.
RewriteCond %{HTTP_HOST} ^(.*?)\.?(?::[0-9]+)?$
RewriteCond ${@NAME@:__all__|${@NAME@:${suspension_agent_lower:%1}|no}} =yes
RewriteRule ^ @LANDING@/suspended [L,E=@ENV@:1]

<Directory @LANDING@/>
    AllowOverride None
    # A per-directory RewriteRule needs one of the symlink options; nothing else is allowed.
    Options SymLinksIfOwnerMatch
    Require all granted
    # The 503 is answered here, after the last <If> walk, so the ErrorDocument below is used.
    RewriteEngine On
    RewriteRule ^suspended$ - [R=503]
</Directory>

# <If> sections merge after the vhost, <Location> and <Directory> ones: this ErrorDocument
# beats a later global one (cPanel's errordocument.conf) and a vhost's own. The env var is set
# only by the rules above, after the first <If> walk: other sites' 503s are left alone.
<If "%{ENV:@ENV@} == '1'">
    ErrorDocument 503 @LANDING_URL@
    Header onsuccess unset Retry-After
    Header onsuccess unset Cache-Control
    Header onsuccess unset X-Robots-Tag
    Header always set Retry-After "@RETRY@"
    Header always set Cache-Control "no-store"
    Header always set X-Robots-Tag "noindex"
</If>
# An ACME challenge of a suspended host is a static text file: no handler (PHP, CGI, status),
# no SSI, no MultiViews or index, whatever the customer's .htaccess says.
<If "%{ENV:@ENV_ACME@} == '1'">
    SetHandler default-handler
    Options None
    ForceType text/plain
</If>
@END@
"""


def global_conf(map_path: str, landing_dir: str, retry_after: int) -> str:
    """Return the global Apache include that puts the hosts of `map_path` behind the page.

    `landing_dir` holds the rendered `index.html` (outside any docroot); `retry_after` is the
    Retry-After value in seconds.
    """
    if not map_path.startswith("/") or not landing_dir.startswith("/"):
        raise ValueError("map_path and landing_dir must be absolute paths")
    for path in (map_path, landing_dir):
        if not re.fullmatch(r"/[A-Za-z0-9._/-]+", path) or "/../" in f"{path}/":
            raise ValueError(f"unusable path for an Apache include: {path!r}")
    values = {"@BEGIN@": BEGIN, "@END@": END, "@MAP@": map_path, "@NAME@": MAP_NAME,
              "@LANDING@": landing_dir.rstrip("/"), "@LANDING_URL@": LANDING_URL,
              "@RETRY@": str(int(retry_after)), "@ENV_ACME@": ENV_ACME, "@ENV@": ENV}
    text = _TEMPLATE
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def vhost_hook() -> str:
    """Return the per-vhost file (HOOK_FILE in the vhost's hook folder) that lets the vhost
    inherit the host map's rules: any mod_rewrite directive at vhost level does."""
    return ("# suspension-agent host map: a vhost runs the server-level rewrite rules only if\n"
            "# it has a mod_rewrite directive of its own. Written once; do not edit.\n"
            "RewriteEngine On\n")


def map_text(hosts: Iterable[str], whole_server: bool = False) -> bytes:
    """Return the map file: one `host yes` line per host, lower-cased, sorted, unique.

    Each name is validated as a host name (agent.ids.domain: a trailing dot is dropped);
    `whole_server` adds the `__all__ yes` line that covers every request of the server.
    """
    names = sorted({ids.domain(h) for h in hosts})
    lines = [f"{WHOLE_SERVER} yes"] if whole_server else []
    lines += [f"{name} yes" for name in names]
    head = "# suspension-agent host map: written by the agent, do not edit\n"
    return (head + "".join(f"{line}\n" for line in lines)).encode("ascii")


def parse_map(data: bytes) -> set[str]:
    """Return the keys of a map file whose value is `yes` (`__all__` included when present)."""
    found = set()
    for raw in data.decode("ascii", errors="replace").splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[1] == "yes":
            found.add(fields[0].lower())
    return found
