"""mail_block's verify: the locks re-read where Dovecot reads them, Dovecot's running auth
service asked, and Exim asked what a sender meets (agent/drivers/linux/mail_block.py).

The files' read and the probes that need nothing read first go to the server at once, side
by side (agent/connector/each.py): on a 50 ms link they were one round trip each.
"""

from __future__ import annotations

from typing import Any

from agent.connector import each
from agent.connector.many import read_command
from agent.drivers.linux import dovecot_auth
from agent.drivers.linux import service_probes as probes
from agent.errors import VerifyFailed
from agent.steps.edit_lines import file_lines
from agent.steps.protocol import Context


def probe(ctx: Context, undo: dict[str, Any], suspended: bool, seen: bool = False) -> None:
    """`seen`: the deny file's edit is checked through the probe login (unlocking)."""
    paths = ctx.server.linux
    problems = []
    deny = undo.get("deny")
    if suspended and (undo["locked"] or deny):
        auth = dovecot_auth.read(ctx.conn, paths)
        if undo["locked"] and not auth.vmail:
            problems.append(f"Dovecot's passdb does not read {paths.vmail_dir}/%d/shadow")
        problems += [f"Dovecot also authenticates through {o}" for o in auth.uncovered()]
        if deny and not auth.deny_first:
            problems.append(f"Dovecot does not consult {deny['path']} (deny = yes) first")
    # Every read and probe below in one round trip, side by side on the server.
    conn = _ahead(ctx, undo, seen)
    found = conn.read_many(_read_paths(undo))
    if deny:
        listed = file_lines(found[deny["path"]].data)
        problems += [f"{deny['path']}: {x} is {'not ' if suspended else ''}listed"
                     for x in deny["logins"] if (x in listed) != suspended]
        # The running auth service's own answer: refused as disabled, whatever password
        # (unlocking with the probe login: _settle_unlocked asks about that instead).
        for login, refused in dovecot_auth.denied(conn, paths.doveadm,
                                                  _tested(undo, seen)).items():
            if refused != suspended:
                problems.append(f"Dovecot {'lets' if refused is False else 'refuses'} "
                                f"{login} {'in' if refused is False else 'as disabled'}")
    for edit in undo["edits"]:
        lines = file_lines(found[edit["path"]].data)
        for old, new in edit["pairs"]:
            user = old.split(":", 1)[0]
            if (new if suspended else old) not in lines:
                problems.append(f"{edit['path']}: {user} is "
                                f"{'not locked' if suspended else 'still locked'}")
    for address in probes.dovecot_unknown(conn, paths.doveadm, _plain(undo)):
        problems.append(f"Dovecot does not know mailbox {address}")
    for d in undo["files"]:
        if found[d["path"]].exists != suspended:
            problems.append(f"{d['path']} should {'' if suspended else 'not '}exist")
    # Exim's ACL keys on the domain's owner, so any plain address of the account will do;
    # with none, the hook files read above are what Exim's ACL reads.
    mailbox = _mailbox(undo)
    if not mailbox and deny and ctx.account in deny["logins"]:
        # A system user's mail arrives as account@<a local domain>; Exim's primary
        # hostname is one (Debian's local_domains start with "@").
        mailbox = [f"{ctx.account}@{probes.exim_primary_hostname(conn, paths.exim)}"]
    if mailbox:
        want = {"accept": 250, "reject": 550, "defer": 451}[
            undo["incoming"] if suspended else "accept"]
        code = probes.exim_rcpt(conn, paths.exim, mailbox[0])
        if code != want:
            problems.append(f"Exim answers RCPT TO:<{mailbox[0]}> with {code}, "
                            f"expected {want}")
    if problems:
        raise VerifyFailed("; ".join(problems))


def _read_paths(undo: dict[str, Any]) -> list[str]:
    """The files verify reads: every edited file, hook file and the deny file."""
    deny = undo.get("deny")
    return ([e["path"] for e in undo["edits"]] + [d["path"] for d in undo["files"]]
            + ([deny["path"]] if deny else []))


def _tested(undo: dict[str, Any], seen: bool) -> list[str]:
    """The deny file's logins Dovecot is asked about (none when the probe login shows the
    edit instead: mail_block's _settle_unlocked)."""
    deny = undo.get("deny")
    return [] if seen or not deny else deny["logins"][:3]


def _plain(undo: dict[str, Any]) -> list[str]:
    """The locked mailboxes Dovecot is asked to look up (as many as three)."""
    return [a for a in undo["locked"] if probes.dovecot_login_name(a)][:3]


def _mailbox(undo: dict[str, Any]) -> list[str]:
    """The address Exim is asked about, when the account has a plain one (Exim's ACL keys
    on the domain's owner, so any of them will do)."""
    return [a for a in undo["locked"] + undo["already_disabled"]
            if probes.plain_address(a)][:1]


def _ahead(ctx: Context, undo: dict[str, Any], seen: bool) -> Any:
    """Return the connector verify reads through: its read of the files and the probes
    that need nothing read first (Dovecot's answers, Exim's RCPT) sent ahead at once."""
    paths, deny = ctx.server.linux, undo.get("deny")
    commands = [read_command(_read_paths(undo))]
    if _tested(undo, seen):
        commands.append(dovecot_auth.tests_command(paths.doveadm, _tested(undo, seen)))
    if _plain(undo):
        commands.append(probes.lookups_command(paths.doveadm, _plain(undo)))
    mailbox = _mailbox(undo)
    if mailbox:
        commands.append(probes.rcpt_command(paths.exim, mailbox[0]))
    elif deny and ctx.account in deny["logins"]:
        commands.append(probes.hostname_command(paths.exim))  # the address is built from it
    return each.held(ctx.conn, commands) if len(commands) > 1 else ctx.conn
