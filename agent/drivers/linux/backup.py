"""backup: the account's home and databases in one compressed archive, verified before use.

Nothing restrictive runs before this step has verified its archive: the file exists, its
listing reads back cleanly and holds the home folder and the dump, and its size and
SHA-256 are recorded. The archive is never deleted by the agent.
"""

from __future__ import annotations

import time
from typing import Any

from agent.config.validate import duration, size
from agent.drivers import linux
from agent.errors import AgentError, StepError
from agent.steps import archive
from agent.steps.actions import Run, carry_out
from agent.steps.protocol import Context, Plan

DUMP_NAME = "databases"
# Default bound of the archive's own run: a backup that cannot finish in this time fails
# (and nothing else happens), instead of holding the account half-suspended for hours.
MAX_TIME = 2 * 3600
# Constant script, run as `sh -c TAR_SCRIPT sh WARNINGS SECONDS TAR ARGS...`. The server
# itself stops tar after SECONDS (`timeout`), so no archive keeps growing after the agent
# gave up. GNU tar exits 1 when a file changed while it read it (the customer is writing):
# not a failure, since the archive is still verified below; its complaints are kept in
# WARNINGS beside the archive. Exit 2 or more is a failure with tar's own words.
_TAR_SCRIPT = (
    'w=$1; t=$2; shift 2; timeout -k 30 "$t" "$@" 2> "$w"; rc=$?; '
    'if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then rm -f -- "$w"; '
    'echo "the archive took longer than $t s (the playbook\'s max_time); stopped" >&2; '
    'exit 124; fi; if [ "$rc" -gt 1 ]; then cat -- "$w" >&2; rm -f -- "$w"; exit "$rc"; fi; '
    '[ -s "$w" ] || rm -f -- "$w"; exit 0'
)
# Constant script: the home's biggest folders (disk use, this file system only), for the
# message when a size limit is hit.
_BIGGEST = 'du -x --block-size=1 --max-depth=3 -- "$1" 2>/dev/null | sort -rn | head -n 6'


class Backup:
    """Takes (or reuses) a verified backup of one account."""

    name = "backup"

    def plan(self, ctx: Context) -> Plan:
        paths = ctx.server.linux
        reused = self._reusable(ctx)
        if reused is not None:
            return Plan(self.name, facts={"reused": reused["archive"]},
                        undo={**reused, "reused": True, "checked_at": ctx.now},
                        note=f"reusing verified backup {reused['archive']}")
        home = linux.home(ctx.conn, paths, ctx.account)
        dbs = linux.databases(ctx.conn, paths, ctx.account) if ctx.params.get(
            "databases", True) else []
        self._within_size(ctx, home)
        max_time = duration(ctx.params.get("max_time")) or MAX_TIME
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
            # --sparse: a file with holes (`truncate -s 1T`) is stored as holes, not read as
            # a terabyte of zeros.
            Run(["sh", "-c", _TAR_SCRIPT, "sh", f"{archive}.warnings", str(max_time),
                 paths.tar, "--create", "--gzip", "--sparse", f"--file={archive}.partial",
                 "-C", "/", home.lstrip("/"), "-C", staging, DUMP_NAME],
                timeout=max_time + 120),
            Run(["mv", "-f", "--", f"{archive}.partial", archive]),
            Run(["rm", "-rf", "--", staging]),
        ]
        return Plan(self.name, actions, facts={"home": home, "databases": dbs},
                    undo={"archive": archive, "staging": staging, "home": home,
                          "databases": dbs, "reused": False})

    def _within_size(self, ctx: Context, home: str) -> None:
        """Refuse (before anything changes) a home above the playbook's `max_size` on disk,
        naming its biggest folders; holes of sparse files do not count, as they are not
        archived."""
        limit = size(ctx.params.get("max_size"))
        if not limit:
            return
        used = int(ctx.conn.run(["du", "-s", "-x", "--block-size=1", "--", home],
                                timeout=3600).text.split()[0])
        if used <= limit:
            return
        biggest = ctx.conn.run(["sh", "-c", _BIGGEST, "sh", home], timeout=3600).text
        top = ", ".join(f"{p} ({_human(int(n))})" for n, p in
                        (line.split("\t", 1) for line in biggest.splitlines()[1:] if "\t" in line))
        raise StepError(f"the home of {ctx.account} uses {_human(used)} on disk, above the "
                        f"playbook's backup max_size {_human(limit)}; biggest: {top or home}. "
                        "Nothing was changed: raise max_size, or clean up, then suspend again")

    def _reusable(self, ctx: Context) -> dict | None:
        return archive.reusable(ctx, self._check)

    def before_plans(self, ctxs: list[Context], workers: int) -> None:
        """Check in one go every archive the batch's plans may reuse (held for them)."""
        paths = ctxs[0].server.linux
        archive.check_reusable(ctxs, paths.tar, paths.sha256sum, workers)

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
        ctx.conn.run(["rm", "-rf", "--", undo["staging"], undo["archive"] + ".partial",
                      undo["archive"] + ".warnings"])

    def _check(self, ctx: Context, undo: dict[str, Any]) -> dict[str, Any]:
        """Ensure the archive holds the home and the dump, unchanged; return its facts."""
        paths = ctx.server.linux
        must = {undo["home"]: undo["home"].strip("/") + "/"}
        if undo["databases"]:
            must["the database dump"] = f"{DUMP_NAME}/{ctx.account}.sql"
        facts = archive.verify_archive(ctx.conn, undo["archive"], must, paths.tar,
                                       paths.sha256sum, undo.get("sha256"), ctx.shared)
        return {**facts, "taken_at": undo.get("taken_at") or ctx.now}

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        # Backups are kept after the suspension is lifted: the agent never deletes customer data.
        return Plan(self.name, note=f"backup {undo['archive']} is kept")

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        # A reused archive was checked whole by this very plan (same context, same moment):
        # listing and hashing it again would only repeat that check.
        if suspended and not (undo.get("reused") and undo.get("checked_at") == ctx.now):
            self._check(ctx, undo)


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover
