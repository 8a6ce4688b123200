"""A bare HTTP(S) client for requests that libraries will not send: no Host header, a Host
with odd case, a port or a trailing dot, a TLS name that differs from the Host, HTTP/1.0.

It connects to the test host's own address only and reads until the server closes.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

TIMEOUT = 10.0


@dataclass
class Reply:
    """A parsed HTTP reply; `headers` maps a lower-cased name to every value it had."""

    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        """Return the values of header `name` joined with ", " ("" when absent)."""
        return ", ".join(self.headers.get(name.lower(), []))

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def request(address: str, path: str = "/", host: str | None = None, *, tls: bool = False,
            sni: str | None = None, method: str = "GET", version: str = "HTTP/1.0",
            body: bytes = b"", port: int | None = None) -> Reply:
    """Send one request to `address` and return the reply.

    `host` None sends no Host header; `sni` is the TLS server name (None: none sent).
    """
    port = port or (443 if tls else 80)
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines.append("Connection: close")
    if body:
        lines += ["Content-Type: application/x-www-form-urlencoded",
                  f"Content-Length: {len(body)}"]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection((address, port), timeout=TIMEOUT) as plain:
        if not tls:
            return parse(_exchange(plain, raw))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(plain, server_hostname=sni) as sock:
            return parse(_exchange(sock, raw))


def _exchange(sock: socket.socket, raw: bytes) -> bytes:
    sock.sendall(raw)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def parse(data: bytes) -> Reply:
    """Parse a whole HTTP/1.x reply (no chunked encoding: the request said HTTP/1.0)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Reply(status, headers, body)
