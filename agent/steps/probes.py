"""Probes from outside, as a visitor would see the server: HTTP(S) requests to each domain."""

from __future__ import annotations

import re
import secrets
import time
import warnings

import requests
from requests.adapters import HTTPAdapter

from agent.config import Server
from agent.connector import Connector
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
    problems = []
    token = secrets.token_hex(4)
    for domain, port, tls in targets:
        if domain.startswith("*"):
            continue
        try:
            resp = fetch(server, domain, f"/sa-probe-{token}/page?q={token}&x=1", tls)
            if looks_suspended(resp) != suspended:
                want = "the landing page (503)" if suspended else "the site, not the landing page"
                problems.append(f"{'https' if tls else 'http'}://{domain}/ answered "
                                f"{resp.status_code}, expected {want}")
            if suspended:
                acme = fetch(server, domain, f"/.well-known/acme-challenge/sa-probe-{token}", tls)
                if acme.status_code == 503:
                    problems.append(f"{domain}: ACME challenge path is blocked (503)")
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
        time.sleep(0.2)


# -- services asked through their own front doors (no customer password is known) --------
_ADDRESS = re.compile(r"^[A-Za-z0-9._%+=-]{1,64}@[A-Za-z0-9.-]{1,253}$")
_PASSWORD_LINE = re.compile(r"^\s*password\s*:\s*(.*?)\s*$", re.MULTILINE)
PROBE_CLIENT = "192.0.2.1"  # TEST-NET-1: `exim -bh` only pretends a client came from there


def dovecot_password(conn: Connector, doveadm: str, address: str) -> str | None:
    """Return the password field Dovecot's running auth service answers for `address`.

    Asked through `doveadm auth lookup`, i.e. the same auth process IMAP, POP3 and Exim's
    SMTP AUTH use, so a lock written where Dovecot does not look shows up here.
    """
    result = conn.run([doveadm, "auth", "lookup", address], ok_codes=(0, 67, 68))
    found = _PASSWORD_LINE.search(result.text)
    return found.group(1) if result.rc == 0 and found else None


def exim_rcpt(conn: Connector, exim: str, address: str) -> int:
    """Return Exim's reply code to `RCPT TO:<address>` from an outside client.

    `exim -bh` runs a real SMTP session through the live configuration and ACLs without
    accepting a message or opening a socket.
    """
    if not _ADDRESS.match(address):
        raise VerifyFailed(f"cannot probe odd mail address {address!r}")
    dialogue = (f"EHLO probe.invalid\r\nMAIL FROM:<>\r\nRCPT TO:<{address}>\r\n"
                "QUIT\r\n").encode()
    out = conn.run([exim, "-bh", PROBE_CLIENT], stdin=dialogue, ok_codes=(0, 1)).text
    finals = [int(line[:3]) for line in out.splitlines()
              if len(line) > 3 and line[:3].isdigit() and line[3] == " "]
    # Replies in order: banner, EHLO, MAIL, RCPT, QUIT.
    if len(finals) < 4:
        raise VerifyFailed(f"Exim's test session did not reach RCPT: {out.strip()[-300:]}")
    return finals[3]
