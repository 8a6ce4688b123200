"""WHM API 1 over HTTPS on port 2087 (panels.md A1, A2): a small threaded server.

GET or POST /json-api/FUNCTION?api.version=1&key=value (also after a /cpsessNNNN/ prefix),
`Authorization: whm USER:TOKEN` checked against sim/tokens.py: a missing or bad token is
HTTP 403; everything else is HTTP 200 with the WHM envelope (errors as metadata.result=0).
"""

from __future__ import annotations

import json
import re
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import login, tokens, webdisk, whm

CERT = "/etc/ssl/certs/testhost.pem"
KEY = "/etc/ssl/private/testhost.key"
_PATH = re.compile(r"^(?:/cpsess\d+)?/json-api/([A-Za-z0-9_]+)$")
MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    """One request: authenticate, parse, call the shared WHM function table."""

    server_version = "cpsrvd-sim/11.118"
    protocol_version = "HTTP/1.1"
    timeout = 60  # a silent client ties up only its own thread, and not for ever

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _caller(self) -> whm.Caller | None:
        header = self.headers.get("Authorization", "")
        scheme, _, cred = header.partition(" ")
        if scheme.lower() != "whm" or ":" not in cred:
            return None
        user, _, token = cred.strip().partition(":")
        acls = tokens.check(user, token)
        return None if acls is None else whm.Caller(user=user, acls=acls)

    def _handle(self, body: str) -> None:
        parts = urlsplit(self.path)
        match = _PATH.match(parts.path)
        if not match:
            self._send(404, b"Not found\n", "text/plain")
            return
        caller = self._caller()
        if caller is None:
            self._send(403, b"Access denied\n", "text/plain")
            return
        args = dict(parse_qsl(parts.query, keep_blank_values=True))
        args.update(parse_qsl(body, keep_blank_values=True))
        function = match.group(1)
        if args.pop("api.version", None) != "1":
            # Without api.version=1 real WHM answers the older API 0; not simulated.
            reply = whm.envelope(function, 0, "This simulator serves only api.version=1.")
        else:
            reply = whm.call(function, args, caller)
        self._send(200, json.dumps(reply, ensure_ascii=False).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802
        """GET /json-api/FUNCTION?..."""
        self._handle("")

    def do_POST(self) -> None:  # noqa: N802
        """POST /json-api/FUNCTION with a form body."""
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length > MAX_BODY:
            self._send(413, b"Too large\n", "text/plain")
            return
        self._handle(self.rfile.read(length).decode("utf-8", errors="replace"))


def _https(address: str, port: int, handler: type) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer((address, port), handler)
    httpd.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERT, KEY)
    # The TLS handshake happens in each request's thread, not in the accept loop.
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True,
                                       do_handshake_on_connect=False)
    return httpd


def serve(address: str = "0.0.0.0", port: int = 2087) -> None:  # noqa: S104
    """Serve WHM's API (2087), cPanel's login (2083, sim/login.py), Web Disk (2078,
    sim/webdisk.py) and webmail (2095, 2096: a login page) until killed."""
    for other, handler in ((2083, login.LoginHandler), (2078, webdisk.WebdiskHandler),
                           (2096, login.WebmailHandler)):
        threading.Thread(target=_https(address, other, handler).serve_forever,
                         daemon=True).start()
    webmail = ThreadingHTTPServer((address, 2095), login.WebmailHandler)  # plain HTTP
    webmail.daemon_threads = True
    threading.Thread(target=webmail.serve_forever, daemon=True).start()
    _https(address, port, Handler).serve_forever()
