"""Fast tier: ApiCall judges a panel's reply by its own envelope (reference/panels.md A2) and
never shows a secret."""

from __future__ import annotations

import json

import pytest

from agent.connector.base import Connector, Result
from agent.errors import StepError
from agent.steps.actions import carry_out
from agent.steps.api import ApiCall, ApiRefused


class Replies(Connector):
    """Answers every command with the next canned (exit status, stdout); records argv."""

    name = "cpanel1"

    def __init__(self, *replies: tuple[int, object]) -> None:
        self.replies = list(replies)
        self.argvs: list[list[str]] = []

    def _exec(self, argv: list[str], stdin: bytes | None, timeout: float) -> Result:
        self.argvs.append(argv)
        rc, body = self.replies.pop(0)
        out = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Result(rc, out, b"")


WHM_OK = {"metadata": {"result": 1, "reason": "OK", "command": "suspendacct", "version": 1},
          "data": {}}
WHM_NO = {"metadata": {"result": 0, "reason": "Account does not exist.", "version": 1}}
UAPI_OK = {"apiversion": 3, "func": "suspend_login", "module": "Email",
           "result": {"data": None, "errors": None, "messages": None, "status": 1}}
UAPI_NO = {"apiversion": 3, "result": {"data": None, "errors": ["You do not have an email "
           "account named x@y.test."], "status": 0}}


def test_whm_call_runs_the_documented_command_line_and_returns_data():
    call = ApiCall("whmapi1", "suspendacct", (("user", "alice"), ("reason", "unpaid 42")),
                   verify="listsuspended")
    conn = Replies((0, WHM_OK))
    assert call.carry_out(conn) == {}
    assert conn.argvs == [["whmapi1", "--output=json", "suspendacct", "user=alice",
                           "reason=unpaid 42"]]
    assert call.describe() == ["api   whmapi1 suspendacct user=alice 'reason=unpaid 42'  "
                               "(verified by re-reading listsuspended)"]


@pytest.mark.parametrize("reply, text", [
    ((0, WHM_NO), "Account does not exist."),       # exit 0, result 0: the envelope decides
    ((0, {"metadata": {"reason": "x"}}), "no metadata.result"),
    ((0, b"<html>500</html>"), "no JSON reply"),
    ((255, b""), "no JSON reply"),
])
def test_whm_failures_are_refusals(reply, text):
    with pytest.raises(ApiRefused, match=text):
        ApiCall("whmapi1", "suspendacct", (("user", "alice"),)).carry_out(Replies(reply))


def test_uapi_call_and_its_failures():
    call = ApiCall("uapi", "Email::suspend_login", (("email", "info@shop.test"),),
                   verify="Email::list_pops", user="alice")
    conn = Replies((0, UAPI_OK), (0, UAPI_NO), (0, {"result": {"status": 1, "errors": ["x"]}}))
    assert call.carry_out(conn) is None
    assert conn.argvs[0] == ["uapi", "--output=json", "--user=alice", "Email", "suspend_login",
                             "email=info@shop.test"]
    with pytest.raises(ApiRefused, match="You do not have an email account"):
        call.carry_out(conn)
    with pytest.raises(ApiRefused, match="failed: x"):  # status 1 with errors is a failure
        call.carry_out(conn)


def test_secrets_are_never_shown_nor_put_on_a_command_line():
    call = ApiCall("whmapi1", "passwd", (("user", "alice"), ("password", "hunter2")))
    assert "hunter2" not in " ".join(call.describe()) and "password=***" in call.describe()[0]
    conn = Replies((0, WHM_OK))
    with pytest.raises(StepError, match="secret parameters") as refused:
        carry_out(conn, [call])
    assert "hunter2" not in str(refused.value) and conn.argvs == []
