"""Steps that work on the fake server's files, registered under the real step names.

Each FileStep keeps one file per account, `/etc/fake/<step>/<account>.conf`: `plan` reads it
(the undo data is its prior state), `apply` writes a blocking version and runs
`reload <step>`, `revert_plan` writes the prior state back (or removes the file) and reloads,
`verify` reads it back. FakeBackup takes an "archive" with tar/mv commands the fake answers,
and cleans a partial one like the real backup step. The engine, runner and journal around
them are the real ones.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from agent.config.validate import duration
from agent.drivers import linux
from agent.drivers.linux import driver as linux_driver
from agent.errors import AgentError, StepError, VerifyFailed
from agent.steps.actions import FileState, Run, Write, carry_out, snapshot
from agent.steps.protocol import Context, Plan

LOGIN_STEPS = ("landing_page", "mail_block", "ftp_lock", "db_lock", "panel_lock")


def step_path(step: str, account: str) -> str:
    return f"/etc/fake/{step}/{account}.conf"


class FileStep:
    """A reversible file change plus a reload, like most real steps."""

    def __init__(self, name: str, lock: str | None = None) -> None:
        self.name = name
        self.lock = lock

    def plan(self, ctx: Context) -> Plan:
        path = step_path(self.name, ctx.account)
        before = snapshot(ctx.conn, [path])[path]
        text = f"# suspension-agent case {ctx.case_id}\nblock {ctx.account} {ctx.params}\n"
        after = FileState(path, True, text.encode(), 0o600, "0:0")
        if self.name == "landing_page":
            # As the real one: the reload is the finish, shared by a batch of accounts.
            return Plan(self.name, [Write(before, after)], facts={"path": path},
                        undo={"before": before.to_dict()}, finish=[Run(["reload", self.name])])
        return Plan(self.name, [Write(before, after), Run(["reload", self.name, ctx.account])],
                    facts={"path": path}, undo={"before": before.to_dict()}, lock=self.lock)

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return {**plan.undo, "case": ctx.case_id}

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        before = FileState.from_dict(undo["before"])
        now = snapshot(ctx.conn, [before.path])[before.path]
        if self.name == "landing_page":
            return Plan(self.name, [Write(now, before)], finish=[Run(["reload", self.name])])
        return Plan(self.name, [Write(now, before), Run(["reload", self.name, ctx.account])],
                    lock=self.lock)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        before = FileState.from_dict(undo["before"])
        data = ctx.conn.read(before.path)
        if suspended and (data is None or b"\nblock " not in data):
            raise VerifyFailed(f"{before.path} does not block")
        if not suspended and data != (before.data if before.exists else None):
            raise VerifyFailed(f"{before.path} is not as it was")


class FakeBackup:
    """An archive taken by commands, checked, kept on revert; reusable while recent."""

    name = "backup"

    def plan(self, ctx: Context) -> Plan:
        limit = duration(ctx.params.get("reuse_if_newer_than"))
        if limit:
            found = ctx.journal.latest_backup(ctx.server.name, ctx.account, ctx.now - limit)
            if found is not None:
                return Plan(self.name, undo={**found, "reused": True}, note="reusing")
        home = linux.home(ctx.conn, ctx.server.linux, ctx.account)
        archive = f"/backups/{ctx.account}-{ctx.case_id}.tar"
        staging = f"/backups/.staging-{ctx.case_id}"
        return Plan(self.name, [
            Run(["install", "-d", staging]),
            Run(["tar", "--create", f"--file={archive}.partial", home]),
            Run(["mv", "-f", "--", f"{archive}.partial", archive]),
            Run(["rm", "-rf", "--", staging]),
        ], undo={"archive": archive, "staging": staging, "home": home})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        if not plan.actions:
            return plan.undo
        undo = dict(plan.undo)
        try:
            carry_out(ctx.conn, plan.actions)
            data = ctx.conn.read(undo["archive"])
            if not data:
                raise StepError(f"archive {undo['archive']} is missing")
            undo.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), taken_at=ctx.now)
        except AgentError as exc:
            self.clean_partial(ctx, undo)
            raise StepError(f"backup failed, nothing else was changed: {exc}") from exc
        return undo

    def clean_partial(self, ctx: Context, undo: dict[str, Any]) -> None:
        ctx.conn.run(["rm", "-rf", "--", undo["staging"], undo["archive"] + ".partial"])

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        return Plan(self.name, note=f"backup {undo['archive']} is kept")

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        if suspended and not ctx.conn.stat(undo["archive"]).exists:
            raise VerifyFailed(f"{undo['archive']} is gone")


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the fake steps in the registry for one test (monkeypatch undoes it)."""
    registry = linux_driver.DRIVER.steps
    monkeypatch.setitem(registry, "backup", FakeBackup())
    # The whole server's own step: a file of the server target ("web1").
    monkeypatch.setitem(registry, "firewall_block", FileStep("firewall_block"))
    # The landing page's server part (implied by landing_page): a file of the server target.
    monkeypatch.setitem(registry, "server_landing", FileStep("server_landing"))
    for name in LOGIN_STEPS:
        # ftp_lock edits a file shared by accounts: it takes the server-wide lock.
        monkeypatch.setitem(registry, name,
                            FileStep(name, lock="ftp" if name == "ftp_lock" else None))
