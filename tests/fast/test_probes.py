"""The outside probes (agent/steps/probes.py) against a tiny HTTP(S) server in this process on
127.0.0.1: what the server receives (Host, SNI, one request at a time), what counts as the
landing page, and that a probe which cannot see the answer is a problem, never a success."""

from __future__ import annotations

import datetime
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.config.servers import Server
from agent.errors import VerifyFailed
from agent.steps import visitor as lean
from agent.steps.probes import Visitor, check_landing, fetch, looks_suspended, visit_all

LANDING = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1800\r\n"
           b"Cache-Control: no-store\r\nX-Robots-Tag: noindex\r\nContent-Type: text/html\r\n"
           b"Content-Length: 9\r\nConnection: close\r\n\r\nsuspended")
BARE_503 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
SITE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\nsite"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"


@dataclass
class Answer:
    """What the server does with one request: send `data` (None: nothing), then maybe close,
    hang (read nothing more, answer nothing), or send `later` after a pause."""

    data: bytes | None
    close: bool = False
    hang: bool = False
    later: bytes = b""


@dataclass
class Conn:
    """One connection as the server saw it: SNI, and each request's (Host, path)."""

    sni: str | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    pipelined: bool = False  # a second request arrived before the first was answered


Rule = Callable[[str, str, int], Answer]  # (host, path, n-th request of the connection)


class Site:
    """A threaded HTTP/1.1 server on 127.0.0.1 (TLS when given a context) that answers by
    `rule` and records every connection."""

    def __init__(self, rule: Rule, tls: ssl.SSLContext | None = None,
                 greeting: bytes = b"") -> None:
        self.rule = rule
        self.tls = tls
        self.greeting = greeting  # sent on connect, then closed (not an HTTP(S) server)
        self.conns: list[Conn] = []
        self.stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sni: dict[int, str | None] = {}
        if tls is not None:
            tls.sni_callback = lambda sock, name, _ctx: self._sni.__setitem__(id(sock), name)
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def requests(self) -> list[tuple[str, str]]:
        return [r for c in self.conns for r in c.requests]

    def stop(self) -> None:
        self.stopped.set()
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() (close() alone does not)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                sock, _addr = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        conn = Conn()
        self.conns.append(conn)
        sock.settimeout(5)
        try:
            if self.greeting:
                sock.sendall(self.greeting)
                return
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
                conn.sni = self._sni.get(id(sock))
            self._requests(sock, conn)
        except OSError:
            pass
        finally:
            sock.close()

    def _requests(self, sock: socket.socket, conn: Conn) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            conn.pipelined |= bool(buf)
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = dict(line.split(": ", 1) for line in lines[1:])
            conn.requests.append((headers.get("Host", ""), path))
            answer = self.rule(headers.get("Host", ""), path, len(conn.requests))
            if answer.hang:
                self.stopped.wait(30)
                return
            if answer.data is not None:
                sock.sendall(answer.data)
            if answer.later:
                time.sleep(0.05)
                sock.sendall(answer.later)
            if answer.close or answer.data is None:
                return


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key (for any name: the probes verify nothing)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def serve(tls_files: tuple[Path, Path]) -> Iterator[Callable[..., tuple[Server, Site]]]:
    """Start Sites (plain, or TLS with tls=True); return a Server whose address and port
    reach the one started; every Site is stopped at the end."""
    started: list[Site] = []

    def start(rule: Rule, tls: bool = False, greeting: bytes = b"") -> tuple[Server, Site]:
        context = None
        if tls and not greeting:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls_files)
        site = Site(rule, context, greeting)
        started.append(site)
        port = {"https_port": site.port} if tls else {"http_port": site.port}
        return Server("t", "linux", "ssh", host="127.0.0.1", **port), site

    yield start
    for site in started:
        site.stop()


def landing(_host: str, _path: str, _n: int) -> Answer:
    return Answer(LANDING)


def site(_host: str, _path: str, _n: int) -> Answer:
    return Answer(SITE)


def targets(*domains: str, tls: bool = False) -> list[tuple]:
    return [(d, 443 if tls else 80, tls) for d in domains]


# -- what is sent ----------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True])
def test_the_landing_page_passes_and_each_request_carries_its_host_and_sni(serve, tls):
    server, site_ = serve(landing, tls=tls)
    names = ["a.test", "www.a.test", "b.test", "*.b.test"]
    check_landing(server, targets(*names, tls=tls), suspended=True, wait=0)
    seen = site_.requests()
    # Three requests per name (a fresh page, the home page a proxy may have cached (review
    # F5), a missing ACME challenge); a wildcard is asked as a fresh label of its own (F8).
    token = re.fullmatch(r"/sa-probe-([0-9a-f]{8})/page\?q=\1&x=1", seen[0][1]).group(1)
    assert sorted(h for h, _p in seen) == sorted(
        ["a.test", "www.a.test", "b.test", f"sa-probe-{token}.b.test"] * 3)
    assert sorted({p for _h, p in seen}) == ["/", f"/.well-known/acme-challenge/sa-probe-{token}",
                                             f"/sa-probe-{token}/page?q={token}&x=1"]
    for conn in site_.conns:
        assert not conn.pipelined
        if tls:
            assert conn.sni is not None and {h for h, _p in conn.requests} == {conn.sni}


def test_plain_http_keeps_one_connection_for_many_hosts(serve, monkeypatch):
    monkeypatch.setattr(lean, "WORKERS", 2)
    server, site_ = serve(site)
    names = [f"s{i}.test" for i in range(40)]
    check_landing(server, targets(*names), suspended=False, wait=0)
    assert sorted(h for h, _p in site_.requests()) == sorted(names * 2)  # a fresh path, /
    assert len(site_.conns) <= 2  # one kept-alive connection per thread
    assert not any(c.pipelined for c in site_.conns)


def test_https_opens_a_connection_per_domain_and_reuses_it_for_that_domain(serve):
    server, site_ = serve(site, tls=True)
    with Visitor(server) as visitor:
        for name in ("a.test", "a.test", "b.test", "b.test"):
            assert visitor.get(name, "/", tls=True).status_code == 200
    assert [(c.sni, len(c.requests)) for c in site_.conns] == [("a.test", 2), ("b.test", 2)]


def test_no_proxy_from_the_environment_and_no_redirect_followed(serve, monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # discard port: nothing answers
    moved = b"HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
    server, site_ = serve(lambda _h, _p, _n: Answer(moved))
    check_landing(server, targets("a.test"), suspended=False, wait=0)
    assert fetch(server, "a.test", "/x", False).status_code == 301
    assert not any(p == "/elsewhere" for _h, p in site_.requests())


def test_fetch_sends_host_and_sni_too(serve):
    server, site_ = serve(landing, tls=True)
    resp = fetch(server, "shop.test", "/?q=1", True)
    assert looks_suspended(resp) and resp.text == "suspended"
    assert [(c.sni, c.requests) for c in site_.conns] == [("shop.test", [("shop.test", "/?q=1")])]


# -- what counts as the landing page ---------------------------------------------------------

def test_a_503_without_the_landing_headers_is_not_the_landing_page(serve):
    server, _site = serve(lambda _h, _p, _n: Answer(BARE_503))
    with pytest.raises(VerifyFailed, match=r"http://a.test/ answered 503, expected the landing"):
        check_landing(server, targets("a.test"), suspended=True, wait=0)
    check_landing(server, targets("a.test"), suspended=False, wait=0)  # the site's own 503


def test_a_missing_acme_challenge_must_answer_the_landing_page_too(serve):
    def rule(_host: str, path: str, _n: int) -> Answer:
        return Answer(NOT_FOUND if path.startswith("/.well-known/") else LANDING)

    server, _site = serve(rule, tls=True)
    with pytest.raises(VerifyFailed, match=r"a.test: a missing ACME challenge answered 404"):
        check_landing(server, targets("a.test", tls=True), suspended=True, wait=0)


def test_unsuspended_the_landing_page_is_a_problem_and_a_404_is_the_site(serve):
    server, _site = serve(landing)
    with pytest.raises(VerifyFailed, match=r"expected the site, not the landing page"):
        check_landing(server, targets("a.test"), suspended=False, wait=0)
    server, _site = serve(lambda _h, _p, _n: Answer(NOT_FOUND))
    check_landing(server, targets("a.test"), suspended=False, wait=0)


def test_header_names_are_case_insensitive_and_repeated_headers_joined(serve):
    reply = (b"HTTP/1.1 503 x\r\nretry-after: 5\r\ncache-control: private\r\n"
             b"Cache-Control: no-store\r\nx-robots-tag: noindex\r\nContent-Length: 0\r\n\r\n")
    server, _site = serve(lambda _h, _p, _n: Answer(reply))
    with Visitor(server) as visitor:
        got = visitor.get("a.test", "/", tls=False)
    assert got.headers["Cache-Control"] == "private, no-store" and looks_suspended(got)


def test_the_check_is_retried_until_the_change_shows(serve):
    flip = time.monotonic() + 0.3
    server, _site = serve(lambda _h, _p, _n: Answer(LANDING if time.monotonic() > flip else SITE))
    check_landing(server, targets("a.test", "b.test"), suspended=True, wait=5)


def test_the_failure_names_at_most_five_problems(serve):
    server, _site = serve(site)
    names = [f"s{i}.test" for i in range(8)]
    with pytest.raises(VerifyFailed) as failed:
        check_landing(server, targets(*names), suspended=True, wait=0)
    assert len(str(failed.value).split("; ")) == 5


# -- no answer is a problem, never success ---------------------------------------------------

def test_a_refused_connection_is_a_problem():
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    server = Server("t", "linux", "ssh", host="127.0.0.1", http_port=port, https_port=port)
    for suspended in (True, False):
        for tls in (False, True):
            with pytest.raises(VerifyFailed, match=r"a.test \(port \d+\): no HTTP answer: "
                                                   r"ConnectionRefusedError"):
                check_landing(server, targets("a.test", tls=tls), suspended, wait=0)


@pytest.mark.parametrize("tls", [False, True])
def test_a_server_that_never_answers_is_a_problem(serve, monkeypatch, tls):
    monkeypatch.setattr(lean, "TIMEOUT", 0.3)
    server, _site = serve(lambda _h, _p, _n: Answer(None, hang=True), tls=tls)
    for suspended in (True, False):
        with pytest.raises(VerifyFailed, match=r"no HTTP answer: TimeoutError"):
            check_landing(server, targets("a.test", tls=tls), suspended, wait=0)


def test_a_server_that_closes_without_answering_is_a_problem(serve):
    server, site_ = serve(lambda _h, _p, _n: Answer(None))
    for suspended in (True, False):
        with pytest.raises(VerifyFailed, match=r"no HTTP answer: RemoteDisconnected"):
            check_landing(server, targets("a.test"), suspended, wait=0)
    assert len(site_.requests()) == 2  # a fresh connection is not retried


def test_a_cut_reply_is_a_problem(serve):
    cut = LANDING[:-4]  # Content-Length says 9, 5 come
    server, _site = serve(lambda _h, _p, _n: Answer(cut, close=True))
    with pytest.raises(VerifyFailed, match=r"no HTTP answer: IncompleteRead"):
        check_landing(server, targets("a.test"), suspended=True, wait=0)


def test_a_tls_handshake_that_fails_is_a_problem(serve):
    # Plain HTTP where TLS is expected.
    server, _site = serve(site, tls=True, greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(VerifyFailed, match=r"no HTTP answer: SSL"):
        check_landing(server, targets("a.test", tls=True), suspended=False, wait=0)


# -- kept-alive connections -------------------------------------------------------------------

def test_a_kept_alive_connection_closed_under_the_request_is_retried_once_fresh(serve):
    # The race of Apache's KeepAliveTimeout: the request went out, the server closed.
    server, site_ = serve(lambda _h, _p, n: Answer(SITE if n == 1 else None))
    with Visitor(server) as visitor:
        for name in ("a.test", "b.test", "c.test"):
            assert visitor.get(name, "/", tls=False).status_code == 200
    assert [len(c.requests) for c in site_.conns] == [2, 2, 1]


def test_a_connection_the_server_closed_while_idle_is_not_reused(serve):
    server, site_ = serve(lambda _h, _p, _n: Answer(SITE, close=True))  # no Connection: close
    with Visitor(server) as visitor:
        for name in ("a.test", "b.test"):
            assert visitor.get(name, "/", tls=False).status_code == 200
            time.sleep(0.05)
    assert [c.requests for c in site_.conns] == [[("a.test", "/")], [("b.test", "/")]]


def test_stray_bytes_on_an_idle_connection_are_never_taken_for_the_next_reply(serve):
    def rule(host: str, _path: str, _n: int) -> Answer:
        return Answer(SITE, later=LANDING) if host == "a.test" else Answer(SITE)

    server, site_ = serve(rule)
    with Visitor(server) as visitor:
        assert visitor.get("a.test", "/", tls=False).status_code == 200
        time.sleep(0.2)  # the stray landing reply is in by now
        got = visitor.get("b.test", "/", tls=False)
    assert got.status_code == 200 and not looks_suspended(got)
    assert len(site_.conns) == 2


def test_a_large_body_is_not_read_to_the_end(serve, monkeypatch):
    monkeypatch.setattr(lean, "BODY_LIMIT", 1000)
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
    server, site_ = serve(lambda _h, _p, _n: Answer(big))
    with Visitor(server) as visitor:
        for name in ("a.test", "b.test"):
            assert visitor.get(name, "/", tls=False).status_code == 200
    assert len(site_.conns) == 2  # closed after the first instead of read through


def test_visit_all_keeps_the_order_and_raises_what_work_raised(serve):
    server, _site = serve(site)
    assert visit_all(server, range(30), lambda _v, n: n * 2, workers=4) == list(range(0, 60, 2))

    def work(_visitor: Visitor, n: int) -> int:
        if n == 7:
            raise KeyError(n)
        return n

    with pytest.raises(KeyError):
        visit_all(server, range(30), work, workers=4)
