"""firewall_block's part on cPanel for webmail through the web server (issue 17; reference
lockouts.md 1.8).

cPanel's service subdomains (Tweak Setting `proxysubdomains`, on by default) let Apache
proxy webmail.DOMAIN to cpsrvd over loopback: on port 80 a vhost of its own with
`ServerAlias webmail.*`, on 443 rules in each account's SSL vhost, both
`ProxyPass "/___proxy_subdomain_webmail" "http://127.0.0.1:2095"` ([SRC] CpanelInc/
ea-apache2-config @6f26dd7 SOURCES/ea4_main.default:585-727, 729-908, ssl_vhost.default:
252-284; asmrdevelop/cpanel @393631a2 Cpanel/WebVhosts/AutoDomains.pm:106-122; ea-nginx
proxies the same names itself). The firewall's input chain lets loopback through, so with
only the ports closed, webmail stayed open by name. So when the grade closes 2095 or 2096,
the table's output chain also refuses loopback connections to them from every process but
root's: Apache's and NGINX's workers run as `nobody` (or the site's user), cPanel's own
monitoring as root. Verify: the kernel's table (firewall_block), and from outside a
request for `webmail.suspension-agent.invalid` on port 80, which the service-subdomain
vhost proxies, must not get an answer from webmail (a 5xx from the proxy is the lock).
"""

from __future__ import annotations

from typing import Any

from agent.connector import Connector
from agent.drivers.cpanel.hazards import CPANEL_CONFIG, cpanel_config
from agent.steps import probes
from agent.steps.protocol import Context
from agent.steps.visitor import PROBE_ERRORS

PROBE_HOST = "webmail.suspension-agent.invalid"


def service_subdomains(conn: Connector) -> bool:
    """True when cPanel proxies webmail.DOMAIN through the web server (proxysubdomains=1;
    a missing key is off, the template's default: Cpanel/ConfigFiles/Apache/Config.pm
    :1499; installs write 1, Cpanel/Config/CpConfGuard/Default.pm:229)."""
    text = (conn.read(CPANEL_CONFIG) or b"").decode("utf-8", "replace")
    return cpanel_config(text).get("proxysubdomains", "0").strip() == "1"


def check_line(conn: Connector) -> str:
    """`check`'s line: whether the mail grade also closes webmail by name."""
    if service_subdomains(conn):
        return ("firewall_block closes webmail by name too (service subdomains on: loopback "
                "to 2095/2096 refused to all but root while the grade is on)")
    return "firewall_block: service subdomains are off here (no webmail by name to close)"


class WebmailProxy:
    """The loopback half of the webmail lock (firewall_block's `local` part)."""

    ports = (2095, 2096)

    def plan(self, ctx: Context, local: list[int]) -> tuple[str, dict | None]:
        """Return the plan's note and what verify probes (None: nothing to probe)."""
        if not local:
            return "", None
        on = service_subdomains(ctx.conn)
        note = (f"webmail by name through the web server is closed too (loopback to "
                f"{', '.join(map(str, local))} refused to all but root)")
        if not on:
            return note + "; service subdomains are off here (proxysubdomains=0)", None
        return note, {"host": PROBE_HOST, "port": 80}

    def problems(self, ctx: Context, probe: dict[str, Any]) -> str:
        """Return what the probe from outside saw that is not the lock ("" when locked)."""
        try:
            reply = probes.fetch(ctx.server, probe["host"], "/", tls=False)
        except PROBE_ERRORS as exc:
            return f"webmail through the service subdomains could not be probed ({exc})"
        if reply.status_code < 500:
            return (f"http://{probe['host']}/ on {ctx.server.address} still reaches webmail "
                    f"(HTTP {reply.status_code})")
        return ""
