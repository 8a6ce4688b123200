"""backup: the account's home and databases in one compressed archive, verified before use.

Nothing restrictive runs before this step has verified its archive: the file exists, its
listing reads back cleanly and holds the home folder and the dump, and its size and
SHA-256 are recorded. The archive is never deleted by the agent.
"""

from __future__ import annotations

import time
from typing import Any

from agent.drivers import linux
from agent.errors import AgentError, StepError
from agent.schema import duration
from agent.steps.base import Context, Plan, Run, carry_out

DUMP_NAME = "databases"


class Backup:
    """Takes (or reuses) a verified backup of one account."""

    name = "backup"

    def plan(self, ctx: Context) -> Plan:
        paths = ctx.server.linux
        reused = self._reusable(ctx)
        if reused is not None:
            return Plan(self.name, facts={"reused": reused["archive"]},
                        undo={**reused, "reused": True},
                        note=f"reusing verified backup {reused['archive']}")
        home = linux.home(ctx.conn, paths, ctx.account)
        dbs = linux.databases(ctx.conn, paths, ctx.account) if ctx.params.get(
            "databases", True) else []
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ctx.now))
        archive = f"{paths.backup_dir}/{ctx.account}-{stamp}-{ctx.case_id}.tar.gz"
        staging = f"{paths.backup_dir}/.staging-{ctx.case_id}"
        actions: list[Run] = [
            Run(["install", "-d", "-m", "700", paths.backup_dir]),
            Run(["install", "-d", "-m", "700", f"{staging}/{DUMP_NAME}"]),
        ]
        if dbs:
            actions.append(Run([paths.mysqldump, *linux.mysql_defaults(paths),
                                "--single-transaction", "--routines", "--events", "--triggers",
                                "--databases", *dbs,
                                f"--result-file={staging}/{DUMP_NAME}/{ctx.account}.sql"],
                               timeout=3600))
        actions += [
            Run([paths.tar, "--create", "--gzip", f"--file={archive}.partial",
                 "-C", "/", home.lstrip("/"), "-C", staging, DUMP_NAME], timeout=6 * 3600),
            Run(["mv", "-f", "--", f"{archive}.partial", archive]),
            Run(["rm", "-rf", "--", staging]),
        ]
        return Plan(self.name, actions, facts={"home": home, "databases": dbs},
                    undo={"archive": archive, "staging": staging, "home": home,
                          "databases": dbs, "reused": False})

    def _reusable(self, ctx: Context) -> dict | None:
        limit = duration(ctx.params.get("reuse_if_newer_than"))
        if not limit or ctx.journal is None:
            return None
        found = ctx.journal.latest_backup(ctx.server.name, ctx.account, ctx.now - limit)
        if found is None:
            return None
        try:
            self._check(ctx, found)
        except AgentError:
            return None  # gone or altered since: take a fresh one
        return found

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        if not plan.actions:
            return plan.undo
        undo = dict(plan.undo)
        try:
            carry_out(ctx.conn, plan.actions)
            undo.update(self._check(ctx, undo))
        except AgentError as exc:
            self.clean_partial(ctx, undo)
            raise StepError(f"backup failed, nothing else was changed: {exc}") from exc
        return undo

    def clean_partial(self, ctx: Context, undo: dict[str, Any]) -> None:
        """Remove what an unfinished backup left: the staging folder and partial archive."""
        ctx.conn.run(["rm", "-rf", "--", undo["staging"], undo["archive"] + ".partial"])

    def _check(self, ctx: Context, undo: dict[str, Any]) -> dict[str, Any]:
        """Ensure the archive exists, lists cleanly and holds what it should; return its facts."""
        paths = ctx.server.linux
        archive = undo["archive"]
        st = ctx.conn.stat(archive)
        if not st.exists or st.size == 0:
            raise StepError(f"backup archive {archive} is missing or empty")
        listing = ctx.conn.run([paths.tar, "--list", "--gzip", f"--file={archive}"],
                               timeout=3600).text.splitlines()
        home = undo["home"].strip("/") + "/"
        if not any(line.startswith(home) for line in listing):
            raise StepError(f"backup archive {archive} does not hold {home}")
        for db in undo["databases"]:
            if f"{DUMP_NAME}/{ctx.account}.sql" not in listing:
                raise StepError(f"backup archive {archive} does not hold the dump of {db}")
        digest = ctx.conn.run([paths.sha256sum, "--", archive], timeout=3600).text.split()[0]
        if undo.get("sha256") and undo["sha256"] != digest:
            raise StepError(f"backup archive {archive} changed since it was taken")
        return {"sha256": digest, "size": st.size, "entries": len(listing), "taken_at": ctx.now
                if not undo.get("taken_at") else undo["taken_at"]}

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        # Backups are kept after the suspension is lifted: the agent never deletes customer data.
        return Plan(self.name, note=f"backup {undo['archive']} is kept")

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        if suspended:
            self._check(ctx, undo)
