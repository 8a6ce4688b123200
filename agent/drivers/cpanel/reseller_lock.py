"""reseller_lock on cPanel: a reseller's own logins, WHM included, locked by the panel itself.

The engine applies it first to each reseller of a tree (the top one and every sub-reseller,
CpanelDriver.login_step), before the playbook's stages of the tree's accounts. Playbooks do
not name it.

Why not panel_lock: that step changes only the system hash and the shell. A reseller's WHM
API tokens never check the password, its open WHM sessions are not purged, and cpsrvd
judges "suspended" by the suspension file /var/cpanel/suspended/USER, not by the hash
(scripts/suspendacct writes that file first "to ensure cpsrvd will not allow any more
processes to be created as the user", then purges the sessions; cpanel-review.md F9, §4).
A reseller left with a working token or session could unsuspend its customers from WHM.

Mechanism (reference/lockouts.md 6.4, panels.md A4, A9): WHM `suspendreseller user=R
reseller-only=1 disallow=1 reason="suspension-agent case <id> (...)"`. With reseller-only=1
it is exactly `scripts/suspendacct R REASON 1` (Whostmgr/Resellers.pm): R's own account is
fully suspended (A7: logins, sessions purged, processes killed, and R's own sites, mail,
databases, cron and outgoing mail), the accounts R owns are not touched. disallow=1 (only
root lifts it): R's owner may be a reseller outside the case, whose WHM would otherwise
offer the unsuspend. The API answers result 0 unless R ends suspended (A9), and verify
re-reads accountsummary/listsuspended, the hash, and the lock flag.

Provenance: a reseller already suspended before the case (by an admin, another tool, or
another case of this agent) is left as it is and never unsuspended by this step. Only the
agent's own panel_lock is recognised as not a suspension (its locked hash looks like one to
cPanel, A5); then the script runs with --force, as panel_suspend does.

Reversal: `unsuspendreseller user=R reseller-only=1` (only R's own account; A9's
reseller-only=0 would also unsuspend every owned account, including ones suspended for their
own reasons), and only while R is still suspended under this case's reason. It is
`unsuspendacct R`, with all of its side effects (A8): so, as panel_suspend does, what was in
effect on R's account before the lock is recorded and re-applied where the unsuspend lifted
it (reapply.py). A reseller that lost its reseller status meanwhile gets `unsuspendacct`,
the same thing under its account name.
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.facts import Panel, account_name, flag
from agent.drivers.cpanel.panel_lock import login_state
from agent.drivers.cpanel.panel_suspend import BANDWIDTH, marker, own_panel_lock, unsuspend_args
from agent.drivers.cpanel.reapply import Reapply, ahead, before_state, differences
from agent.drivers.cpanel.reseller_tree import resellers
from agent.errors import BadInput, VerifyFailed
from agent.steps.actions import Run, carry_out
from agent.steps.protocol import Context, Plan


def _reasons(panel: Panel, user: str, summary: dict[str, Any]) -> list[str]:
    """Return the suspension reasons the panel gives for `user` now: listsuspended's (from
    /var/cpanel/suspended/USER, or the bandwidth text, A5) and accountsummary's."""
    entry = panel.suspended_entry(user)
    found = [str(entry.get("reason") or "Unknown")] if entry is not None else []
    if flag(summary.get("suspended")) and summary.get("suspendreason"):
        found.append(str(summary["suspendreason"]))
    return found


def _ours(reasons: list[str], case_id: str) -> bool:
    return any(marker(case_id) in r for r in reasons)


class ResellerLock:
    """Suspends a reseller's own account with suspendreseller reseller-only=1; lifts exactly
    that, then re-applies what the unsuspend lifted."""

    name = "reseller_lock"

    def plan(self, ctx: Context) -> Plan:
        user = account_name(ctx.account)
        # Every read below in one round trip (what before_state reads too).
        ctx = ahead(ctx, "resellers", "summary", "suspended", "mailboxes", "db_users", "db_prefix",
                    login=True)
        panel = Panel(ctx.server, ctx.conn)
        if user not in resellers(panel):
            raise BadInput(f"{user!r} is not a reseller on {ctx.server.name} (WHM "
                           "listresellers); reseller_lock locks resellers only")
        summary = panel.summary(user)
        reasons = _reasons(panel, user, summary)
        hashed, _shell = login_state(ctx)
        # The bandwidth limit is no suspension of logins (A5): such a reseller still gets
        # into WHM, so it is locked like any other; the limit itself stays cPanel's.
        real = [r for r in reasons if not r.startswith(BANDWIDTH)]
        if _ours(real, ctx.case_id):
            # Planned again while its lock holds (a retried call): nothing to do, and this
            # plan never unsuspends; the change that locked it does at reversal.
            return Plan(self.name, note=f"reseller {user} already locked by this case",
                        undo={"suspended_here": False})
        hash_locked = hashed.startswith(("!", "*"))
        ours = (hash_locked and all(r in ("", "Unknown") for r in real)
                and not flag(summary.get("is_locked")) and own_panel_lock(ctx))
        if (real or hash_locked) and not ours:
            shown = next((r for r in real if r), "its password hash is locked")
            return Plan(self.name, note=f"reseller {user} was already suspended before this "
                        f"case ({shown}); left so, never unsuspended by the agent",
                        undo={"suspended_here": False, "reason_before": shown})
        text = f"{marker(ctx.case_id)} ({ctx.hold or 'billing'} hold, reseller login lock)"
        if ours:
            # cPanel sees the agent's own locked hash as a suspension (A5) and the simulator
            # refuses it as "already suspended"; the API has no --force, the script has (A7).
            # With reseller-only=1, suspendreseller is this very script (A9).
            action: Any = Run([ctx.server.cpanel.suspendacct, user, text, "1", "--force"],
                              timeout=600)
        else:
            action = panel.act(panel.whm("suspendreseller", [
                ("user", user), ("reason", text), ("disallow", "1"), ("reseller-only", "1")],
                verify="accountsummary"))
        before = before_state(ctx, panel, summary)
        return Plan(self.name, [action],
                    facts={"reseller": user, "owned_accounts_touched": False,
                           "in_effect_before": before},
                    undo={"suspended_here": True, "before": before})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        if not undo.get("suspended_here"):
            return Plan(self.name, note="the reseller was suspended before the case; left so",
                        undo=undo)
        user = account_name(ctx.account)
        reads = ahead(ctx, "summary", "suspended", "resellers")
        panel = Panel(ctx.server, reads.conn)
        summary = panel.summary(user)
        reasons = _reasons(panel, user, summary)
        actions: list = []
        note = ""
        if _ours(reasons, ctx.case_id):
            if user in resellers(panel):
                call = panel.whm("unsuspendreseller", [("user", user), ("reseller-only", "1")],
                                 verify="accountsummary")
            else:
                call = panel.whm("unsuspendacct", unsuspend_args(user),
                                 verify="accountsummary")
            actions.append(panel.act(call))
        elif [r for r in reasons if not r.startswith(BANDWIDTH)]:
            note = f"suspended again by someone else ({reasons[0]}); left suspended"
        actions.append(Reapply(ctx, undo["before"]))
        return Plan(self.name, actions, note=note, undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the panel (never trust result=1, A8): suspended under this case's reason,
        locked to root, the hash locked; after a reversal, not suspended under it and every
        lock of before the case in effect again."""
        if not undo.get("suspended_here"):
            return
        ctx = ahead(ctx, "summary", "suspended", *([] if suspended else ["mailboxes"]),
                    *(["db_users", "db_prefix"] if not suspended and undo["before"]["db_locked"]
                      else []),
                    login=True)
        panel = Panel(ctx.server, ctx.conn)
        summary = panel.summary(ctx.account)
        reasons = _reasons(panel, ctx.account, summary)
        problems = []
        if suspended:
            hashed, _shell = login_state(ctx)
            if not _ours(reasons, ctx.case_id):
                problems.append(f"the panel gives no suspension under this case (reasons: "
                                f"{reasons or 'none'}): suspendreseller did not take effect")
            if not flag(summary.get("is_locked")):
                problems.append("is_locked is 0: the reseller's owner could lift the lock")
            if not hashed.startswith(("!", "*")):
                problems.append("the password hash is not locked")
        else:
            if _ours(reasons, ctx.case_id):
                problems.append("the reseller is still suspended under this case")
            problems += differences(ctx, panel, summary, undo["before"])
        if problems:
            raise VerifyFailed("; ".join(problems[:8]))
