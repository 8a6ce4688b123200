"""The lean way to ask a server many HTTP(S) questions (agent/steps/probes.py has why):
`Visitor` holds one visitor's connections (plain HTTP: one keep-alive connection for every
Host; HTTPS: one per domain, SNI set, all sharing one SSL context that verifies nothing),
and `visit_all` runs jobs on a few threads, each with its own Visitor. Requests go to
`server.address` with Host set, never through a proxy, and follow no redirects."""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from agent.config.servers import Server

# What a probe that could not see the server's answer raises (refused, reset, timeout, TLS
# failure, a malformed or cut reply, a name that cannot go into a Host header or SNI): a
# problem for the caller, never a success.
PROBE_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException,
                                                 ValueError)
TIMEOUT = 5.0
# Threads of one check (visit_all): on a 2-core machine 8 keep both cores busy (a TLS handshake runs
# without the GIL); 16 only added GIL hand-offs (measured: ~10-40% more CPU, no faster). A
# target that hangs holds one thread for TIMEOUT while the others go on.
WORKERS = 8
# A body beyond this is not read to the end: the connection is closed instead (a customer's
# page can be large; the checks are on status and headers, and reading it all costs CPU).
BODY_LIMIT = 256 * 1024
# How much of a body a Reply keeps (the landing page check reads its start).
HEAD_BYTES = 4096
_HEADERS = {"Accept": "*/*", "User-Agent": "suspension-agent-probe"}


class Headers(Mapping[str, str]):
    """A reply's headers by name, case-insensitively; a repeated header's values joined with
    ", " (as requests shows them, so both paths judge a reply alike)."""

    def __init__(self, message: http.client.HTTPMessage) -> None:
        joined: dict[str, str] = {}
        for name, value in message.items():
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        self._by_name = joined

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


@dataclass(frozen=True)
class Reply:
    """The status and headers of one answer (the body was read, or its connection closed),
    and the start of its body (`head`, up to HEAD_BYTES: what tells a landing page from
    Apache's own error text)."""

    status_code: int
    headers: Headers
    head: bytes = b""

    @property
    def text(self) -> str:
        return self.head.decode("utf-8", "replace")


# -- the lean path ---------------------------------------------------------------------------

def _tls_context() -> ssl.SSLContext:
    # Nothing is verified (the landing page answers for every certificate state, and the
    # test hosts' certificates are self-signed), so no CA store is loaded: loading it (~30 ms
    # of CPU here) for every connection was most of the old HTTPS cost. One context for the
    # process, made at import (microseconds; no lock needed around a lazy one).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


_TLS = _tls_context()


class _TLSConnection(http.client.HTTPConnection):
    """An HTTPS connection to the server's address with SNI = the domain (and the Host
    header the caller sets), through the process's one SSL context."""

    def __init__(self, address: str, port: int, domain: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout)
        self.domain = domain

    def connect(self) -> None:
        super().connect()  # TCP, with TCP_NODELAY
        self.sock = _TLS.wrap_socket(self.sock, server_hostname=self.domain)


def _quiet(sock: socket.socket) -> bool:
    """Return True when a kept-alive connection has nothing to read: no reply is in flight,
    so nothing read from it can be the answer to another request; a server that closed it
    (EOF) or sent stray bytes makes it readable, and it is not reused."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    poller = select.poll()  # not select(): no limit on the descriptor's number
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)


class Visitor:
    """One visitor's connections to one server, for one thread at a time: a keep-alive
    HTTP connection for every domain, and an HTTPS connection for the last domain asked.

    One request is in flight per connection: `get` sends, then reads the whole reply before
    it returns, so replies cannot be paired with the wrong request.
    """

    def __init__(self, server: Server, timeout: float = TIMEOUT) -> None:
        self._server = server
        self._timeout = timeout
        self._plain: http.client.HTTPConnection | None = None
        self._tls: _TLSConnection | None = None

    def get(self, domain: str, path: str, tls: bool) -> Reply:
        """GET `path` of `domain` (Host and, for TLS, SNI = `domain`) and return the reply.

        A kept-alive connection the server closed meanwhile is retried once on a fresh one;
        any other failure (and a fresh connection's) raises one of PROBE_ERRORS.
        """
        conn, reused = self._connection(domain, tls)
        try:
            return self._ask(conn, domain, path)
        except (ConnectionError, http.client.BadStatusLine, ssl.SSLEOFError):
            # RemoteDisconnected, reset, broken pipe: the race of an idle close (Apache's
            # KeepAliveTimeout) with our request; a GET is safe to send again.
            if not reused:
                raise
        conn, _reused = self._connection(domain, tls)
        return self._ask(conn, domain, path)

    def close(self) -> None:
        """Close every connection this visitor holds."""
        for conn in (self._plain, self._tls):
            if conn is not None:
                conn.close()
        self._plain = self._tls = None

    def __enter__(self) -> Visitor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _connection(self, domain: str, tls: bool) -> tuple[http.client.HTTPConnection, bool]:
        """Return a connection for `domain` and whether it carried an earlier request."""
        server = self._server
        if tls:
            if self._tls is None or self._tls.domain != domain:
                if self._tls is not None:
                    self._tls.close()
                self._tls = _TLSConnection(server.address, server.https_port, domain,
                                           self._timeout)
            conn: http.client.HTTPConnection = self._tls
        else:
            if self._plain is None:
                self._plain = http.client.HTTPConnection(server.address, server.http_port,
                                                         timeout=self._timeout)
            conn = self._plain
        if conn.sock is not None and not _quiet(conn.sock):
            conn.close()
        if conn.sock is None:
            try:
                conn.connect()
            except BaseException:
                conn.close()  # a TLS handshake that failed leaves the bare TCP socket
                raise
            return conn, False
        return conn, True

    def _ask(self, conn: http.client.HTTPConnection, domain: str, path: str) -> Reply:
        try:
            conn.request("GET", path, headers={"Host": domain, **_HEADERS})
            resp = conn.getresponse()
            head = bytearray()
            if not _consume(resp, head):
                conn.close()  # a large body: cheaper to reconnect than to read it all
            return Reply(resp.status, Headers(resp.msg), bytes(head))
        except BaseException:
            conn.close()  # its state is unknown: never reuse it
            raise


def _consume(resp: http.client.HTTPResponse, head: bytearray) -> bool:
    """Read a reply's body to its end, so its connection can carry the next request, its
    first HEAD_BYTES into `head`; return False (nothing more read) once it is longer than
    BODY_LIMIT. A body cut short by the server raises IncompleteRead: a reply that broke
    off is not an answer."""
    if resp.length is not None and resp.length > BODY_LIMIT:
        return False
    left = BODY_LIMIT
    while not resp.isclosed():  # http.client marks the body's end (or EOF) by closing it
        if left <= 0:
            return False
        chunk = resp.read(min(left, 64 * 1024))
        head += chunk[:max(0, HEAD_BYTES - len(head))]
        left -= len(chunk)
        if not chunk and not resp.isclosed():
            return False
    if resp.length:  # read(amt) returns short at EOF instead of raising
        raise http.client.IncompleteRead(b"", resp.length)
    return True


T = TypeVar("T")
R = TypeVar("R")


def visit_all(server: Server, jobs: Iterable[T], work: Callable[[Visitor, T], R],
              workers: int = WORKERS, timeout: float = TIMEOUT) -> list[R]:
    """Return `work(visitor, job)` for every job, in the jobs' order.

    The jobs run on at most `workers` threads, each with its own Visitor (closed at the
    end), taking the next job as it finishes one: a slow domain holds up one thread, and
    the whole waits for the slowest, not for the sum. An exception in `work` is raised here
    after every thread has stopped.
    """
    todo = list(enumerate(jobs))
    if not todo:
        return []
    results: list = [None] * len(todo)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        with Visitor(server, timeout) as visitor:
            while not errors:
                with lock:
                    if not todo:
                        return
                    index, job = todo.pop()
                try:
                    results[index] = work(visitor, job)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    errors.append(exc)

    todo.reverse()  # pop() from the end takes the jobs in their order
    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(max(1, min(workers, len(todo))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
