"""ftp_lock on cPanel: none of the account's FTP logins work; exactly those come back.

cPanel has no per-account FTP suspension in its APIs: the only native lock is the whole
`suspendacct` (reference/panels.md C1, A4), which would also take the site, mail, databases
and cron at once and break the graded ladder. The account's FTP logins live in
`/etc/proftpd/<user>`, which cPanel's `ftpupdate` rebuilds whenever the account or the file
changed (cpanel-review.md F1; bin/ftpupdate): it writes the main login's line (and the
`USER_logs` one) again from the system password entry, so a lock written there is gone at
the next rebuild. So:

- the main FTP login is locked where ftpupdate takes it from: the account's system hash
  gets a `!` (`usermod --lock`, as panel_lock does; a hash already locked is left alone).
  That is also the account's password for cPanel, webmail as the account and SSH, which
  stop with it; the plan says so. Reverting unlocks it only while it is still exactly our
  lock (an admin's new password stays);
- each sub-account that `Ftp::list_ftp` reports gets `!` before its hash, which ftpupdate
  keeps (`ftp_file.FtpHashes`: found by login, whatever else ftpupdate rewrote in the line);
- then `ftpupdate` runs, and verify reads the file again: every login locked there, the
  main and `_logs` lines included, and the system hash locked;
- Web Disk (WebDAV file access, review F9): every login in `~/etc/webdav/shadow` and the
  account's own Digest login in /etc/digestshadow get a `!` (webdisk.py, webdisk_lock.py).

The journal keeps digests of the hashes, never a hash. Logins already locked before the
case are left alone and stay locked. Once ftpupdate has run, the open Pure-FTPd sessions of
exactly the logins this step locked are ended, as root over the connector
(agent/steps/ftp_sessions.py: `pure-ftpwho -s`, then SIGTERM to those sessions, each only
while it runs as the uid of its line), so a client that reconnects meets the lock. Without
a runnable `cpanel.pure_ftpwho` the step refuses at plan time, unless
`cpanel.ftp_sessions: leave` (a ProFTPD server, whose sessions pure-ftpwho cannot see) says
to leave sessions running, which the plan then states. Nothing is undone for the ended
sessions.
"""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel import ftp_file, webdisk_lock
from agent.drivers.cpanel.facts import Panel, account_name
from agent.drivers.cpanel.ftp_file import LOCKED, FtpHashes, digest, login_key
from agent.drivers.cpanel.panel_lock import login_entry
from agent.errors import StepError, VerifyFailed
from agent.steps import account_files, ftp_sessions
from agent.steps.actions import Run, Skipped, carry_out
from agent.steps.edit_lines import EditLines, file_lines
from agent.steps.protocol import Context, Plan

ALSO = ("cPanel's main FTP login is the account's system password (ftpupdate copies it), "
        "so locking it also stops password logins to cPanel, webmail as the account and SSH")


def passwd_file(ctx: Context) -> str:
    return f"{ctx.server.cpanel.ftp_passwd_dir}/{ctx.account}"


class FtpLock:
    """Locks a cPanel account's FTP logins: the main one by the system hash, the
    sub-accounts in its FTP password file."""

    name = "ftp_lock"

    def plan(self, ctx: Context) -> Plan:
        s = ctx.server.cpanel
        user = account_name(ctx.account)
        panel = Panel(ctx.server, ctx.conn)
        logins = panel.ftp_accounts(user)
        main_domain = panel.domains(user)["main"][0]
        path = passwd_file(ctx)
        in_file = ftp_file.hashes(ctx.conn.read(path), main_domain)
        passwd, shadow = login_entry(ctx)
        subs = [login_key(e["user"], main_domain) for e in logins if e["type"] != "main"]
        missing = [name for name in subs if name not in in_file]
        if missing:
            raise StepError(f"Ftp::list_ftp lists {', '.join(missing[:5])}, which {path} does "
                            "not hold: ftp_lock cannot lock them; nothing was changed")
        lock = [n for n in subs if not in_file[n].startswith(LOCKED)]
        already = [n for n in subs if n not in lock]
        hash_here = not shadow[1].startswith(LOCKED)
        uid = passwd[2]
        sessions = [(user, uid), (f"{user}_logs", uid)] if hash_here else []
        sessions += [(name, uid) for name in lock]
        leave = s.ftp_sessions == "leave"
        kill = [] if leave else ftp_sessions.kill_sessions(s.pure_ftpwho, sessions)
        if kill:
            ftp_sessions.require_pure_ftpwho(ctx.conn, s.pure_ftpwho, "cpanel.pure_ftpwho")
        digests = {n: digest(in_file[n]) for n in lock}
        actions: list = [account_files.run([s.usermod, "--lock", user])] if hash_here else []
        if lock:
            actions.append(FtpHashes(path, main_domain, tuple(digests.items()), True, tuple(
                f"lock FTP login {n} (prefix !)" for n in lock), s.safefile_wait))
        finish: list = []
        if actions:
            # ftpupdate carries the locked system hash into the main and _logs lines; the
            # sessions are ended once the lock is in place, so a reconnect meets it. Both
            # are the finish: ftpupdate rewrites every account's file, so a batch runs it
            # once after all the edits (one running beside another account's edit could
            # write that file back as it read it, the edit lost).
            finish = [Run([s.ftpupdate], timeout=300), *kill]
            if leave:
                finish.append(Skipped("open FTP sessions of the locked logins are left "
                                      "running (cpanel.ftp_sessions: leave)"))
        # Web Disk's logins need no ftpupdate (review F9; webdisk_lock.py).
        webdisk_actions, webdisk_undo = webdisk_lock.plan(ctx, user, passwd)
        return Plan(self.name, actions + webdisk_actions, finish=finish,
                    note="" if not hash_here else ALSO,
                    facts={"locked": ([user] if hash_here else []) + lock,
                           "already_locked": ([] if hash_here else [user]) + already,
                           "sessions_ended": [n for a in kill for n, _uid in a.logins],
                           "webdisk_locked": sorted(webdisk_undo["webdisk"]["logins"])},
                    undo={"path": path, "main_domain": main_domain, "locked": lock,
                          "digests": digests, "already_locked": already,
                          "hash_locked_here": hash_here,
                          "hash_digest": digest(shadow[1]) if hash_here else "",
                          **webdisk_undo})

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        s = ctx.server.cpanel
        if "pairs" in undo:
            return self._revert_lines(ctx, undo)
        actions: list = []
        if undo["hash_locked_here"]:
            _passwd, shadow = login_entry(ctx)
            # --unlock removes the one `!` --lock added; only while the hash is exactly that.
            if shadow[1].startswith("!") and digest(shadow[1][1:]) == undo["hash_digest"]:
                actions.append(account_files.run([s.usermod, "--unlock", ctx.account]))
        if undo["locked"]:
            actions.append(FtpHashes(undo["path"], undo["main_domain"],
                                     tuple(undo["digests"].items()), False,
                                     tuple(f"unlock FTP login {n}" for n in undo["locked"]),
                                     s.safefile_wait))
        # The finish, once for a whole batch (see plan).
        finish = ([Run([s.ftpupdate], timeout=300)]
                  if undo["hash_locked_here"] or undo["locked"] else [])
        actions += webdisk_lock.revert_plan(ctx, ctx.account, undo)
        return Plan(self.name, actions, finish=finish, undo=undo)

    def _revert_lines(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        # A change journaled by a release before F1 was fixed: whole lines, put back as they
        # were (such a change only ever held on a host whose ftpupdate keeps the lines).
        if not undo["pairs"]:
            return Plan(self.name, undo=undo)
        pairs = tuple((old, new) for old, new in undo["pairs"])
        edit = EditLines(undo["path"], pairs, ()).reversed(tuple(
            f"unlock FTP login {login}" for login in undo["locked"]))
        return Plan(self.name, [edit], finish=[Run([ctx.server.cpanel.ftpupdate], timeout=300)],
                    undo=undo)

    def repair_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan | None:
        """The locks put back while the case is open, when something lifted them (an admin's
        `unsuspendacct` strips every leading `!` of the system hash, which ftpupdate then
        copies into the main FTP line): the hash locked again while it is still the one
        from before, the sub-accounts this step locked that are open again with their old
        hash, then ftpupdate. None while all is in place."""
        if "pairs" in undo:
            return None  # journaled before F1: whole lines, not checked here
        s = ctx.server.cpanel
        user = ctx.account
        _passwd, shadow = login_entry(ctx)
        actions: list = []
        said = []
        if undo["hash_locked_here"] and not shadow[1].startswith(LOCKED):
            if digest(shadow[1]) != undo["hash_digest"]:
                raise StepError("the system hash (the main FTP login) is no longer locked and "
                                "is not the one from before the case: not locked again")
            actions.append(account_files.run([s.usermod, "--lock", user]))
            said.append("the system hash (the main FTP login) was unlocked")
        found = ftp_file.hashes(ctx.conn.read(undo["path"]), undo["main_domain"])
        reopen = [n for n in undo["locked"] if n in found and not found[n].startswith(LOCKED)
                  and digest(found[n]) == undo["digests"][n]]
        if reopen:
            actions.append(FtpHashes(undo["path"], undo["main_domain"],
                                     tuple((n, undo["digests"][n]) for n in reopen), True,
                                     tuple(f"lock FTP login {n} again" for n in reopen),
                                     s.safefile_wait))
            said.append(f"FTP logins {', '.join(reopen[:5])} were unlocked")
        mains = [n for n in (user, f"{user}_logs") if n in found
                 and not found[n].startswith(LOCKED)]
        if undo["hash_locked_here"] and mains and not said:
            said.append(f"FTP logins {', '.join(mains)} are open in {undo['path']}")
        if not said:
            return None
        return Plan(self.name, [*actions, Run([s.ftpupdate], timeout=300)],
                    note="; ".join(said), undo=undo)

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the FTP password file after ftpupdate and the system hash: every login
        locked (the main and _logs lines too), or none of them still under our lock."""
        if "pairs" in undo:
            lines = set(file_lines(ctx.conn.read(undo["path"])))
            bad = [old.split(":", 1)[0] for old, new in undo["pairs"]
                   if (new if suspended else old) not in lines]
            if bad:
                raise VerifyFailed(f"{undo['path']}: FTP logins {', '.join(bad[:8])} are not "
                                   f"{'locked' if suspended else 'as before the case'}")
            return
        user = ctx.account
        found = ftp_file.hashes(ctx.conn.read(undo["path"]), undo["main_domain"])
        _passwd, shadow = login_entry(ctx)
        problems = []
        if suspended:
            if not shadow[1].startswith(LOCKED):
                problems.append("the account's system hash (its main FTP login) is not locked")
            mains = [n for n in (user, f"{user}_logs") if n in found]
            subs = [n for n in undo["locked"] if n in found]
            problems += [f"FTP login {n} is not locked" for n in mains + subs
                         if not found[n].startswith(LOCKED)]
            problems += [f"FTP login {n} is gone from the file" for n in undo["locked"]
                         if n not in found]
        else:
            if undo["hash_locked_here"] and shadow[1].startswith("!") and digest(
                    shadow[1][1:]) == undo["hash_digest"]:
                problems.append("the account's system hash is still locked by this step")
            problems += [f"FTP login {n} is still locked by this step"
                         for n in undo["locked"] if n in found and found[n].startswith("!")
                         and digest(found[n][1:]) == undo["digests"][n]]
        problems = [f"{undo['path']}: {p}" for p in problems]
        problems += webdisk_lock.problems(ctx, user, undo, suspended)
        if problems:
            raise VerifyFailed("; ".join(problems[:8]))
