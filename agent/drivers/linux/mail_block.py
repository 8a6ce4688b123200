"""mail_block: the account's mailboxes cannot log in or send; incoming mail is still accepted.

Mechanism (linux driver, the cPanel layout): mail domains are the `domain: account` lines of
/etc/userdomains; each domain's mailbox passwords are Dovecot passwd-file lines in
`<vmail_dir>/<domain>/shadow`. Locking a mailbox prefixes its password field with
`*LOCKED*` (as cPanel does), so IMAP, POP3 and SMTP AUTH (Exim authenticates through
Dovecot) fail with an authentication error; a mailbox already locked or starting with `!`
is left alone and stays locked after unsuspend. Outgoing mail of the account is refused by
Exim while `<exim_hook_dir>/<account>.outgoing` exists; `incoming: reject|defer` adds
`<account>.incoming-reject|defer`, which Exim's RCPT ACL answers with 550 or 451. Open
IMAP/POP sessions of the locked mailboxes are ended with `doveadm kick`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent.drivers.linux import service_probes as probes
from agent.errors import StepError, VerifyFailed
from agent.steps.base import (
    Context,
    EditLines,
    FileState,
    Plan,
    Run,
    Write,
    carry_out,
    file_lines,
    snapshot,
)

LOCK_PREFIX = "*LOCKED*"
# Dovecot's passwd-file passdb re-stats its file at most once per second of its own clock
# (db-passwd-file.c: last_sync_time == ioloop_time), so a change written in second S is
# seen by every auth request from second S+1 on. Wait on the server until its clock has
# left the second of the newest edited file's mtime, then flush the auth cache: no login
# can be answered from the old content afterwards. (About half a second on average, where a
# fixed sleep would cost more than one.) Paths arrive as operands.
_SETTLE = ('d=$1; shift; m=0; for f do t=$(stat -c %Y -- "$f") || exit 3; '
           '[ "$t" -gt "$m" ] && m=$t; done; '
           'while [ "$(date +%s)" -le "$m" ]; do sleep 0.05; done; exec "$d" auth cache flush')
DISABLED_PREFIXES = (LOCK_PREFIX, "!")


def mail_domains(ctx: Context) -> list[str]:
    """Return the mail domains /etc/userdomains gives the account, in file order."""
    raw = ctx.conn.read(ctx.server.linux.userdomains)
    if raw is None:
        raise StepError(f"{ctx.server.linux.userdomains} does not exist on {ctx.server.name}")
    found = []
    for line in raw.decode("utf-8", "replace").splitlines():
        domain, sep, owner = line.partition(":")
        if sep and owner.strip() == ctx.account and domain.strip() and domain.strip() != "*":
            found.append(domain.strip().lower())
    return found


def hook_files(ctx: Context) -> list[str]:
    """Return the Exim hook files this case needs: outgoing, and the incoming mode if any."""
    base = f"{ctx.server.linux.exim_hook_dir}/{ctx.account}"
    files = [f"{base}.outgoing"]
    incoming = ctx.params.get("incoming", "accept")
    if incoming != "accept":
        files.append(f"{base}.incoming-{incoming}")
    return files


class MailBlock:
    """Blocks an account's mailbox logins and outgoing mail, keeping incoming mail."""

    name = "mail_block"

    def plan(self, ctx: Context) -> Plan:
        paths = ctx.server.linux
        if not ctx.conn.stat(paths.exim_hook_dir).exists:
            raise StepError(f"{paths.exim_hook_dir} does not exist: Exim is not set up with the "
                            "suspension-agent ACL (see docs/linux-host.md)")
        edits, locked, already = [], [], []
        domains = mail_domains(ctx)
        if domains:
            _refuse_foreign_passdbs(ctx)
        for domain in domains:
            shadow = f"{paths.vmail_dir}/{domain}/shadow"
            raw = ctx.conn.read(shadow)
            if raw is None:
                continue
            pairs = []
            for line in file_lines(raw):
                user, sep, rest = line.partition(":")
                if not sep or not user or user.startswith("#"):
                    continue
                address = f"{user}@{domain}"
                if rest.startswith(DISABLED_PREFIXES):
                    already.append(address)
                    continue
                pairs.append((line, f"{user}:{LOCK_PREFIX}{rest}"))
                locked.append(address)
            if pairs:
                edits.append(EditLines(shadow, tuple(pairs), tuple(
                    f"lock mailbox {p[0].split(':', 1)[0]}@{domain} (prefix {LOCK_PREFIX})"
                    for p in pairs)))
        files = hook_files(ctx)
        before = snapshot(ctx.conn, files)
        note = f"# suspension-agent case {ctx.case_id}: mail of {ctx.account} blocked\n".encode()
        writes = [Write(before[f], FileState(f, True, note, 0o644, "0:0")) for f in files
                  if not before[f].exists]
        actions: list = [*edits, *writes]
        # Dovecot looks at a changed passwd-file at most once a second and may cache passdb
        # answers: wait that second and flush, so no new login slips in, then end sessions.
        if edits:
            actions.append(_settle(paths.doveadm, [e.path for e in edits]))
        # Only names Dovecot accepts at login can hold a session ("*" would be a wildcard, a
        # name with a space is refused at login anyway); "--" ends options ("-a@shop.test").
        actions += [Run([paths.doveadm, "kick", "--", address], ok_codes=(0, 68))
                    for address in locked if probes.dovecot_login_name(address)]
        undo = {"edits": [{"path": e.path, "pairs": [list(p) for p in e.pairs]} for e in edits],
                "files": [before[f].to_dict() for f in files if not before[f].exists],
                "locked": locked, "already_disabled": already,
                "incoming": ctx.params.get("incoming", "accept")}
        return Plan(self.name, actions, facts={"mailboxes": locked, "already_disabled": already},
                    undo=undo)

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        actions: list = []
        for edit in undo["edits"]:
            pairs = tuple(tuple(p) for p in edit["pairs"])
            actions.append(EditLines(edit["path"], pairs, ()).reversed(tuple(
                f"unlock mailbox {old.split(':', 1)[0]}" for old, _new in pairs)))
        for d in undo["files"]:
            state = FileState.from_dict(d)
            current = snapshot(ctx.conn, [state.path])[state.path]
            if current != state:
                actions.append(Write(current, state))
        # Dovecot's settle-and-flush comes at the end of `verify`, after the probes, so the
        # wait for its clock to turn overlaps with them (it depends only on file mtimes).
        return Plan(self.name, actions, undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the locks where Dovecot reads them, and ask Exim what a sender meets."""
        paths = ctx.server.linux
        if suspended or not undo["edits"]:
            self._probe(ctx, undo, suspended)
            return
        # Unlocking: Dovecot's settle-and-flush waits for its clock to turn; it depends only
        # on the files' mtimes, so it runs beside the probes instead of after them.
        settle = _settle(paths.doveadm, [e["path"] for e in undo["edits"]])
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(settle.carry_out, ctx.conn)
            try:
                self._probe(ctx, undo, suspended)
            finally:
                waiting.result()

    def _probe(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        paths = ctx.server.linux
        problems = []
        if suspended and undo["locked"]:
            pattern = f"{paths.vmail_dir}/%d/shadow"
            passdbs = probes.dovecot_passdbs(ctx.conn, paths.doveconf)
            if not any(pattern in p.get("args", "").split() for p in passdbs):
                problems.append(f"Dovecot's passdb does not read {pattern}")
            problems += [f"Dovecot also authenticates through {o}"
                         for o in probes.foreign_passdbs(passdbs, pattern)]
        # One read for every edited file and hook file, one call for the mailbox lookups.
        found = ctx.conn.read_many([e["path"] for e in undo["edits"]]
                                   + [d["path"] for d in undo["files"]])
        for edit in undo["edits"]:
            lines = file_lines(found[edit["path"]].data)
            for old, new in edit["pairs"]:
                user = old.split(":", 1)[0]
                if (new if suspended else old) not in lines:
                    problems.append(f"{edit['path']}: {user} is "
                                    f"{'not locked' if suspended else 'still locked'}")
        plain = [a for a in undo["locked"] if probes.dovecot_login_name(a)]
        for address in probes.dovecot_unknown(ctx.conn, paths.doveadm, plain[:3]):
            problems.append(f"Dovecot does not know mailbox {address}")
        for d in undo["files"]:
            if found[d["path"]].exists != suspended:
                problems.append(f"{d['path']} should {'' if suspended else 'not '}exist")
        # Exim's ACL keys on the domain's owner, so any plain address of the account will do;
        # with none, the hook files read above are what Exim's ACL reads.
        mailbox = [a for a in undo["locked"] + undo["already_disabled"]
                   if probes.plain_address(a)][:1]
        if mailbox:
            want = {"accept": 250, "reject": 550, "defer": 451}[
                undo["incoming"] if suspended else "accept"]
            code = probes.exim_rcpt(ctx.conn, paths.exim, mailbox[0])
            if code != want:
                problems.append(f"Exim answers RCPT TO:<{mailbox[0]}> with {code}, "
                                f"expected {want}")
        if problems:
            raise VerifyFailed("; ".join(problems))


def _refuse_foreign_passdbs(ctx: Context) -> None:
    """Refuse (at plan time) when Dovecot could still let a locked mailbox in elsewhere."""
    paths = ctx.server.linux
    others = probes.foreign_passdbs(probes.dovecot_passdbs(ctx.conn, paths.doveconf),
                                    f"{paths.vmail_dir}/%d/shadow")
    if others:
        raise StepError("Dovecot also authenticates through " + "; ".join(others)
                        + f", which mail_block does not control: a mailbox locked in "
                        f"{paths.vmail_dir}/<domain>/shadow could still log in there. Remove "
                        "that passdb (or make it deny = yes); see docs/linux-host.md")


def _settle(doveadm: str, files: list[str]) -> Run:
    return Run(["sh", "-c", _SETTLE, "sh", doveadm, *files], timeout=30)
