"""The cpanel driver over the WHM API 1 with a token (`cpanel.transport: api`), through the
CLI's entry point: the URL forms of reference/panels.md A1, the token only ever in the
Authorization header, a refused token exit 78, an API that does not answer exit 75; and the
`cpanel:` config block's checks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from agent import cli
from agent.cli import EXIT_BUSY, EXIT_CONFIG, EXIT_OK, TEST_NOW_ENV
from agent.cli import base as cli_base
from agent.config import config as config_mod
from agent.drivers.cpanel import whm
from agent.errors import ConfigError
from agent.journal.journal import Journal
from tests.fast.conftest import close_audit
from tests.fast.test_cpanel_fakes import FakeCpanel, FakeWhmHttp
from tests.fast.test_cpanel_ladder import START, write_config

TOKEN = "GOODTOKEN"  # noqa: S105 - the fake's
API_BLOCK = ("    cpanel:\n      transport: api\n      token_file: whm.token\n"
             "      api_timeout: 5\n")


class ApiWorld:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, token: str = TOKEN) -> None:
        self.tmp = tmp
        self.fake = FakeCpanel()
        self.http = FakeWhmHttp(self.fake.model)
        write_config(tmp, API_BLOCK)
        self.set_token(token)
        self.journals: list[Journal] = []
        monkeypatch.setattr(whm, "_CHANNELS", {})
        monkeypatch.setattr(requests, "Session", lambda: self.http)
        monkeypatch.setattr("agent.connector.local.LocalConnector", lambda _s: self.fake)
        monkeypatch.setattr("agent.steps.probes.check_landing",
                            lambda server, targets, suspended, wait=10.0: None)
        world = self

        class CliJournal(Journal):
            def __init__(self, path: str) -> None:
                super().__init__(path)
                world.journals.append(self)

        monkeypatch.setattr(cli_base, "Journal", CliJournal)

    def set_token(self, token: str) -> None:
        path = self.tmp / "whm.token"
        path.write_text(token + "\n")
        os.chmod(path, 0o600)

    def cli(self, *args: str) -> tuple[int, dict | None, str]:
        env = {TEST_NOW_ENV: repr(START), "SUSPENSION_AGENT_CALLER": None,
               "SUSPENSION_AGENT_CONFIG": str(self.tmp / "config.yaml")}
        code: int | str | None = 0
        close_audit()
        with CliRunner().isolation(env=env) as (out, err, _both):
            try:
                cli.main(["--json", *args])
            except SystemExit as exc:
                code = exc.code
        while self.journals:
            self.journals.pop().close()
        text = out.getvalue().decode()
        try:
            reply = json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            reply = None
        return int(code or 0), reply, text + err.getvalue().decode()

    def everything_written(self) -> bytes:
        """The journal, the audit log and the server's case records, as bytes."""
        found = b"".join(p.read_bytes() for p in self.tmp.rglob("*")
                         if p.is_file() and p.name != "whm.token")
        return found + b"".join(f.data for f in self.fake.files.values())


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    yield ApiWorld(tmp_path, monkeypatch)
    close_audit()


def test_the_ladder_runs_over_the_whm_api_and_the_token_stays_in_the_header(
        api: ApiWorld) -> None:
    rc, reply, out = api.cli("suspend", "cp1", "alice", "--playbook", "cp-now")
    assert rc == EXIT_OK and reply is not None and reply["state"] == "suspended", out
    assert api.http.headers["Authorization"] == f"whm root:{TOKEN}"
    assert api.http.trust_env is False  # no proxy from the environment sees the token
    urls = {u.rsplit("/", 1)[-1] for u, _p in api.http.requests}
    assert {"accountsummary", "suspend_outgoing_email", "uapi_cpanel"} <= urls
    # panel_lock came first: suspendacct needs --force, which only its script has.
    assert ("script", "suspendacct") in {c[:2] for c in api.fake.model.calls}
    uapi = [dict(p) for u, p in api.http.requests if u.endswith("/json-api/uapi_cpanel")]
    assert {"api.version": "1", "cpanel.user": "alice", "cpanel.module": "Email",
            "cpanel.function": "suspend_login", "email": "info@alice.test"} in uapi
    assert all(u.startswith("https://192.0.2.7:2087/json-api/") for u, _p in api.http.requests)
    # No panel command line ran on the server: every panel call went over HTTPS.
    assert not [a for a in api.fake.log if a[0].endswith(("whmapi1", "uapi"))]
    assert api.fake.model.accounts["alice"].suspended
    rc, reply, out = api.cli("unsuspend", "cp1", "alice")
    assert rc == EXIT_OK and reply is not None and reply["state"] == "active", out
    assert TOKEN.encode() not in api.everything_written() and TOKEN not in out


def test_dry_run_shows_the_calls_never_the_token(api: ApiWorld) -> None:
    rc, _reply, out = api.cli("--dry-run", "suspend", "cp1", "alice", "--playbook", "cp-now")
    assert rc == EXIT_OK, out
    assert "whmapi1 suspendacct user=alice" in out and "[WHM API over HTTPS]" in out
    assert TOKEN not in out and not api.fake.model.accounts["alice"].suspended


def test_a_refused_token_is_exit_78_and_changes_nothing(api: ApiWorld) -> None:
    api.set_token("WRONGTOKEN")
    rc, _reply, out = api.cli("suspend", "cp1", "alice", "--playbook", "cp-now")
    assert rc == EXIT_CONFIG, out
    assert "token was refused" in out and "WRONGTOKEN" not in out
    assert api.fake.model.calls == [] and api.fake.changing() == []


def test_a_token_refused_in_the_middle_keeps_the_journal_for_the_next_call(
        api: ApiWorld) -> None:
    assert api.cli("suspend", "cp1", "alice", "--playbook", "cp-now")[0] == EXIT_OK
    api.set_token("ROTATED")
    rc, _reply, out = api.cli("unsuspend", "cp1", "alice")
    assert rc == EXIT_CONFIG, out
    assert api.fake.model.accounts["alice"].suspended  # nothing marked stuck or undone
    api.set_token(TOKEN)
    rc, reply, out = api.cli("unsuspend", "cp1", "alice")
    assert rc == EXIT_OK and reply is not None and reply["state"] == "active", out
    assert not api.fake.model.accounts["alice"].suspended


@pytest.mark.parametrize("error", [requests.Timeout("read timed out"),
                                   requests.ConnectionError("refused")])
def test_an_api_that_does_not_answer_is_exit_75(api: ApiWorld, error: Exception) -> None:
    api.http.raise_ = error
    rc, _reply, out = api.cli("suspend", "cp1", "alice", "--playbook", "cp-now")
    assert rc == EXIT_BUSY, out
    assert "retry later" in out and TOKEN not in out


def test_an_untrusted_certificate_is_a_config_error(api: ApiWorld) -> None:
    api.http.raise_ = requests.exceptions.SSLError("certificate verify failed")
    rc, _reply, out = api.cli("suspend", "cp1", "alice")
    assert rc == EXIT_CONFIG and "ca_file" in out, out


def test_uapi_through_whm_needs_both_envelopes_to_say_success() -> None:
    call = whm.ApiCall("uapi", "Email::suspend_login", (("email", "a@b.test"),), user="u")
    ok = {"metadata": {"result": 1}, "data": {"uapi": {"status": 1, "errors": None,
                                                       "data": None}}}
    assert whm.judge(call, ok) is None
    inner_failed = {"metadata": {"result": 1}, "data": {"uapi": {
        "status": 0, "errors": ["You do not have the feature"], "data": None}}}
    with pytest.raises(whm.ApiRefused, match="do not have the feature"):
        whm.judge(call, inner_failed)
    with pytest.raises(whm.ApiRefused, match="Access denied"):
        whm.judge(call, {"metadata": {"result": 0, "reason": "Access denied"}, "data": None})


def test_api_transport_needs_an_owner_only_token_file(tmp_path: Path) -> None:
    write_config(tmp_path, API_BLOCK)
    with pytest.raises(ConfigError, match="token_file"):
        config_mod.load(str(tmp_path / "config.yaml"))  # the file does not exist
    token = tmp_path / "whm.token"
    token.write_text("x\n")
    os.chmod(token, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        config_mod.load(str(tmp_path / "config.yaml"))
    os.chmod(token, 0o600)
    s = config_mod.load(str(tmp_path / "config.yaml")).servers["cp1"].cpanel
    assert s.transport == "api" and s.token_file == str(token) and s.api_timeout == 5


def test_cpanel_block_problems_are_all_reported(tmp_path: Path) -> None:
    write_config(tmp_path, "    cpanel:\n      transport: ftp\n      api_port: 0\n"
                 "      bogus: 1\n      ca_file: nowhere.pem\n")
    with pytest.raises(ConfigError) as found:
        config_mod.load(str(tmp_path / "config.yaml"))
    text = "; ".join(found.value.problems)
    for needle in ("cpanel.transport", "cpanel.api_port", "cpanel.bogus", "cpanel.ca_file"):
        assert needle in text, text
