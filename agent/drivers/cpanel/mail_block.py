"""mail_block on cPanel: mailbox logins and outgoing mail blocked; incoming mail kept.

Mechanism, all cPanel's own functions (reference/panels.md A4, A6):
- each mailbox: UAPI `Email::suspend_login` (IMAP, POP3, webmail and SMTP AUTH refused, mail
  still delivered). Mailboxes whose login was already suspended are recorded and left as
  they are, also at reversal.
- the account's outgoing mail: WHM `suspend_outgoing_email` (Exim rejects mail to outside
  addresses; playbook `outgoing: suspend`, the default) or `hold_outgoing_email` (kept in
  Exim's queue, released at reversal; `outgoing: hold`). Not set again when already set.
- incoming mail is accepted unless the playbook says `incoming: reject`: then each mailbox
  gets UAPI `Email::suspend_incoming` (SMTP-time rejection). cPanel has no per-account
  temporary rejection, so `incoming: defer` is refused at plan time on this driver.
Every call answers "success" even when nothing changed (A8, C2.5): verify re-reads
`Email::list_pops` and `accountsummary` and compares each flag.

While the account is fully suspended by someone else (suspendacct: a file in
`/var/cpanel/suspended/`), that list is blind: suspendacct puts `*LOCKED*` before every
mailbox hash, list_pops counts only a leading `!`, and suspend_login would put `!!` before
the `*LOCKED*`, which unsuspendacct then keeps: the mailbox would lose its password for
good (cpanel-review.md F4, read in cPanel 11.120's code). So the step is not applied then
(the plan says whose suspension, nothing changes, the next tick tries again), and its
reversal under such a suspension is refused, so the change stays `stuck` (seen, named)
until that suspension is lifted, instead of passing for done while the locks wait under it.

`Email::suspend_login` refuses new logins only: a mail client already connected (an IMAP
IDLE session) keeps reading. After the suspend_login calls, Dovecot's auth cache is flushed
for the locked mailboxes and their open IMAP/POP sessions are ended with `doveadm kick`, run
as root over the server's connector (cPanel has no per-mailbox function for it). Nothing of
that is undone at reversal: the customer's client logs in again by itself.
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.facts import Panel, account_name, flag, marker, suspension_file
from agent.errors import StepError, VerifyFailed
from agent.steps import programs
from agent.steps.actions import Run, Skipped, carry_out
from agent.steps.protocol import Context, Plan

# outgoing mode -> (WHM function that sets it, the one that lifts it, accountsummary flag)
OUTGOING = {
    "suspend": ("suspend_outgoing_email", "unsuspend_outgoing_email", "outgoing_mail_suspended"),
    "hold": ("hold_outgoing_email", "release_outgoing_email", "outgoing_mail_hold"),
}
# Dovecot reads `*` and `?` in a user mask as wildcards (doveadm-kick(1)): a mailbox named
# with one would end other mailboxes' sessions too, so it is never passed to doveadm.
WILDCARDS = frozenset("*?")
# `doveadm kick`: 0 sessions were ended, 68 (EX_NOHOST, doveadm's "not found") nobody of that
# name was connected (67 is EX_NOUSER; Cpanel/Dovecot.pm, review F17).
KICK_OK = (0, 68)


def _calls(panel: Panel, user: str, function: str, emails: list[str]) -> list:
    return [panel.act(panel.uapi(user, function, [("email", e)], verify="Email::list_pops"))
            for e in emails]


class MailBlock:
    """Blocks a cPanel account's mailbox logins and outgoing mail, keeping incoming mail."""

    name = "mail_block"

    def plan(self, ctx: Context) -> Plan:
        user = account_name(ctx.account)
        incoming = ctx.params.get("incoming", "accept")
        outgoing = ctx.params.get("outgoing", "suspend")
        if incoming == "defer":
            raise StepError("cPanel has no per-account temporary rejection of incoming mail "
                            "(Email::suspend_incoming rejects with 5xx); use incoming: accept "
                            "or reject on this server")
        if outgoing not in OUTGOING:
            raise StepError(f"mail_block outgoing: {outgoing!r} (use suspend or hold)")
        under = full_suspension(ctx)
        if under is not None and under.startswith(marker("")):
            # The agent's own suspendacct (a reseller's lock, another grade): every mailbox
            # is locked by it for as long as it holds, and list_pops cannot tell more.
            note = (f"every mailbox is locked by the agent's own full suspension ({under}) "
                    "while it holds; nothing more is done")
            return Plan(self.name, note=note, facts={"covered_by": under},
                        undo={"locked": [], "already_locked": [], "incoming_rejected": [],
                              "outgoing": None, "covered_by": under})
        panel = Panel(ctx.server, ctx.conn)
        summary = panel.summary(user)
        boxes = panel.mailboxes(user)
        if under is not None and boxes:
            raise _under(ctx, under, "mail_block is not applied", "it is lifted")
        lock = [b["email"] for b in boxes if not b["login"]]
        already = [b["email"] for b in boxes if b["login"]]
        reject = ([b["email"] for b in boxes if not b["incoming"]]
                  if incoming == "reject" else [])
        set_on, _off, summary_flag = OUTGOING[outgoing]
        outgoing_here = not flag(summary.get(summary_flag))
        kick = [e for e in lock if not WILDCARDS & set(e)]
        left = [e for e in lock if WILDCARDS & set(e)]
        if kick:
            _require_doveadm(ctx, user)
        actions = _calls(panel, user, "Email::suspend_login", lock)
        actions += end_sessions(ctx.server.cpanel.doveadm, kick)
        actions += _calls(panel, user, "Email::suspend_incoming", reject)
        if outgoing_here:
            actions.append(panel.act(panel.whm(set_on, [("user", user)],
                                               verify="accountsummary")))
        notes = [] if outgoing_here else [f"outgoing mail was already {outgoing}ed before"]
        if left:
            notes.append(f"open IMAP/POP sessions of {', '.join(left)} are not ended: "
                         "Dovecot would read * or ? in the name as a wildcard")
            actions.append(Skipped(notes[-1]))
        return Plan(self.name, actions, note="; ".join(notes),
                    facts={"mailboxes": lock, "already_suspended": already,
                           "incoming_rejected": reject, "outgoing": outgoing,
                           "sessions_ended": kick, "sessions_left_open": left},
                    undo={"locked": lock, "already_locked": already,
                          "incoming_rejected": reject,
                          "outgoing": outgoing if outgoing_here else None})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        """Lift exactly what this step set and is still set; mailboxes suspended before the
        case, or deleted since, are left alone."""
        if undo["locked"] or undo["incoming_rejected"]:
            under = full_suspension(ctx)
            if under is not None:
                raise _under(ctx, under, "mail_block cannot be lifted",
                             "it is lifted; then unsuspend again")
        panel = Panel(ctx.server, ctx.conn)
        boxes = {b["email"]: b for b in panel.mailboxes(ctx.account)}
        unlock = [e for e in undo["locked"] if boxes.get(e, {}).get("login")]
        accept = [e for e in undo["incoming_rejected"] if boxes.get(e, {}).get("incoming")]
        actions = _calls(panel, ctx.account, "Email::unsuspend_login", unlock)
        actions += _calls(panel, ctx.account, "Email::unsuspend_incoming", accept)
        if undo["outgoing"]:
            _on, off, summary_flag = OUTGOING[undo["outgoing"]]
            if flag(panel.summary(ctx.account).get(summary_flag)):
                actions.append(panel.act(panel.whm(off, [("user", ctx.account)],
                                                   verify="accountsummary")))
        return Plan(self.name, actions, undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read every mailbox's flags and the account's outgoing flag from the panel (or,
        for locks held by the agent's own full suspension, that it still holds)."""
        if undo.get("covered_by"):
            if suspended and full_suspension(ctx) != undo["covered_by"]:
                raise VerifyFailed(f"the full suspension ({undo['covered_by']}) that locks "
                                   f"{ctx.account}'s mailboxes is no longer in effect")
            return
        panel = Panel(ctx.server, ctx.conn)
        boxes = {b["email"]: b for b in panel.mailboxes(ctx.account)}
        problems = []
        for key, emails, want in (("login", undo["locked"], suspended),
                                  ("login", undo["already_locked"], True),
                                  ("incoming", undo["incoming_rejected"], suspended)):
            for email in emails:
                if email in boxes and boxes[email][key] != want:
                    what = "login" if key == "login" else "incoming mail"
                    problems.append(f"{email}: {what} is {'not ' if want else 'still '}"
                                    "suspended")
        if undo["outgoing"]:
            summary_flag = OUTGOING[undo["outgoing"]][2]
            if flag(panel.summary(ctx.account).get(summary_flag)) != suspended:
                problems.append(f"accountsummary {summary_flag} is "
                                f"{'0' if suspended else '1'}")
        if problems:
            raise VerifyFailed("; ".join(problems[:8]))


def end_sessions(doveadm: str, emails: list[str]) -> list[Run]:
    """Return the commands that drop Dovecot's cached logins of `emails`, then end their
    open IMAP/POP sessions; none when `emails` is empty.

    The flush comes first so that a kicked client reconnecting at once meets the suspended
    login, not a cached success: cPanel lets admins size Dovecot's auth cache and how long
    successful logins stay in it (WHM Mailserver Configuration,
    http://docs.cpanel.net/twiki/bin/view/AllDocumentation/WHMDocs/DovecotConfig), and
    whether Email::suspend_login flushes it is not documented (suspendacct does, A7 step
    6). Each name goes after `--`, so a mailbox starting with `-` is never read as an
    option; the caller leaves out wildcards.
    """
    if not emails:
        return []
    return [Run([doveadm, "auth", "cache", "flush", "--", *emails]),
            *(Run([doveadm, "kick", "--", email], ok_codes=KICK_OK) for email in emails)]


def full_suspension(ctx: Context) -> str | None:
    """Return the reason of suspendacct's suspension of the account, or None."""
    return suspension_file(ctx.conn, ctx.server, ctx.account)


def _under(ctx: Context, reason: str, what: str, until: str) -> StepError:
    # suspendacct's `*LOCKED*` hides every mailbox lock from list_pops (F4).
    whose = ("the agent's own suspension" if reason.startswith(marker("")) else
             "someone else")
    return StepError(f"{ctx.account} is fully suspended by {whose} (reason {reason!r}): "
                     f"{what} while that suspension is on, since cPanel then shows no "
                     "mailbox lock and suspend_login would cost each mailbox its password "
                     f"(cpanel-review.md F4); nothing was changed; wait until {until}")


def _require_doveadm(ctx: Context, user: str) -> None:
    """Refuse (at plan time, nothing changed) when the server's doveadm cannot be run: a
    mail block that left the open sessions reading mail would only look done."""
    programs.require_program(ctx.conn, ctx.server.cpanel.doveadm, setting="cpanel.doveadm",
                             program="Dovecot's doveadm",
                             what=f"mail_block cannot end the open IMAP/POP sessions of "
                                  f"{user}'s mailboxes")
