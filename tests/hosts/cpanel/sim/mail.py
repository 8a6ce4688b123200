"""Mailboxes as cPanel keeps them, and the mail suspension switches Dovecot and Exim obey.

~USER/etc/DOMAIN/shadow  `local:HASH:lastchange::::::` (Dovecot's passdb, through the
                         /etc/dovecot/cpdomains/DOMAIN link); `*LOCKED*` before HASH locks it
~USER/etc/DOMAIN/passwd  `local:x:UID:GID::/home/USER/mail/DOMAIN/local:/home/USER` (userdb,
                         and Exim's list of mailboxes)
~USER/etc/.EMAIL.suspended_incoming   Exim rejects RCPT to EMAIL (panels.md A6 [SRC])
/etc/outgoing_mail_suspended_users    users and addresses whose mail out is refused (A4, A6)
/etc/outgoing_mail_hold_users         users and addresses whose mail out is held (A4, A6)
"""

from __future__ import annotations

import glob
import os
import time

from . import store

LOCKED = "*LOCKED*"
SPOOL = "/var/spool/exim4/input"


def home(user: str) -> str:
    """Return the home folder of `user` (from /etc/passwd; /home/USER when unknown)."""
    entry = store.passwd_entry(user)
    return entry[5] if entry else f"/home/{user}"


def _shadow_files(user: str) -> list[tuple[str, str]]:
    base = f"{home(user)}/etc"
    found = []
    for domain in store.domains_of(user):
        path = f"{base}/{domain}/shadow"
        if os.path.exists(path):
            found.append((domain, path))
    return found


def mailboxes(user: str) -> list[dict]:
    """Return every mailbox of `user`: email, local, domain, hash (as stored)."""
    boxes = []
    for domain, path in _shadow_files(user):
        for line in store.read(path).splitlines():
            fields = line.split(":")
            if len(fields) > 1 and fields[0]:
                boxes.append({"email": f"{fields[0]}@{domain}", "local": fields[0],
                              "domain": domain, "hash": fields[1]})
    return boxes


def _rewrite(user: str, change, only: str | None = None) -> int:  # noqa: ANN001
    """Apply `change(fields) -> fields` to each shadow line (of `only` if given); return
    how many lines changed."""
    changed = 0
    for domain, path in _shadow_files(user):
        out = []
        for line in store.read(path).splitlines():
            fields = line.split(":")
            if len(fields) > 1 and fields[0] and (only is None or
                                                  f"{fields[0]}@{domain}" == only):
                new = change(list(fields))
                changed += new != fields
                fields = new
            out.append(":".join(fields))
        store.write_atomic(path, "\n".join(out) + ("\n" if out else ""), mode=0o640)
    if changed:
        _settle()
    return changed


def _settle() -> None:
    # Dovecot rereads a passwd-file at most once per wall-clock second; cPanel flushes
    # Dovecot's auth cache so a change counts at once (A7 step 6). Returning only after the
    # second has turned gives callers the same: the next login sees the new file.
    time.sleep(1.05 - (time.time() % 1.0))


def lock_fields(fields: list[str]) -> list[str]:
    # A7 step 6: fields 1 and 8 get the prefix unless they already start with it, a missing
    # field made empty first ([SRC] asmrdevelop/cpanel @393631a2 scripts/suspendacct:424-429;
    # review F4). Dovecot ignores field 8 (tested).
    fields += [""] * (9 - len(fields))
    for index in (1, 8):
        if not fields[index].startswith(LOCKED):
            fields[index] = LOCKED + fields[index]
    return fields


def unlock_fields(fields: list[str]) -> list[str]:
    for index in (1, 8):
        while len(fields) > index and fields[index].startswith(LOCKED):
            fields[index] = fields[index][len(LOCKED):]
    return fields


def lock_all(user: str) -> None:
    """suspendacct step 6 (panels.md A7): prefix fields 1 (the hash) and 8 of every mailbox
    line with `*LOCKED*`, once (scripts/suspendacct:424-429)."""
    _rewrite(user, lock_fields)


def unlock_all(user: str) -> None:
    """unsuspendacct (panels.md A8, C2.4): strip EVERY leading `*LOCKED*` from every mailbox,
    including locks set on purpose before the suspension."""
    _rewrite(user, unlock_fields)


def find(user: str, email: str) -> dict | None:
    """Return the mailbox `email` of `user`, or None."""
    for box in mailboxes(user):
        if box["email"] == email.lower():
            return box
    return None


def suspend_login(user: str, email: str) -> None:
    """Email::suspend_login (A6): `!!` before the mailbox's hash unless it already starts
    with `!`, so IMAP, POP and SMTP AUTH refuse it: cPanel's webmail-password helper
    ([SRC] asmrdevelop/cpanel @393631a2 Cpanel/Security/Authn/Webmail/Password.pm:48-82,
    set_suspended; review F4). The Email module itself is compiled, so that it uses this
    helper is inferred (cpanel-review.md section 4); it fits list_pops below exactly. A
    hash under suspendacct's `*LOCKED*` does not start with `!`: it gets `!!` in front of
    that, which unsuspendacct's strip of a leading `*LOCKED*` then leaves in place."""
    _rewrite(user, lambda f: f if f[1].startswith("!") else _prefix(f, "!!"),
             only=email.lower())


def unsuspend_login(user: str, email: str) -> None:
    """Email::unsuspend_login (A6): unset_suspended (Password.pm:67-82): one leading `!`
    removed, then a second one if there is one; a hash not starting with `!` is left."""
    _rewrite(user, _unset_suspended, only=email.lower())


def _prefix(fields: list[str], text: str) -> list[str]:
    fields[1] = text + fields[1]
    return fields


def _unset_suspended(fields: list[str]) -> list[str]:
    for _ in range(2):
        if fields[1].startswith("!"):
            fields[1] = fields[1][1:]
    return fields


def _incoming_flag(user: str, email: str) -> str:
    return f"{home(user)}/etc/.{email.lower()}.suspended_incoming"


def suspend_incoming(user: str, email: str) -> None:
    """Email::suspend_incoming (A6 [SRC]): touch ~/etc/.EMAIL.suspended_incoming; Exim's RCPT
    ACL rejects mail to EMAIL while it exists."""
    entry = store.passwd_entry(user)
    owner = (int(entry[2]), int(entry[3])) if entry else (0, 0)
    store.write_atomic(_incoming_flag(user, email), "", mode=0o644, owner=owner)


def unsuspend_incoming(user: str, email: str) -> None:
    """Email::unsuspend_incoming: remove the flag file."""
    try:
        os.unlink(_incoming_flag(user, email))
    except FileNotFoundError:
        pass


def incoming_suspended(user: str, email: str) -> bool:
    """True while mail to `email` is refused at RCPT."""
    return os.path.exists(_incoming_flag(user, email))


def set_outgoing(name: str, suspended: bool | None = None, held: bool | None = None) -> None:
    """Ensure `name` (an account or one address) is (not) in the outgoing suspended/held lists
    Exim reads (A4 for accounts, A6 for addresses)."""
    for flag, path in ((suspended, store.OUTGOING_SUSPENDED), (held, store.OUTGOING_HOLD)):
        if flag is True:
            store.list_add(path, name)
        elif flag is False:
            store.list_remove(path, name)


def account_outgoing(user: str, suspended: bool | None = None, held: bool | None = None,
                     ) -> None:
    """suspend/unsuspend/hold/release_outgoing_email for an account (A4, A7 step 13): the
    list file plus OUTGOING_MAIL_SUSPENDED / OUTGOING_MAIL_HOLD=<time> in the cpuser file."""
    now = str(int(time.time()))
    set_outgoing(user, suspended=suspended, held=held)
    for flag, key in ((suspended, "OUTGOING_MAIL_SUSPENDED"), (held, "OUTGOING_MAIL_HOLD")):
        if flag is True:
            store.update_cpuser(user, {key: now})
        elif flag is False:
            store.update_cpuser(user, drop=(key,))
    if suspended is True:
        fail_queued(user)
    if held is False:
        flush_queue()


def fail_queued(user: str) -> list[str]:
    """suspend_outgoing_email "forces failure" of the account's queued mail (A4): every
    message in Exim's queue sent by the account (SMTP AUTH as one of its addresses, or its
    unix user) is given up (bounced). Returns the message ids."""
    domains = set(store.domains_of(user))
    failed = []
    for header in glob.glob(f"{SPOOL}/*-H"):
        sender = {}
        for line in store.read(header).splitlines():
            key, _, value = line.partition(" ")
            # `--name` is Exim's spelling of a tainted value, `-name` of a clean one.
            if key.lstrip("-") in ("ident", "auth_id") and key.startswith("-"):
                sender[key.lstrip("-")] = value.strip()
        auth = sender.get("auth_id", "")
        if sender.get("ident") == user or auth.rpartition("@")[2].lower() in domains:
            message_id = os.path.basename(header)[:-2]
            if store.run(["/usr/sbin/exim4", "-Mg", message_id])[0] == 0:
                failed.append(message_id)
    return failed


def flush_queue() -> None:
    """Start a forced Exim queue run in the background, so released mail leaves now (A4:
    held mail waits in the queue until released)."""
    store.spawn(["/usr/sbin/exim4", "-qff"])


def list_pops(user: str, skip_main: bool = False) -> list[dict]:
    """Email::list_pops (A6; field names are [INF] there): one entry per mailbox, plus the
    account's main login unless `skip_main`."""
    suspended = set(store.list_file(store.OUTGOING_SUSPENDED))
    held = set(store.list_file(store.OUTGOING_HOLD))
    out = []
    for box in mailboxes(user):
        email = box["email"]
        out.append({"email": email, "login": email,
                    # [SRC] Cpanel/Email/Accounts.pm:368: the hash's first character is
                    # `!`; so during suspendacct's `*LOCKED*` every mailbox reads 0 (F4).
                    "suspended_login": int(box["hash"].startswith("!")),
                    "suspended_incoming": int(incoming_suspended(user, email)),
                    "suspended_outgoing": int(email in suspended),
                    "hold_outgoing": int(email in held)})
    if not skip_main:
        out.append({"email": user, "login": user, "suspended_login": 0,
                    "suspended_incoming": 0, "suspended_outgoing": int(user in suspended),
                    "hold_outgoing": int(user in held)})
    return out
