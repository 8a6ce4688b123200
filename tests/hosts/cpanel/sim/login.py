"""cPanel's login on port 2083 (cpsrvd), enough to check from outside who can still log in.

POST /login/?login_only=1 with the form fields `user` and `pass` answers, as cpsrvd does,
HTTP 200 `{"status": 1, "security_token": "/cpsessN", ...}` on success and HTTP 401
`{"status": 0, "message": "invalid_login"}` otherwise. Who gets in:
- the account itself: its system password hash (crypt; a hash behind `!` or `*` never
  matches) and no /var/cpanel/suspended/USER (scripts/suspendacct writes that file first
  "to ensure cpsrvd will not allow any more logins");
- a team user, as `NAME@DOMAIN` with the owner's primary domain (Cpanel/Team/Config.pm
  _check_primary_domain), by the password in /var/cpanel/team/OWNER (team.login: a
  password behind `!!`, suspended or expired, never matches), while the owner is not
  suspended.
"""

from __future__ import annotations

import json
import os
import secrets
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl

from . import store, team
from .ftp import crypt_matches


def authenticate(user: str, password: str) -> bool:
    """True when cpsrvd would let `user` (an account or NAME@DOMAIN) in with `password`."""
    name, _, domain = user.lower().partition("@")
    owner = store.user_of_domain(domain) if domain else name
    if not owner or not store.USERNAME_RE.match(owner) or store.cpuser(owner) is None:
        return False
    if os.path.exists(f"{store.SUSPENDED_DIR}/{owner}"):
        return False
    if not domain:
        return crypt_matches(password, store.system_hash(owner) or "")
    if (store.cpuser(owner) or {}).get("DNS", "").lower() != domain:
        return False
    return team.login(owner, name, password)


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, no log, and a silent client ties up only its own thread, not for ever."""

    server_version = "cpsrvd-sim/11.118"
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class LoginHandler(QuietHandler):
    """POST /login/ only."""

    def _send(self, status: int, reply: dict) -> None:
        body = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        """POST /login/?login_only=1 with user and pass."""
        length = min(int(self.headers.get("Content-Length", "0") or 0), 1 << 16)
        form = dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace")))
        if not self.path.startswith("/login/"):
            self._send(404, {"status": 0, "message": "not found"})
        elif authenticate(form.get("user", ""), form.get("pass", "")):
            token = f"/cpsess{secrets.randbelow(10**10):010d}"
            self._send(200, {"status": 1, "security_token": token,
                             "redirect": f"{token}/frontend/jupiter/index.html"})
        else:
            self._send(401, {"status": 0, "message": "invalid_login"})


class WebmailHandler(QuietHandler):
    """cpsrvd's webmail ports (2095 HTTP, 2096 HTTPS): its login page to anyone who asks,
    which is all a probe of the ports and of webmail.DOMAIN needs."""

    def do_GET(self) -> None:  # noqa: N802
        """Any path: 200 and the login page's title."""
        body = b"<title>Webmail Login (cPanel simulator)</title>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
