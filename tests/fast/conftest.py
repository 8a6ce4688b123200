"""Fixtures of the fast tier: a config and playbooks in tmp_path, the fake server, a fixed
clock, engines wired to the fake, and the CLI run in-process (no root, no servers)."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog
from click.testing import CliRunner

from agent import cli, failpoints
from agent.cli import TEST_NOW_ENV
from agent.cli import base as cli_base
from agent.config import config as config_mod
from agent.engine.engine import Engine
from agent.journal import audit
from agent.journal.journal import Journal
from tests.fast import fake_steps
from tests.fast.fakes import Crash, FakeConnector

START = 1_700_000_000.0
HOUR = 3600.0
ORIGINAL_LANDING = b"<VirtualHost *:80> # the customer's own, kept byte for byte\n"
PLAYBOOKS = {
    # The usual shape: backup and landing page now, mail a day later, logins after three.
    "ladder": "stages:\n"
              "  - after: 0s\n    steps: [backup, landing_page]\n"
              "  - after: 24h\n    steps: [{mail_block: {incoming: accept}}]\n"
              "  - after: 72h\n    steps: [ftp_lock, db_lock, {panel_lock: {kill_processes: "
              "false}}]\n",
    "now": "stages:\n  - after: 0s\n    steps: [backup, landing_page, mail_block, ftp_lock]\n",
    "reuse": "stages:\n  - after: 0s\n    steps: [{backup: {reuse_if_newer_than: 1h}}, "
             "landing_page]\n",
    "firewall": "stages:\n  - after: 0s\n    steps: [backup, firewall_block]\n",
    # A whole server's: mail ports a day after the websites.
    "server": "stages:\n  - after: 0s\n    steps: [backup, landing_page]\n"
              "  - after: 24h\n    steps: [firewall_block]\n",
    "broken": "stages: [\n",
}


@dataclass
class Clock:
    t: float = START

    def __call__(self) -> float:
        return self.t


@dataclass
class World:
    """One agent installation in tmp_path and the fake server it manages."""

    tmp: Path
    fake: FakeConnector
    clock: Clock
    engines: list[Engine] = field(default_factory=list)
    cli_journals: list[Journal] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.tmp / "config.yaml"

    @property
    def state_db(self) -> Path:
        return self.tmp / "state" / "state.db"

    def engine(self, caller: str = "admin:test") -> Engine:
        """A fresh engine (as one CLI call would make) reaching the fake server."""
        cfg = config_mod.load(str(self.config_path))
        engine = Engine(cfg, Journal(cfg.state_db), caller, now=self.clock,
                        connector=lambda _server: self.fake)
        self.engines.append(engine)
        return engine

    def step_files(self) -> dict[str, tuple[bytes, int, int, int]]:
        """Return the files the fake steps manage (content, mode, uid, gid)."""
        return {p: v for p, v in self.fake.snapshot().items() if p.startswith("/etc/fake/")}

    def rows(self, table: str) -> list[dict]:
        if not self.state_db.exists():
            return []
        db = sqlite3.connect(self.state_db)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY 1")]  # noqa: S608
        finally:
            db.close()

    def states(self) -> dict[str, str]:
        """Return each step's latest journal state."""
        return {r["step"]: r["state"] for r in self.rows("changes")}

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
            engine.journal.close()
        self.engines.clear()

    def cli(self, *args: str, as_json: bool = True, env: dict | None = None
            ) -> tuple[int, dict | None, str]:
        """Run the CLI's entry point in-process; return (exit code, JSON reply, output)."""
        full = {TEST_NOW_ENV: repr(self.clock.t), "SUSPENSION_AGENT_CALLER": None,
                "SUSPENSION_AGENT_CONFIG": str(self.config_path), **(env or {})}
        code: int | str | None = 0
        close_audit()  # the CLI configures its own
        with CliRunner().isolation(env=full) as (out, err, _both):
            try:
                cli.main(["--json", *args] if as_json else list(args))
            except SystemExit as exc:
                code = exc.code
        # One CLI call is one process: the journal it opened (the CLI never closes it) must
        # not outlive the call, or SQLite would share its cached state with the next one.
        while self.cli_journals:
            self.cli_journals.pop().close()
        text = out.getvalue().decode()
        try:
            reply = json.loads(text) if as_json and text.strip() else None
        except json.JSONDecodeError:
            reply = None
        return int(code or 0), reply, text + err.getvalue().decode()


def write_config(tmp: Path) -> None:
    books = tmp / "playbooks"
    books.mkdir(exist_ok=True)
    for name, text in PLAYBOOKS.items():
        (books / f"{name}.yaml").write_text(text)
    lines = [f"state_db: {tmp / 'state' / 'state.db'}", f"audit_log: {tmp / 'audit.jsonl'}",
             "lock_wait_seconds: 0", f"playbooks_dir: {books}", "default_playbook: ladder",
             "protected_accounts: [root]",
             "servers:", "  web1:", "    panel: linux", "    transport: local",
             "    protected_accounts: [backup]", "    linux:", "      getent: getent"]
    (tmp / "config.yaml").write_text("\n".join(lines) + "\n")


def close_audit() -> None:
    """Close the audit log stream audit.configure opened (each configure opens a new one)."""
    stream = getattr(structlog.get_config()["logger_factory"], "_file", None)
    structlog.reset_defaults()
    if stream is not None and stream not in (sys.stdout, sys.stderr, sys.__stderr__):
        stream.close()


def make_world(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Return a fresh installation in `tmp` with the fake steps registered and the CLI wired
    to its fake server (monkeypatch undoes both)."""
    tmp.mkdir(parents=True, exist_ok=True)
    fake_steps.install(monkeypatch)
    fake = FakeConnector()
    fake.put(fake_steps.step_path("landing_page", "alice"), ORIGINAL_LANDING, 0o640)
    fake.files[fake_steps.step_path("landing_page", "alice")].uid = 33
    # The CLI builds its own Engine with the real connect(): it gets the fake from here.
    monkeypatch.setattr("agent.connector.local.LocalConnector", lambda _server: fake)
    write_config(tmp)
    close_audit()
    audit.configure(str(tmp / "audit.jsonl"))
    world = World(tmp, fake, Clock())

    class CliJournal(Journal):
        def __init__(self, path: str) -> None:
            super().__init__(path)
            world.cli_journals.append(self)

    monkeypatch.setattr(cli_base, "Journal", CliJournal)
    return world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.delenv("SUSPENSION_AGENT_FAILPOINT", raising=False)
    w = make_world(tmp_path, monkeypatch)
    yield w
    w.close()
    close_audit()


def crash_at(monkeypatch: pytest.MonkeyPatch, kind: str, n: int) -> None:
    """Arm agent.failpoints in-process: its kill -9 becomes a Crash exception."""
    def kill(_pid: int, _sig: int) -> None:
        raise Crash(f"{kind}:{n}")

    monkeypatch.setattr(failpoints, "_TARGET", (kind, n))
    monkeypatch.setattr(failpoints, "_COUNTS", {"journal": 0, "command": 0})
    monkeypatch.setattr(failpoints, "os", SimpleNamespace(kill=kill, getpid=lambda: 1))
