"""cPanel's Web Disk (cpdavd, WebDAV over HTTPS on 2078) and what suspendacct does to it
(review F9).

Logins ([SRC] asmrdevelop/cpanel @393631a2): an account's Web Disk logins are lines of
`~/etc/webdav/shadow`, `login@domain:crypthash:days::::::md5digest` (Cpanel/WebDisk.pm:115);
the digest is MD5 of `login:cPanel:password` (Cpanel/Auth/Digest/Realm.pm: the realm is
`cPanel`), for Digest authentication. The account itself logs in with its system password,
or by Digest with its entry `user:md5digest` in /etc/digestshadow (Cpanel/Auth/Digest/DB.pm).
A field behind `*` or `!` never matches. Nobody gets in while the account is suspended
(/var/cpanel/suspended/USER, as cpsrvd).

suspendacct (scripts/suspendacct:153, 205-207, 396-440): `*LOCKED*` before fields 1 and 8
of every line of the shadow file unless there already, the file skipped when it is a
symbolic link (and written with the user's reduced privileges), and before the account's
digest entry. unsuspendacct (scripts/unsuspendacct:250, 259-261, 455-475) strips every
leading `*LOCKED*` of fields 1 and 8, and of the digest entry.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets

from . import mail, store
from .ftp import crypt_matches
from .login import QuietHandler
from .mail import LOCKED, lock_fields, unlock_fields

DIGEST_DB = "/etc/digestshadow"
REALM = "cPanel"
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


def shadow_path(user: str) -> str:
    return f"{mail.home(user)}/etc/webdav/shadow"


def _rewrite(path: str, change) -> None:  # noqa: ANN001
    lines = [":".join(change(line.split(":"))) if line.strip() else line
             for line in store.read(path).splitlines()]
    st = os.stat(path)
    store.write_atomic(path, "\n".join(lines) + ("\n" if lines else ""), mode=st.st_mode & 0o777,
                       owner=(st.st_uid, st.st_gid))


def _digest_entry(user: str, change) -> None:  # noqa: ANN001
    if not os.path.exists(DIGEST_DB):
        return
    def entry(fields: list[str]) -> list[str]:
        return change(fields) if fields[0] == user and len(fields) > 1 else fields
    _rewrite(DIGEST_DB, entry)


def suspend(user: str) -> None:
    """suspendacct's Web Disk part."""
    path = shadow_path(user)
    if os.path.isfile(path) and not os.path.islink(path):
        _rewrite(path, lock_fields)
    _digest_entry(user, lambda f: [f[0], f[1] if f[1].startswith(LOCKED) else LOCKED + f[1],
                                   *f[2:]])


def unsuspend(user: str) -> None:
    """unsuspendacct's Web Disk part."""
    path = shadow_path(user)
    if os.path.exists(path):
        _rewrite(path, unlock_fields)
    _digest_entry(user, unlock_fields)


def _owner(login: str) -> str | None:
    name, _, domain = login.lower().partition("@")
    owner = store.user_of_domain(domain) if domain else name
    if not owner or not store.USERNAME_RE.match(owner) or store.cpuser(owner) is None:
        return None
    return None if os.path.exists(f"{store.SUSPENDED_DIR}/{owner}") else owner


def _fields(owner: str, login: str) -> list[str] | None:
    if "@" not in login:
        for line in store.read(DIGEST_DB).splitlines():
            f = line.split(":")
            if f[0] == owner and len(f) > 1:
                return [login, store.system_hash(owner) or "", *[""] * 6, f[1]]
        return [login, store.system_hash(owner) or "", *[""] * 7]
    path = shadow_path(owner)
    if os.path.islink(path):
        return None  # read with the user's privileges: a link to root's file fails
    for line in store.read(path).splitlines():
        f = (line.split(":") + [""] * 9)[:9]
        if f[0].lower() == login.lower():
            return f
    return None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def authenticate(header: str, method: str) -> bool:
    """True when the Authorization header (Basic or Digest) lets a Web Disk login in."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "basic":
        import base64
        try:
            login, _, password = base64.b64decode(rest).decode().partition(":")
        except ValueError:
            return False
        owner = _owner(login)
        fields = _fields(owner, login) if owner else None
        return bool(fields) and crypt_matches(password, fields[1])
    if scheme.lower() != "digest":
        return False
    p = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
         for m in _PARAM.finditer(rest)}
    login = p.get("username", "")
    owner = _owner(login)
    fields = _fields(owner, login) if owner else None
    ha1 = fields[8] if fields else ""
    if not ha1 or ha1[0] in "!*" or p.get("realm") != REALM:
        return False
    ha2 = _md5(f"{method}:{p.get('uri', '')}")
    if p.get("qop"):
        want = _md5(f"{ha1}:{p.get('nonce')}:{p.get('nc')}:{p.get('cnonce')}:{p['qop']}:{ha2}")
    else:
        want = _md5(f"{ha1}:{p.get('nonce')}:{ha2}")
    return secrets.compare_digest(want, p.get("response", ""))


class WebdiskHandler(QuietHandler):
    """Any method: 207 (PROPFIND) or 200 when the login is let in, else 401."""

    server_version = "cpdavd-sim/11.118"

    def _answer(self) -> None:
        length = min(int(self.headers.get("Content-Length", "0") or 0), 1 << 16)
        self.rfile.read(length)
        if authenticate(self.headers.get("Authorization", ""), self.command):
            status, body = (207, b"<multistatus/>") if self.command == "PROPFIND" else (
                200, b"webdisk ok\n")
            self.send_response(status)
        else:
            body = b"unauthorized\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Digest realm="{REALM}", '
                             f'nonce="{secrets.token_hex(16)}", qop="auth", algorithm=MD5')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_PROPFIND = do_OPTIONS = _answer  # noqa: N815
