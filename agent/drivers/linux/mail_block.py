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

With system-user mailboxes (Debian's stock PAM passdb), the account's unix login is listed
in the agent's Dovecot deny passdb instead (agent/drivers/linux/dovecot_auth.py); that file
is shared by every account, so its edit is line-level under the server-wide "mail" lock.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent.drivers.linux import dovecot_auth, mail_verify
from agent.drivers.linux import service_probes as probes
from agent.errors import StepError, VerifyFailed
from agent.steps.actions import FileState, Run, Write, carry_out, snapshot
from agent.steps.edit_lines import EditLines, file_lines
from agent.steps.protocol import Context, Plan

LOCK_PREFIX = "*LOCKED*"
LOCK = "mail"  # the server-wide lock around edits of the shared deny file
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
# Unlocking a login listed in the deny passdb cannot be seen by asking for that login: a
# login the deny passdb does not refuse goes on to the next passdb (PAM), whose failure for
# the probe's wrong password takes pam_unix's 2 s delay (and counts as a failed login in
# pam_faillock). So the revert also lists a fresh login nobody has (at .invalid); after
# Dovecot's clock has left the second of the file's mtime, `doveadm auth test` of that login
# must answer "disabled" at once: the running auth service holds this very edit (or a later
# one), in which the account's logins are gone. Then the auth cache is flushed and the
# probe login removed again. Exit 5: Dovecot answered from older content.
_SETTLE_SEEN = ('d=$1; s=$2; p=$3; shift 3; m=0; for f do t=$(stat -c %Y -- "$f") || exit 3; '
                '[ "$t" -gt "$m" ] && m=$t; done; '
                'while [ "$(date +%s)" -le "$m" ]; do sleep 0.05; done; '
                'o=$("$d" auth test -- "$s" "$p" 2>&1); rc=$?; case $rc in 0|77) ;; *) '
                'echo "doveadm auth test failed ($rc): $o" >&2; exit 3;; esac; '
                'case $o in *code=user_disabled*) ;; *) echo "Dovecot does not refuse $s: it '
                'still answers from the deny file as it was before this edit" >&2; exit 5;; '
                'esac; exec "$d" auth cache flush')
PROBE_LOGIN = "suspension-agent-probe-{nonce}@probe.invalid"


def mail_domains(ctx: Context, required: bool = True) -> list[str]:
    """Return the mail domains /etc/userdomains gives the account, in file order; none when
    the file is missing and not `required` (a host without virtual mailboxes)."""
    raw = ctx.conn.read(ctx.server.linux.userdomains)
    if raw is None and not required:
        return []
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
        if ctx.params.get("outgoing", "suspend") != "suspend":
            # Exim's ACL hook can only refuse; queueing the account's mail would need a
            # router per account, which the one-time preparation does not add.
            raise StepError("mail_block: outgoing: hold is not available on the linux driver "
                            "(its Exim hook refuses mail, it cannot queue it); use "
                            "outgoing: suspend")
        if not ctx.conn.stat(paths.exim_hook_dir).exists:
            raise StepError(f"{paths.exim_hook_dir} does not exist: Exim is not set up with the "
                            "suspension-agent ACL (see docs/linux-host.md)")
        edits, locked, already = [], [], []
        auth = dovecot_auth.read(ctx.conn, paths)
        domains = mail_domains(ctx, required=auth.vmail)
        if (domains or auth.system) and auth.uncovered():
            _refuse(paths, auth)
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
        deny, deny_edit = _deny_plan(ctx, auth, locked, already)
        files = hook_files(ctx)
        before = snapshot(ctx.conn, files)
        note = f"# suspension-agent case {ctx.case_id}: mail of {ctx.account} blocked\n".encode()
        writes = [Write(before[f], FileState(f, True, note, 0o644, "0:0")) for f in files
                  if not before[f].exists]
        actions: list = [*edits, *deny_edit, *writes]
        # Dovecot looks at a changed passwd-file at most once a second and may cache passdb
        # answers: wait that second and flush, so no new login slips in, then end sessions.
        settled = [e.path for e in edits] + [e.path for e in deny_edit]
        if settled:
            actions.append(_settle(paths.doveadm, settled))
        # Only names Dovecot accepts at login can hold a session ("*" would be a wildcard, a
        # name with a space is refused at login anyway); "--" ends options ("-a@shop.test").
        actions += [Run([paths.doveadm, "kick", "--", login], ok_codes=(0, 68))
                    for login in dict.fromkeys(locked + deny)
                    if probes.dovecot_login_name(login)]
        undo = {"edits": [{"path": e.path, "pairs": [list(p) for p in e.pairs]} for e in edits],
                "files": [before[f].to_dict() for f in files if not before[f].exists],
                "locked": locked, "already_disabled": already,
                "deny": {"path": paths.dovecot_deny_file, "logins": deny} if deny else None,
                "incoming": ctx.params.get("incoming", "accept")}
        return Plan(self.name, actions, facts={"mailboxes": locked, "already_disabled": already,
                                               "denied_logins": deny, "layout": auth.layout},
                    undo=undo, lock=LOCK if deny else None)

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        actions: list = []
        for edit in undo["edits"]:
            pairs = tuple(tuple(p) for p in edit["pairs"])
            actions.append(EditLines(edit["path"], pairs, ()).reversed(tuple(
                f"unlock mailbox {old.split(':', 1)[0]}" for old, _new in pairs)))
        deny = undo.get("deny")
        if deny:
            # A fresh probe login, listed by the same edit (see _SETTLE_SEEN); verify, on
            # the same context, removes it again.
            seen = PROBE_LOGIN.format(nonce=secrets.token_hex(6))
            ctx.params["probe_login"] = seen
            actions.append(EditLines(
                deny["path"], tuple((x, "") for x in deny["logins"]) + (("", seen),),
                tuple(f"remove {x} (Dovecot may let it in again)" for x in deny["logins"])
                + (f"list {seen} for a moment (to see Dovecot read this edit)",)))
        states = [FileState.from_dict(d) for d in undo["files"]]
        now = snapshot(ctx.conn, [st.path for st in states]) if states else {}
        actions += [Write(now[st.path], st) for st in states if now[st.path] != st]
        # Dovecot's settle-and-flush comes at the end of `verify`, after the probes, so the
        # wait for its clock to turn overlaps with them (it depends only on file mtimes).
        return Plan(self.name, actions, undo=undo, lock=LOCK if deny else None)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the locks where Dovecot reads them, and ask Exim what a sender meets."""
        if suspended or not _settled(undo):
            mail_verify.probe(ctx, undo, suspended)
            return
        # Unlocking: Dovecot's settle-and-flush waits for its clock to turn; it depends only
        # on the files' mtimes, so it runs beside the probes instead of after them. With
        # the deny passdb, the wait ends with Dovecot's own answer for the probe login.
        seen = ctx.params.get("probe_login") if undo.get("deny") else None
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(self._settle_unlocked, ctx, undo, seen)
            try:
                mail_verify.probe(ctx, undo, suspended, seen is not None)
            finally:
                waiting.result()

    def _settle_unlocked(self, ctx: Context, undo: dict[str, Any], seen: str | None) -> None:
        """Wait for Dovecot's clock to turn and flush its auth cache; with a probe login,
        see Dovecot refuse it first (the edit is loaded), then remove it again."""
        paths = ctx.server.linux
        if seen is None:
            _settle(paths.doveadm, _settled(undo)).carry_out(ctx.conn)
            return
        deny = undo["deny"]["path"]
        result = ctx.conn.run(["sh", "-c", _SETTLE_SEEN, "sh", paths.doveadm, seen,
                               dovecot_auth.PROBE_PASSWORD, *_settled(undo)],
                              timeout=30, ok_codes=(0, 5))
        # The probe login goes whatever Dovecot answered; it refuses a login nobody has.
        EditLines(deny, ((seen, ""),), (f"remove {seen}",)).carry_out(ctx.conn)
        if result.rc == 5:
            raise VerifyFailed(result.err.strip() or f"Dovecot did not read {deny} again")



def _refuse(paths: Any, auth: dovecot_auth.DovecotAuth) -> None:
    """Refuse (at plan time): Dovecot could still let a locked mailbox in elsewhere."""
    raise StepError("Dovecot also authenticates through " + "; ".join(auth.uncovered())
                    + ", which mail_block does not control: a locked mailbox could still "
                    f"log in there. Add the deny passdb {paths.dovecot_deny_file} as Dovecot's "
                    "first passdb (or remove the other passdb); see docs/linux-host.md")


def _deny_plan(ctx: Context, auth: dovecot_auth.DovecotAuth, locked: list[str],
               already: list[str]) -> tuple[list[str], list[EditLines]]:
    """Return the logins to list in the deny file and the edit doing it (none if none).

    The account's unix login when a system passdb would take it; the locked virtual
    addresses too when some other passdb could. Logins listed before the case are left
    there (and after it), as already disabled.
    """
    wanted = [ctx.account] if auth.system else []
    if auth.others:
        wanted += [a.lower() for a in locked if probes.dovecot_login_name(a)]
    if not wanted:
        return [], []
    path = ctx.server.linux.dovecot_deny_file
    raw = ctx.conn.read(path)
    if raw is None:
        raise StepError(f"{path} does not exist on {ctx.server.name}: Dovecot's deny passdb "
                        "file must exist (empty) before mail_block can list a login in it")
    listed = file_lines(raw)
    add = [x for x in dict.fromkeys(wanted) if x not in listed]
    already += [x for x in dict.fromkeys(wanted) if x in listed]
    if not add:
        return [], []
    return add, [EditLines(path, tuple(("", x) for x in add),
                           tuple(f"list {x} (Dovecot refuses it)" for x in add))]


def _settled(undo: dict[str, Any]) -> list[str]:
    """Return the files Dovecot rereads that this change edited."""
    deny = undo.get("deny")
    return [e["path"] for e in undo["edits"]] + ([deny["path"]] if deny else [])


def _settle(doveadm: str, files: list[str]) -> Run:
    return Run(["sh", "-c", _SETTLE, "sh", doveadm, *files], timeout=30)
