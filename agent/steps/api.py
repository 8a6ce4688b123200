"""ApiCall: one call of a panel's API as a plan action, judged by the panel's own envelope.

A panel API answers "success" in its JSON, not in an exit status or HTTP code: WHM API 1 is
always HTTP 200 with the outcome in `metadata.result` (1/0) and a message in
`metadata.reason` that may be set even on success; UAPI puts it in `result.status` (1/0)
with `result.errors` (reference/panels.md A2). Both also answer "success" when nothing
happened (A8, C2.5), so every call names what will be re-read to verify it, and the step's
verify re-reads it. Parameters whose name says secret are never shown (dry run, audit,
errors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.connector import Connector, quote
from agent.errors import StepError

_SECRET_WORDS = ("token", "password", "pass", "secret", "key")


class ApiRefused(StepError):
    """The panel's envelope says the call failed (or the reply is not an envelope)."""


def _shown(name: str, value: str) -> str:
    secret = any(word in name.lower() for word in _SECRET_WORDS)
    return f"{name}=***" if secret else quote([f"{name}={value}"])


def check_whm(reply: Any, function: str) -> Any:
    """Return `data` of a WHM API 1 reply; raise ApiRefused unless metadata.result is 1."""
    meta = reply.get("metadata") if isinstance(reply, dict) else None
    if not isinstance(meta, dict) or "result" not in meta:
        raise ApiRefused(f"whmapi1 {function}: the reply has no metadata.result")
    if str(meta["result"]) != "1":
        raise ApiRefused(f"whmapi1 {function} failed: {meta.get('reason') or 'no reason given'}")
    return reply.get("data")


def check_uapi(reply: Any, function: str) -> Any:
    """Return `result.data` of a UAPI reply; raise ApiRefused unless result.status is 1 and
    result.errors is empty."""
    result = reply.get("result") if isinstance(reply, dict) else None
    if not isinstance(result, dict) or "status" not in result:
        raise ApiRefused(f"uapi {function}: the reply has no result.status")
    if str(result["status"]) != "1" or result.get("errors"):
        errors = result.get("errors") or ["no error given"]
        raise ApiRefused(f"uapi {function} failed: {'; '.join(map(str, errors))[:300]}")
    return result.get("data")


@dataclass(frozen=True)
class ApiCall:
    """Call `function` of WHM API 1 (`api="whmapi1"`) or UAPI (`api="uapi"`, as `user`) on
    the server's own command line, JSON out, and require the envelope to say success.

    `verify` says what the step re-reads afterwards to see the effect (shown in plans).
    """

    api: str
    function: str
    params: tuple[tuple[str, str], ...] = ()
    verify: str = ""
    user: str | None = None
    binary: str | None = None  # full path when not on PATH (CloudLinux, A3)

    def argv(self) -> list[str]:
        if any(_shown(k, "").endswith("=***") for k, _v in self.params):
            # A command line is visible to every process on the server (ps): a secret
            # parameter goes over the HTTP API with a token, never here.
            raise StepError(f"{self.api} {self.function}: secret parameters cannot go on a "
                            "command line")
        args = [f"{k}={v}" for k, v in self.params]
        if self.api == "whmapi1":
            return [self.binary or "whmapi1", "--output=json", self.function, *args]
        if self.api == "uapi" and self.user:
            module, _, func = self.function.partition("::")
            return [self.binary or "uapi", "--output=json", f"--user={self.user}", module,
                    func, *args]
        raise StepError(f"unknown API {self.api!r} (or uapi without a user)")

    def describe(self) -> list[str]:
        who = f" as {self.user}" if self.user else ""
        shown = " ".join(_shown(k, v) for k, v in self.params)
        return [f"api   {self.api} {self.function}{who} {shown}".rstrip()
                + (f"  (verified by re-reading {self.verify})" if self.verify else "")]

    def carry_out(self, conn: Connector) -> Any:
        """Run the call; return its payload, or raise ApiRefused (secrets never shown)."""
        # Every exit status is accepted here: the envelope, not the status, decides (whmapi1
        # exits 0 on failure), and a CommandFailed would only repeat the command line.
        result = conn.run(self.argv(), ok_codes=tuple(range(256)))
        try:
            reply = json.loads(result.stdout)
        except ValueError as exc:
            raise ApiRefused(f"{self.api} {self.function}: no JSON reply (exit {result.rc})"
                             ) from exc
        check = check_whm if self.api == "whmapi1" else check_uapi
        return check(reply, self.function)
