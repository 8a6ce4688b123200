"""backup on cPanel: a `pkgacct` archive of the account, verified before anything else runs.

pkgacct (reference/panels.md A11) writes `<dest>/cpmove-<user>.tar.gz` holding the home
folder (`cpmove-<user>/homedir...`) and one dump per database (`cpmove-<user>/mysql/<db>.sql`).
Each case gets its own destination folder, so no later pkgacct run (cPanel's, an admin's)
overwrites the archive a case relies on. The archive counts only once it lists cleanly to
its end, holds the home and every database the panel lists, and its SHA-256 is recorded
(agent.steps.archive). It is never deleted by the agent.

Why pkgacct on the command line even with `transport: api`: WHM's start_background_pkgacct
takes no destination (A11: user, compressionsetting, incremental, low_priority), so its
archive lands at the default `/home/cpmove-<user>.tar.gz`, shared with every other run, and
its end is only seen in its session logs; verifying any archive needs the server's files
anyway (the connector is the agent's way in for files in both transports).
"""

from __future__ import annotations

import time
from typing import Any

from agent.config.validate import duration, size
from agent.drivers.cpanel.facts import Panel, account_name
from agent.errors import StepError
from agent.steps import archive
from agent.steps.actions import Run
from agent.steps.protocol import Context, Plan

MAX_TIME = 2 * 3600  # the playbook's max_time when it sets none (as on Linux)
_UNITS = {"": 1 << 20, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def disk_used(summary: dict[str, Any]) -> int | None:
    """Return accountsummary's `diskused` ("1234M", "2.5G", "none") in bytes, if given."""
    text = str(summary.get("diskused") or "").strip().upper().removesuffix("B")
    number = text.rstrip("KMGT")
    try:
        return int(float(number) * _UNITS[text[len(number):]])
    except (ValueError, KeyError):
        return None


def must_hold(account: str, databases: list[str]) -> dict[str, str]:
    """Return what the account's archive must hold, by member prefix."""
    top = f"cpmove-{account}/"
    # pkgacct stores the home as a folder `homedir/` (or, in older versions, homedir.tar).
    must = {"the home folder": top + "homedir"}
    must.update({f"the dump of database {db}": f"{top}mysql/{db}.sql" for db in databases})
    return must


def _pkgacct(found: dict[str, Any]) -> bool:
    """True for a pkgacct archive (another driver's, the same account name once on a linux
    server, is not one)."""
    return "/cpmove-" in found.get("archive", "")


class Backup:
    """Takes (or reuses) a verified pkgacct archive of one cPanel account."""

    name = "backup"

    def plan(self, ctx: Context) -> Plan:
        s = ctx.server.cpanel
        user = account_name(ctx.account)
        reused = self._reusable(ctx)
        if reused is not None:
            return Plan(self.name, facts={"reused": reused["archive"]},
                        undo={**reused, "reused": True, "checked_at": ctx.now},
                        note=f"reusing verified backup {reused['archive']}")
        panel = Panel(ctx.server, ctx.conn)
        summary = panel.summary(user)
        dbs = panel.databases(user) if ctx.params.get("databases", True) else []
        limit, used = size(ctx.params.get("max_size")), disk_used(summary)
        if limit and used is not None and used > limit:
            raise StepError(f"{user} uses {summary.get('diskused')} (accountsummary), above "
                            f"the playbook's backup max_size {ctx.params['max_size']}; nothing "
                            "was changed")
        max_time = duration(ctx.params.get("max_time")) or MAX_TIME
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ctx.now))
        dest = f"{s.backup_dir}/{user}-{stamp}-{ctx.case_id}"
        archive = f"{dest}/cpmove-{user}.tar.gz"
        flags = [] if ctx.params.get("databases", True) else ["--skipmysql"]
        actions = [
            Run(["install", "-d", "-m", "700", s.backup_dir]),
            Run(["install", "-d", "-m", "700", dest]),
            # The server itself stops pkgacct after max_time: no archive keeps growing after
            # the agent gave up on it.
            Run(["timeout", "-k", "30", str(max_time), s.pkgacct, user, dest, *flags],
                timeout=max_time + 120),
        ]
        return Plan(self.name, actions,
                    facts={"databases": dbs, "diskused": summary.get("diskused")},
                    undo={"archive": archive, "staging": dest, "databases": dbs,
                          "reused": False})

    def _reusable(self, ctx: Context) -> dict | None:
        return archive.reusable(ctx, self._check, _pkgacct)

    def before_plans(self, ctxs: list[Context], workers: int) -> None:
        """Check in one go every archive the batch's plans may reuse (held for them)."""
        s = ctxs[0].server.cpanel
        archive.check_reusable(ctxs, s.tar, s.sha256sum, workers, _pkgacct)

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        return archive.take(ctx, plan.actions, plan.undo, self._check, self.clean_partial)

    def clean_partial(self, ctx: Context, undo: dict[str, Any]) -> None:
        """Remove what an unfinished pkgacct left: this case's own destination folder."""
        if undo.get("reused") or not undo.get("staging"):
            return
        ctx.conn.run(["rm", "-rf", "--", undo["staging"]])

    def _check(self, ctx: Context, undo: dict[str, Any]) -> dict[str, Any]:
        """Ensure the archive lists cleanly, holds the home and every dump, unchanged."""
        s = ctx.server.cpanel
        facts = archive.verify_archive(ctx.conn, undo["archive"],
                                       must_hold(ctx.account, undo["databases"]), s.tar,
                                       s.sha256sum, undo.get("sha256"), ctx.shared)
        return {**facts, "taken_at": undo.get("taken_at") or ctx.now}

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        # The archive is kept after the suspension is lifted: never delete customer data.
        return Plan(self.name, note=f"backup {undo['archive']} is kept")

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        # A reused archive was checked whole by this very plan (same context, same moment):
        # listing and hashing it again would only repeat that check.
        if suspended and not (undo.get("reused") and undo.get("checked_at") == ctx.now):
            self._check(ctx, undo)
