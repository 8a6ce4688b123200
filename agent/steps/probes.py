"""Probes from outside, as a visitor would see the server: HTTP(S) requests to each domain."""

from __future__ import annotations

import secrets
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

from agent.config import Server
from agent.errors import VerifyFailed

LANDING_HEADERS = ("Retry-After", "Cache-Control", "X-Robots-Tag")


class _SNIAdapter(HTTPAdapter):
    """Send TLS SNI for `hostname` while connecting to the server's address."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)


def fetch(server: Server, domain: str, path: str, tls: bool, timeout: float = 5.0
          ) -> requests.Response:
    """GET `path` of `domain` from the server's address (Host header and SNI set)."""
    scheme, port = ("https", server.https_port) if tls else ("http", server.http_port)
    url = f"{scheme}://{server.address}:{port}{path}"
    with requests.Session() as session:
        session.trust_env = False  # never through a proxy: the probe must hit this server
        if tls:
            session.mount("https://", _SNIAdapter(domain))
        # The landing page answers for every certificate state; what is checked is the reply.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return session.get(url, headers={"Host": domain}, timeout=timeout,
                               allow_redirects=False, verify=False)


def looks_suspended(resp: requests.Response) -> bool:
    """Return True when a reply is the landing page's: 503 with the three headers."""
    h = resp.headers
    return (resp.status_code == 503 and "Retry-After" in h
            and "no-store" in h.get("Cache-Control", "")
            and "noindex" in h.get("X-Robots-Tag", ""))


def _problems(server: Server, targets: list[tuple], suspended: bool) -> list[str]:
    token = secrets.token_hex(4)
    wanted = [t for t in targets if not t[0].startswith("*")]
    if not wanted:
        return []
    # Every domain at once: an unsuspend waits for the slowest, not for their sum.
    with ThreadPoolExecutor(max_workers=min(16, len(wanted))) as pool:
        found = pool.map(lambda t: _one(server, t, suspended, token), wanted)
        return [p for problems in found for p in problems]


def _one(server: Server, target: tuple, suspended: bool, token: str) -> list[str]:
    domain, port, tls = target
    problems = []
    try:
        resp = fetch(server, domain, f"/sa-probe-{token}/page?q={token}&x=1", tls)
        if looks_suspended(resp) != suspended:
            want = "the landing page (503)" if suspended else "the site, not the landing page"
            problems.append(f"{'https' if tls else 'http'}://{domain}/ answered "
                            f"{resp.status_code}, expected {want}")
        if suspended:
            # The ACME exemption covers only files that exist: a missing challenge name is
            # the landing page too (else a customer's .htaccess could serve the site there).
            acme = fetch(server, domain, f"/.well-known/acme-challenge/sa-probe-{token}", tls)
            if not looks_suspended(acme):
                problems.append(f"{domain}: a missing ACME challenge answered "
                                f"{acme.status_code}, not the landing page")
    except requests.RequestException as exc:
        problems.append(f"{domain} (port {port}): no HTTP answer: {exc.__class__.__name__}")
    return problems


def check_landing(server: Server, targets: list[tuple], suspended: bool,
                  wait: float = 10.0) -> None:
    """Ensure every domain shows (or no longer shows) the landing page; raise VerifyFailed.

    Apache's graceful restart lets old workers finish, so the check is retried briefly.
    """
    deadline = time.monotonic() + wait
    while True:
        problems = _problems(server, targets, suspended)
        if not problems:
            return
        if time.monotonic() > deadline:
            raise VerifyFailed("; ".join(problems[:5]))
        time.sleep(0.05)

