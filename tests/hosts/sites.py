"""What visitors see of a set of a test host's sites, asked from outside over HTTP and HTTPS:
the agent's landing page, the site's own page (tests/hosts/provision.py: site_page), or the
status code."""

from __future__ import annotations

from agent.config.servers import Server
from agent.steps.probes import fetch, looks_suspended
from tests.hosts.provision import site_page
from tests.hosts.testhost import TestHost


def shows(host: TestHost, sites: dict[str, list[tuple[str, str]]],
          schemes: tuple[bool, ...] = (False, True)) -> dict[str, str]:
    """Return, for each `account -> [(domain, its vhost's ServerName)]` and each scheme
    (False: HTTP, True: HTTPS), `{scheme}://{domain}/` -> "landing" (503 with the landing
    page's headers and the company's name), "own" (200 with the site's own page) or the
    status code. One request after the other: `fetch` silences urllib3's warning about
    the test hosts' unverified certificates with warnings.catch_warnings, which is not
    thread-safe."""
    server = Server("t", "linux", "ssh", host=host.address)
    asks = [(account, domain, site, tls) for account, names in sites.items()
            for domain, site in names for tls in schemes]

    def ask(item: tuple[str, str, str, bool]) -> str:
        account, domain, site, tls = item
        resp = fetch(server, domain, "/", tls=tls)
        if looks_suspended(resp) and "Example Hosting" in resp.text:
            return "landing"
        if resp.status_code == 200 and resp.text == site_page(account, site):
            return "own"
        return str(resp.status_code)

    seen = [ask(item) for item in asks]
    return {f"{'https' if tls else 'http'}://{domain}/": what
            for (_a, domain, _s, tls), what in zip(asks, seen, strict=True)}
