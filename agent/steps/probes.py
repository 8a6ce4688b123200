"""Probes from outside, as a visitor would see the server: HTTP(S) requests to each domain.

Two ways in:

- `fetch` (requests): one request, a full `requests.Response` (text, encoding); for tests,
  the demo and anything else that wants one reply and reads its body.
- `Visitor` and `visit_all` (http.client): the lean path `check_landing` and the bench's
  outside watcher use for hundreds of targets. A reseller-wide verify is ~830 requests; with
  a fresh `requests.Session` each (adapters, pool manager, for HTTPS an SSL context that
  loads the system CA store) that was 9-17 s of GIL-bound CPU on a 2-core machine (20-40 ms
  a target), in competition with Apache itself; this path takes 0.6-1.3 ms. Plain HTTP
  keeps one connection per worker thread (Apache picks the name-based vhost per request
  from Host, so many Hosts over one connection answer as each would to a visitor's
  browser), HTTPS opens one connection per domain (SNI is per connection, and Apache may
  answer 421 when Host and SNI differ) reused for that domain's requests, and every TLS
  connection shares one SSL context (no CA store: nothing is verified). Apache closes the
  connection after every 503 (Connection: close), so a suspended target costs two
  connections whatever the client does. TLS session resumption was measured and left out:
  with Python 3.11 and OpenSSL 3.0 reading `SSLSocket.session` copies the session (~0.16 ms
  here), more than a resumed TLS 1.3 handshake saves (it still does the key exchange); with
  it a suspended HTTPS round took more CPU, not less.

Both send to `server.address` on its HTTP(S) port with Host (and SNI) set to the domain, never
through a proxy from the environment, and follow no redirects: the reply checked is this
server's own.
"""

from __future__ import annotations

import contextvars
import secrets
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from agent.config.servers import Server
from agent.errors import VerifyFailed
from agent.steps import visitor
from agent.steps.visitor import PROBE_ERRORS, TIMEOUT, Visitor, visit_all

__all__ = ["PROBE_ERRORS", "Visitor", "check_landing", "fetch", "looks_suspended",
           "visit_all"]

if TYPE_CHECKING:
    import requests
    import requests.adapters

LANDING_HEADERS = ("Retry-After", "Cache-Control", "X-Robots-Tag")


# -- one request with requests (tests, demo) ----------------------------------------------

def fetch(server: Server, domain: str, path: str, tls: bool, timeout: float = TIMEOUT
          ) -> requests.Response:
    """GET `path` of `domain` from the server's address (Host header and SNI set)."""
    import requests  # only here: the lean path below does not need it

    scheme, port = ("https", server.https_port) if tls else ("http", server.http_port)
    url = f"{scheme}://{server.address}:{port}{path}"
    with requests.Session() as session:
        session.trust_env = False  # never through a proxy: the probe must hit this server
        if tls:
            session.mount("https://", _sni_adapter(domain))
        # The landing page answers for every certificate state; what is checked is the reply.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return session.get(url, headers={"Host": domain}, timeout=timeout,
                               allow_redirects=False, verify=False)


def _sni_adapter(hostname: str) -> requests.adapters.HTTPAdapter:
    """Return an adapter that sends TLS SNI `hostname` while connecting to the address."""
    from requests.adapters import HTTPAdapter

    class SNIAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            kwargs["server_hostname"] = hostname
            kwargs["assert_hostname"] = False
            super().init_poolmanager(*args, **kwargs)

    return SNIAdapter(max_retries=0)


# -- what a reply looks like ----------------------------------------------------------------

class _Reply(Protocol):
    status_code: int
    headers: Mapping[str, str]


def looks_suspended(resp: _Reply) -> bool:
    """Return True when a reply (`fetch`'s or `Visitor.get`'s) is the landing page's: 503
    with Retry-After, Cache-Control no-store and X-Robots-Tag noindex."""
    h = resp.headers
    return (resp.status_code == 503 and "Retry-After" in h
            and "no-store" in h.get("Cache-Control", "")
            and "noindex" in h.get("X-Robots-Tag", ""))


# -- the landing page check ------------------------------------------------------------------

# What Apache adds to its own error text when the ErrorDocument itself failed.
_ERRORDOC_FAILED = "error was encountered while trying to use an ErrorDocument"

# What visitors were shown (for the case's dossier): set to a list around a verify, it gets
# each reply of the attempt that passed (agent/engine/step_run.py keeps it in the audit).
SEEN: contextvars.ContextVar[list | None] = contextvars.ContextVar("seen", default=None)
_KEPT_HEADERS = ("Retry-After", "Cache-Control", "X-Robots-Tag", "Content-Type")


def compact(records: list[dict]) -> dict:
    """Return what a verify's visitors were shown, for the audit: each reply with the
    SHA-256 of its body start, and each distinct body once (base64)."""
    import base64
    import hashlib

    bodies: dict[str, str] = {}
    seen = []
    for r in sorted(records, key=lambda r: r["url"]):
        digest = hashlib.sha256(r["body"]).hexdigest()
        bodies.setdefault(digest, base64.b64encode(r["body"]).decode())
        seen.append({"url": r["url"], "status": r["status"], "headers": r["headers"],
                     "body_sha256": digest})
    return {"seen": seen, "bodies": bodies} if seen else {}


def _problems(server: Server, targets: list[tuple], suspended: bool,
              seen: list | None = None) -> list[str]:
    token = secrets.token_hex(4)
    # A wildcard domain (cPanel's `*.example.com` subdomains, review F8) is asked for a
    # name of its own that no other vhost has: any label is a way in for visitors.
    wanted = [(f"sa-probe-{token}{t[0][1:]}" if t[0].startswith("*.") else t[0], *t[1:])
              for t in targets]
    https = {t[0] for t in wanted if t[2]}
    found = visit_all(server, wanted,
                      lambda v, t: _one(v, t, suspended, token, seen, t[0] in https),
                      workers=visitor.WORKERS, timeout=visitor.TIMEOUT)
    return [p for problems in found for p in problems]


def _to_https(resp: _Reply, domain: str, path: str) -> bool:
    """True when a plain-HTTP reply is a permanent redirect to the same name and path over
    HTTPS: what cPanel's "Force HTTPS Redirect" answers before any include (review F3,
    ea-apache2-config vhost.default:4-18)."""
    return (resp.status_code in (301, 308)
            and resp.headers.get("Location") == f"https://{domain}{path}")


def _one(visitor: Visitor, target: tuple, suspended: bool, token: str,
         seen: list | None = None, https_probed: bool = False) -> list[str]:
    domain, port, tls = target
    problems = []
    # Plain HTTP that only redirects to HTTPS is behind the landing page when that HTTPS
    # name is probed too (and must show the landing page there).
    redirected = suspended and not tls and https_probed
    try:
        # A path no cache can hold (fresh each probe), and the home page: the one most
        # likely cached by a proxy in front of Apache (ea-nginx serves a cached copy stale
        # when Apache answers 503: cpanel-review.md F5).
        for path in (f"/sa-probe-{token}/page?q={token}&x=1", "/"):
            problems += _page(visitor, domain, path, tls, suspended, redirected, seen)
        if suspended:
            # The ACME exemption covers only files that exist: a missing challenge name is
            # the landing page too (else a customer's .htaccess could serve the site there).
            missing = f"/.well-known/acme-challenge/sa-probe-{token}"
            acme = visitor.get(domain, missing, tls)
            if not looks_suspended(acme) and not (redirected and _to_https(acme, domain,
                                                                           missing)):
                problems.append(f"{domain}: a missing ACME challenge answered "
                                f"{acme.status_code}, not the landing page")
    except PROBE_ERRORS as exc:
        problems.append(f"{domain} (port {port}): no HTTP answer: {exc.__class__.__name__}")
    return problems


def _page(visitor: Visitor, domain: str, path: str, tls: bool, suspended: bool,
          redirected: bool, seen: list | None) -> list[str]:
    url = f"{'https' if tls else 'http'}://{domain}{path}"
    shown = f"{url.split('//', 1)[0]}//{domain}/" + ("" if path == "/" else " (a fresh path)")
    resp = visitor.get(domain, path, tls)
    if seen is not None:  # list.append: safe from the visitors' threads
        seen.append({"url": url, "status": resp.status_code, "body": bytes(resp.head),
                     "headers": {h: resp.headers[h] for h in _KEPT_HEADERS
                                 if h in resp.headers}})
    # Not suspended, the page is the site's own answer (for the probe's path, which the
    # site lacks, often a 404): what counts is that it is not the landing page.
    if redirected and _to_https(resp, domain, path):
        return []
    if looks_suspended(resp) != suspended:
        want = "the landing page (503)" if suspended else "the site, not the landing page"
        return [f"{shown} answered {resp.status_code}, expected {want}"]
    if suspended and _ERRORDOC_FAILED in resp.text:
        # The 503 and its headers, but Apache could not serve the page itself (a folder it
        # cannot read): the visitor gets Apache's bare error text.
        return [f"{shown} answered 503 without the landing page: Apache could not serve it "
                "as the ErrorDocument (check the landing folder's permissions)"]
    return []


def check_landing(server: Server, targets: list[tuple], suspended: bool,
                  wait: float = 10.0) -> None:
    """Ensure every domain shows (or no longer shows) the landing page; raise VerifyFailed.

    Targets are (domain, port, tls); a wildcard `*.name` is asked as a fresh label of it.
    Suspended: the home page, a fresh path and a missing ACME challenge of every target
    answer the landing page,
    or over plain HTTP a 301/308 to the same URL over HTTPS when that name's HTTPS target is
    probed as well (cPanel's Force HTTPS Redirect answers before any include). Not suspended:
    the same pages answer, and not with the landing page (the fresh path is one the site
    lacks, so a 404 is its own answer). A target that cannot be asked is a problem.
    Apache's graceful restart lets old workers finish, so the check is retried until `wait`
    runs out.
    """
    deadline = time.monotonic() + wait
    keep = SEEN.get()
    while True:
        attempt: list | None = [] if keep is not None else None
        problems = _problems(server, targets, suspended, attempt)
        if not problems:
            if keep is not None and attempt is not None:
                keep.extend(attempt)  # the replies of the attempt that passed
            return
        if time.monotonic() > deadline:
            raise VerifyFailed("; ".join(problems[:5]))
        time.sleep(0.05)
