"""/scripts/suspendacct and /scripts/unsuspendacct, step by step as panels.md A7 and A8 list
them, with the real effect of each step on the host's services."""

from __future__ import annotations

import os
import signal
import time

from . import accounts, db, ftp, mail, store, team, web, webdisk

SCRIPTS = "/usr/local/cpanel/scripts"
CRON = "/var/spool/cron/crontabs"


def _hook(name: str, args: list[str]) -> tuple[int, str]:
    # Legacy hook scripts (A7 step 2 / 14, A10): run when executable; `pre` failure aborts.
    path = f"{SCRIPTS}/{name}"
    if not os.access(path, os.X_OK):
        return 0, ""
    return store.run([path, *args])


def kill_processes(uid: int) -> int:
    """A7 step 5: `kill -9` every process of `uid`, but only those whose root is this host's
    root: the test host shares its kernel (and pids) with the CI machine."""
    here = os.stat("/")
    killed = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            root = os.stat(f"/proc/{entry}/root")
            if (root.st_dev, root.st_ino) != (here.st_dev, here.st_ino):
                continue
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            os.kill(int(entry), signal.SIGKILL)
            killed += 1
        except OSError:
            continue
    return killed


SSH_GROUP = "cpanelsuspended"


def ssh_group(user: str, member: bool) -> None:
    """Add `user` to cpanelsuspended, or remove it when it is a member (SSH.pm)."""
    code, out = store.run(["getent", "group", SSH_GROUP])
    if code != 0:
        return  # Cpanel::Sys::Group->load_group_only dies; the sim's hosts always have it
    members = out.strip().split(":")[3].split(",") if out.count(":") >= 3 else []
    if member and user not in members:
        store.run(["gpasswd", "--add", user, SSH_GROUP])
    elif not member and user in members:
        store.run(["gpasswd", "--delete", user, SSH_GROUP])


def _move(src: str, dst: str) -> None:
    if os.path.exists(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)


def _mysql(user: str, lock: bool) -> str:
    # (un)suspendmysqlusers; a failure only warns (A7 step 8).
    verb = "suspend" if lock else "unsuspend"
    try:
        db.set_locked(user, lock)
    except RuntimeError as exc:
        return f"Warning: failed to {verb} mysql users: {exc}\n"
    return f"{verb.capitalize()}ing mysql users\n"


def _web() -> str:
    # account_suspensions.conf anew, then Apache restarted (A7 step 11, A8); a failed restart
    # only warns, the rest of the script goes on.
    web.write_suspensions()
    code, text = web.restart()
    return f"Warning: {text}" if code != 0 else ""


def suspendacct(user: str, reason: str = "", disallow: bool = False,
                leave_ftp: bool = False, force: bool = False) -> tuple[int, str]:
    """Suspend `user` as /scripts/suspendacct does (A7 steps 1-14); return (exit code,
    output). Refusals (already suspended, reserved user, pre-hook failure) exit 1."""
    out: list[str] = []
    if user in store.RESERVED or store.cpuser(user) is None:
        return 1, f"User '{user}' does not exist or may not be suspended.\n"
    entry = store.passwd_entry(user)
    if entry is None:
        return 1, f"User '{user}' has no system account.\n"
    if accounts.is_suspended(user) and not force:
        return 1, f"User '{user}' is already suspended; use --force to suspend again.\n"
    args = [user, reason, "1" if disallow else "0"]
    code, text = _hook("presuspendacct", args)
    if code != 0:
        return 1, f"Pre-suspend hook script returned failure: {text}"
    # Step 3: shell and system password (login, SSH, SFTP).
    prior_shell = entry[6]
    store.run(["usermod", "-s", "/bin/false", user])
    out.append("Changing Shell to /bin/false...Done\n")
    current = store.system_hash(user) or ""
    store.set_system_hash(user, "!!" + current)
    out.append("Locking Password...Done\n")
    # Step 4: reason (no `=` or newlines), lock file, what unsuspend needs back.
    clean = reason.replace("=", "").replace("\n", " ").replace("\r", " ")
    store.write_atomic(f"{store.SUSPENDED_DIR}/{user}", clean, mode=0o644)
    if disallow:
        store.write_atomic(f"{store.SUSPENDED_DIR}/{user}.lock", "", mode=0o644)
    if not os.path.exists(f"{store.SUSPENDINFO_DIR}/{user}") or not force:
        store.write_atomic(f"{store.SUSPENDINFO_DIR}/{user}",
                           f"shell={prior_shell}\nleave-ftp-accts-enabled={int(leave_ftp)}\n",
                           mode=0o600)
    # Step 5: forced logout.
    kill_processes(int(entry[2]))
    # Whostmgr::Accounts::Suspend's helpers (scripts/suspendacct:254; Whostmgr/Accounts/
    # Suspension/Base.pm _ALWAYS_MODULES): SSH.pm puts the user in cpanelsuspended, which
    # sshd_config denies (review F9).
    ssh_group(user, True)
    # Step 6: every mailbox password.
    mail.lock_all(user)
    webdisk.suspend(user)  # scripts/suspendacct:153, 205-207 (review F9)
    out.append("Suspending email account logins .......Done\n")
    # Step 8: MySQL users (a failure only warns, as in A7).
    out.append(_mysql(user, True))
    team.suspend_team(user)  # scripts/suspendacct:229 (review F9)
    # Step 9: cpuser flags.
    store.update_cpuser(user, {"SUSPENDED": "1", "SUSPENDTIME": str(int(time.time()))})
    # Step 10: crontab aside, public_ftp closed.
    _move(f"{CRON}/{user}", f"{CRON}.suspended/{user}")
    public_ftp = f"{mail.home(user)}/public_ftp"
    if os.path.isdir(public_ftp):
        os.chmod(public_ftp, 0)
    # Step 11: web.
    out.append(_web())
    # Step 12: FTP.
    if not leave_ftp and ftp.suspend(user):
        out.append("Suspending FTP accounts...Done\n")
    # Step 13: outgoing mail.
    mail.account_outgoing(user, suspended=True)
    out.append("Suspending outgoing email...Done\n")
    _hook("postsuspendacct", args)
    # The exact sentence suspendreseller looks for (A9).
    out.append(f"{user}'s account has been suspended\n")
    return 0, "".join(out)


def unsuspendacct(user: str, retain_proxies: bool = False) -> tuple[int, str]:
    """Unsuspend as /scripts/unsuspendacct does (A8); return (exit code, output). Refuses
    (exit 1) unless the system hash starts with `!` or `*`. Accepts a domain for `user`."""
    if "." in user and store.cpuser(user) is None:
        user = store.user_of_domain(user) or user
    if store.cpuser(user) is None or store.passwd_entry(user) is None:
        return 1, f"User '{user}' does not exist.\n"
    current = store.system_hash(user) or ""
    if not current.startswith(("!", "*")):
        text = f"{user} is not in a suspended state.\n"
        if os.path.exists(f"{store.BWLIMITED_DIR}/{user}"):
            text += "The account is over its bandwidth limit; increase the limit instead.\n"
        return 1, text
    code, text = _hook("preunsuspendacct", [user])
    if code != 0:
        return 1, f"Pre-unsuspend hook script returned failure: {text}"
    out = []
    info = dict(line.split("=", 1) for line in
                store.read(f"{store.SUSPENDINFO_DIR}/{user}").splitlines() if "=" in line)
    shell = info.get("shell") or "/usr/local/cpanel/bin/noshell"
    store.run(["usermod", "-s", shell, user])
    out.append(f"Restoring shell to {shell}...Done\n")
    store.set_system_hash(user, current.lstrip("!"))
    store.update_cpuser(user, drop=("SUSPENDED", "SUSPENDTIME"))
    # Every *LOCKED* of every mailbox goes, locked on purpose before or not (A8, C2.4).
    mail.unlock_all(user)
    webdisk.unsuspend(user)  # scripts/unsuspendacct:250, 259-261 (review F9)
    public_ftp = f"{mail.home(user)}/public_ftp"
    if os.path.isdir(public_ftp):
        os.chmod(public_ftp, 0o755)
    _move(f"{CRON}.suspended/{user}", f"{CRON}/{user}")
    ssh_group(user, False)  # Whostmgr/Accounts/Suspension/SSH.pm unsuspend (review F9)
    if ftp.unsuspend(user):
        out.append("Restoring FTP accounts...Done\n")
    out.append(_mysql(user, False))
    team.unsuspend_team(user)  # scripts/unsuspendacct, after the MySQL users (review F9)
    # Always, whatever suspended the outgoing mail (A8, C2.4).
    mail.account_outgoing(user, suspended=False)
    for name in (user, f"{user}.lock"):
        try:
            os.unlink(f"{store.SUSPENDED_DIR}/{name}")
        except FileNotFoundError:
            pass
    try:
        os.unlink(f"{store.SUSPENDINFO_DIR}/{user}")
    except FileNotFoundError:
        pass
    out.append(_web())
    _hook("postunsuspendacct", [user])
    # [SRC] asmrdevelop/cpanel @393631a2 scripts/unsuspendacct:402-415: unless
    # --retain-service-proxies, every service-proxy backend of the account goes
    # (Cpanel::AccountProxy::Transaction::unset_all_backends_and_update_services); the
    # backends are the cpuser keys PROXY_BACKEND and PROXY_BACKEND-<worker>
    # (Cpanel/AccountProxy/Storage.pm:50, 237-239). Review finding F14.
    if retain_proxies:
        out.append("Keep service proxying settings for this account...Done\n")
    else:
        keys = [k for k in store.cpuser(user) or {} if k == "PROXY_BACKEND"
                or k.startswith("PROXY_BACKEND-")]
        store.update_cpuser(user, drop=tuple(keys))
        out.append("The system will disable service proxying for this account...Done\n")
    out.append(f"{user}'s account is now active\n")
    return 0, "".join(out)
