"""panel_suspend on cPanel: the panel's own full suspension (`suspendacct`) as the last grade.

Apply: WHM `suspendacct user=U reason="suspension-agent case <id> (<hold> hold)"`, with
`disallowun=1` for an abuse hold (only root may lift it, reference/panels.md A4). The API
answers result=1 even when the script refused ("already suspended", a failing pre-hook;
A8, C2.5), so verify re-reads `accountsummary`: suspended=1, the reason carrying this case's
id, and is_locked as asked.

Never touched: an account suspended before the case (by an admin, another tool, or
cPanel's bandwidth limit, which `listsuspended` reports too; A5, C2.9). Its plan is empty
and its reversal does nothing, so the agent never unsuspends it. One look-alike is the
agent's own: while its panel_lock is on, the locked hash makes cPanel see the account as
suspended for reason "Unknown" (A5), recognised from the journal. Then the script runs
instead of the API: `scripts/suspendacct USER REASON 0|1 --force` (A7's CLI form). That was
written for A7 step 1's "already suspended" refusal, which cpanel-review.md F15 found tests
only /var/cpanel/suspended/USER (scripts/suspendacct:111), not the hash: the API call would
do too. The script is kept because it works and changes nothing else.

Reversal knows `unsuspendacct`'s traps (A8, C2.4): it always lifts the account's outgoing-mail
suspension, strips every `*LOCKED*` from mailbox passwords and the leading `!` from the
account's hash. So the agent records, before suspending, what was in effect (outgoing mail
suspended or held, mailboxes with login or incoming suspended, the hash locked by its own
panel_lock or an admin, database users locked), runs `unsuspendacct` only if the account
is still suspended under this case's reason, and then re-applies whatever of that record
the unsuspend lifted (`reapply.Reapply`). The runner reverts panel_suspend before every
other step, so the steps still in effect are put back by their own reverts afterwards.
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.facts import Panel, account_name, flag, marker, suspension_file
from agent.drivers.cpanel.reapply import Reapply, before_state, differences
from agent.errors import StepError, VerifyFailed
from agent.steps.actions import Run, carry_out
from agent.steps.protocol import Context, Plan

BANDWIDTH = "Bandwidth Limit Exceeded"  # listsuspended's reason for bwlimited users (A5)


def unsuspend_args(user: str) -> list[tuple[str, str]]:
    """The arguments of the agent's every `unsuspendacct`: without retain-service-proxies it
    also drops the account's service-proxy backends (cpanel-review.md F14:
    scripts/unsuspendacct:402-415), which the agent's suspension never touched."""
    return [("user", user), ("retain-service-proxies", "1")]


def own_panel_lock(ctx: Context) -> bool:
    """True when this agent holds the account's hash locked right now: its panel_lock, or
    its ftp_lock (the main FTP login is the system hash on cPanel, review F1)."""
    if ctx.journal is None:
        return False
    return any(c.step == "panel_lock" and c.undo.get("locked_here")
               or c.step == "ftp_lock" and c.undo.get("hash_locked_here")
               for c in ctx.journal.active_changes(ctx.server.name, "account", ctx.account))


def _refuse_over_held_mail(ctx: Context) -> None:
    """Refuse (nothing changed) while the agent's own `outgoing: hold` is in effect on the
    account: suspendacct always suspends outgoing mail (scripts/suspendacct:325), and Exim
    checks suspension before hold, so every held message would be failed and discarded
    (etc/exim/perl/mail_permissions:780-840 in cPanel 11.120; review F12)."""
    if ctx.journal is None:
        return
    held = [c for c in ctx.journal.active_changes(ctx.server.name, "account", ctx.account)
            if c.step == "mail_block" and (c.undo or {}).get("outgoing") == "hold"]
    if held:
        raise StepError(f"{ctx.account}'s outgoing mail is held by mail_block (case "
                        f"{held[0].case_id}): suspendacct would discard every held message "
                        "(cpanel-review.md F12); nothing was changed. Use `outgoing: "
                        "suspend` in playbooks that go on to panel_suspend")


class PanelSuspend:
    """Suspends a cPanel account with suspendacct; lifts exactly that, then re-applies."""

    name = "panel_suspend"

    def plan(self, ctx: Context) -> Plan:
        user = account_name(ctx.account)
        panel = Panel(ctx.server, ctx.conn)
        summary = panel.summary(user)
        entry = panel.suspended_entry(user)
        reason = str((entry or {}).get("reason") or summary.get("suspendreason") or "")
        # cPanel judges "suspended" by the hash (A5, A8): the agent's own panel_lock looks
        # like a suspension for reason "Unknown", not locked.
        ours = (reason in ("", "Unknown") and not flag(summary.get("is_locked"))
                and own_panel_lock(ctx))
        if reason.startswith(BANDWIDTH):
            return Plan(self.name, note="suspended by cPanel's bandwidth limit; left to it and "
                        "never unsuspended by the agent", undo={"suspended_here": False})
        if (flag(summary.get("suspended")) or entry is not None) and not ours:
            shown = reason or "no reason given"
            # The agent's marker: a reseller's own account under reseller_lock, or another
            # case's panel_suspend; the step that suspended it lifts it, nothing here.
            whose = ("by the agent itself; lifted only when the step that suspended it is "
                     "reverted"
                     if reason.startswith(marker("")) else
                     "before this case; left suspended, never unsuspended by the agent")
            return Plan(self.name, note=f"already suspended ({shown}) {whose}",
                        undo={"suspended_here": False, "reason_before": reason})
        _refuse_over_held_mail(ctx)
        hold = ctx.hold or "billing"
        abuse = hold == "abuse"
        text = f"{marker(ctx.case_id)} ({hold} hold)"
        if ours:
            # The script's own form (A7: user, reason, disallow, in that order), with
            # --force against a refusal that F15 found cannot happen here (see above).
            # The hash stays locked meanwhile.
            action: Any = Run([ctx.server.cpanel.suspendacct, user, text,
                               "1" if abuse else "0", "--force"], timeout=600)
        else:
            action = panel.act(panel.whm("suspendacct", [
                ("user", user), ("reason", text), ("disallowun", "1" if abuse else "0")],
                verify="accountsummary"))
        before = before_state(ctx, panel, summary)
        return Plan(self.name, [action],
                    facts={"disallowun": abuse, "in_effect_before": before},
                    undo={"suspended_here": True, "disallowun": abuse, "before": before})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        if not undo.get("suspended_here"):
            return Plan(self.name, note="the account was suspended before the case; left so",
                        undo=undo)
        panel = Panel(ctx.server, ctx.conn)
        # The reason from suspendacct's own file: accountsummary shows the bandwidth limit's
        # text instead while the account is over it (F11), which is not someone else's
        # suspension of it.
        reason = suspension_file(ctx.conn, ctx.server, ctx.account)
        actions: list = []
        note = ""
        if reason is not None and marker(ctx.case_id) in reason:
            actions.append(panel.act(panel.whm("unsuspendacct", unsuspend_args(ctx.account),
                                               verify="accountsummary")))
        elif reason is not None:
            note = f"suspended again by someone else ({reason}); left suspended"
        actions.append(Reapply(ctx, undo["before"]))
        return Plan(self.name, actions, note=note, undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read accountsummary (never trust result=1), and after a reversal also every
        lock that was in effect before the case's suspension."""
        if not undo.get("suspended_here"):
            return
        panel = Panel(ctx.server, ctx.conn)
        summary = panel.summary(ctx.account)
        reason = suspension_file(ctx.conn, ctx.server, ctx.account) or ""
        problems = []
        if suspended:
            if not flag(summary.get("suspended")) or marker(ctx.case_id) not in reason:
                problems.append(f"accountsummary shows suspended={summary.get('suspended')}, "
                                f"the suspension's reason is {reason or 'none'!r}: "
                                "suspendacct did not take effect")
            if flag(summary.get("is_locked")) != undo["disallowun"]:
                problems.append(f"is_locked is {summary.get('is_locked')}, expected "
                                f"{int(undo['disallowun'])}")
        else:
            if marker(ctx.case_id) in reason:
                problems.append("the account is still suspended under this case")
            problems += differences(ctx, panel, summary, undo["before"])
        if problems:
            raise VerifyFailed("; ".join(problems[:8]))

