"""How a panel call reaches a cPanel server: whmapi1/uapi on its command line, or the WHM
API 1 over HTTPS with a token. Both are judged by the same envelopes (reference/panels.md A2).

`PanelCall` is the plan action: it shows the call as agent.steps.api.ApiCall does (never a
secret) and carries it out over the channel the server's config chooses. The token never
appears in a plan, a log line, an error or the journal: it is read from its owner-only file
when a channel is made and goes only into the Authorization header.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from agent.connector import Connector
from agent.drivers.cpanel.settings import CpanelSettings
from agent.errors import AuthFailed, Unreachable
from agent.steps.api import ApiCall, ApiRefused, check_uapi, check_whm


class TokenRefused(AuthFailed):
    """WHM refused the API token, or its TLS certificate is not trusted (exit 78)."""


class Channel(Protocol):
    """Carries one ApiCall to the panel and returns its checked payload."""

    via: str

    def call(self, conn: Connector, call: ApiCall) -> Any: ...


class CliChannel:
    """whmapi1 / uapi as root on the server, JSON out (A3); the connector runs them."""

    via = "cli"

    def call(self, conn: Connector, call: ApiCall) -> Any:
        return call.carry_out(conn)


class HttpsChannel:
    """WHM API 1 over HTTPS (A1): `json-api/FUNCTION?api.version=1&...`, UAPI through
    `uapi_cpanel` with its payload in `data.uapi`; TLS verified (system CAs or `ca_file`)."""

    via = "api"

    def __init__(self, server_name: str, host: str, s: CpanelSettings) -> None:
        self.server_name = server_name
        self.base = f"https://{host}:{s.api_port}/json-api/"
        self.verify: bool | str = s.ca_file or True
        self.timeout = s.api_timeout
        self._header = f"whm {s.api_user}:{_read_token(s.token_file)}"
        self._local = threading.local()  # reverts run side by side: a session per thread

    def _session(self) -> Any:
        import requests  # only when a server uses the API

        if getattr(self._local, "session", None) is None:
            session = requests.Session()
            session.trust_env = False  # never a proxy from the environment: the token goes
            session.headers["Authorization"] = self._header  # to this server only
            self._local.session = session
        return self._local.session

    def url_and_params(self, call: ApiCall) -> tuple[str, list[tuple[str, str]]]:
        """Return the URL and query of `call` (without the token, which is a header)."""
        params = [("api.version", "1")]
        if call.api == "whmapi1":
            return self.base + call.function, params + list(call.params)
        module, _, func = call.function.partition("::")
        params += [("cpanel.user", call.user or ""), ("cpanel.module", module),
                   ("cpanel.function", func)]
        return self.base + "uapi_cpanel", params + list(call.params)

    def call(self, conn: Connector, call: ApiCall) -> Any:
        import requests

        url, params = self.url_and_params(call)
        what = f"WHM API {call.function} on {self.server_name}"
        try:
            resp = self._session().get(url, params=params, timeout=self.timeout,
                                       verify=self.verify, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise TokenRefused(f"{what}: the TLS certificate is not trusted ({_kind(exc)}); "
                               "set cpanel.ca_file to the server's CA") from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise Unreachable(f"{what}: no answer within {self.timeout}s ({_kind(exc)}); "
                              "retry later") from None
        if resp.status_code in (401, 403):
            raise TokenRefused(f"{what}: HTTP {resp.status_code}, the API token was refused; "
                               "check cpanel.token_file and cpanel.api_user")
        if resp.status_code != 200:
            raise ApiRefused(f"{what}: HTTP {resp.status_code}")
        try:
            reply = json.loads(resp.content)
        except ValueError:
            raise ApiRefused(f"{what}: the reply is not JSON") from None
        return judge(call, reply)


def judge(call: ApiCall, reply: Any) -> Any:
    """Return the payload of an HTTPS reply to `call`; raise ApiRefused on a failed envelope.

    A UAPI call through WHM has two envelopes: uapi_cpanel's metadata.result, then the UAPI
    result in data.uapi (A1, A2); both must say success.
    """
    if call.api == "whmapi1":
        return check_whm(reply, call.function)
    data = check_whm(reply, "uapi_cpanel")
    inner = data.get("uapi") if isinstance(data, dict) else None
    if isinstance(inner, dict) and "result" in inner and "status" not in inner:
        inner = inner["result"]
    return check_uapi({"result": inner}, call.function)


def _kind(exc: BaseException) -> str:
    # The class only: requests' messages repeat the URL with its query.
    return exc.__class__.__name__


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as exc:
        raise TokenRefused(f"cannot read the WHM API token file {path}: {exc.strerror}"
                           ) from None
    if not token or any(c.isspace() for c in token):
        raise TokenRefused(f"the WHM API token file {path} must hold the token alone")
    return token


_CHANNELS: dict[tuple, Channel] = {}
_LOCK = threading.Lock()


def channel(server: Any) -> Channel:
    """Return the channel `server`'s config chooses (one per server and settings)."""
    s: CpanelSettings = server.cpanel
    if s.transport != "api":
        return CliChannel()
    try:  # a token replaced on disk is read again (a long-running caller, tests)
        st = os.stat(s.token_file)
        stamp: tuple = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        stamp = ()
    key = (server.name, server.host, s, stamp)
    with _LOCK:
        if key not in _CHANNELS:
            _CHANNELS[key] = HttpsChannel(server.name, s.api_host or server.host, s)
        return _CHANNELS[key]


@dataclass(frozen=True)
class PanelCall:
    """A plan action: one WHM API 1 / UAPI call, shown like ApiCall, sent over `via`."""

    call: ApiCall
    via: Channel

    def describe(self) -> list[str]:
        suffix = " [WHM API over HTTPS]" if self.via.via == "api" else ""
        return [line + suffix for line in self.call.describe()]

    def carry_out(self, conn: Connector) -> Any:
        return self.via.call(conn, self.call)
