"""panel_lock on a plain host: the account's own logins (password, shell and SSH keys).

Mechanism (linux driver): `usermod --lock --shell <nologin>` puts `!` before the password
hash and sets a no-login shell; the prior hash and shell are kept in the journal and put
back exactly (`usermod --unlock` removes the one `!` that --lock added, `--shell` restores
the shell; a hash that was already locked is not touched either way). SSH keys: an sshd
drop-in `<sshd_config_dir>/suspension-agent-<account>.conf` says `DenyUsers <account>`,
which sshd checks before any authentication method, so keys, passwords and SFTP all fail;
`sshd -t` checks the config before sshd is told to reload (SIGHUP to the pid in its pid
file; running sessions stay). The account's processes are killed only when the playbook
sets `kill_processes: true` (that part cannot be undone).
"""

from __future__ import annotations

import time
from typing import Any

from agent.drivers import linux
from agent.errors import VerifyFailed
from agent.steps import account_files, login_hash
from agent.steps.actions import FileState, Run, Write, carry_out, snapshot
from agent.steps.protocol import Context, Plan

# Constant script; the pid file path arrives as $1, never spliced into the text. sshd answers
# SIGHUP by re-executing itself, re-reading its config and rewriting its pid file before it
# accepts again; a second HUP while it is still starting kills it (no handler yet). So, under
# a lock beside the pid file (two agents, or a killed agent's script still running on the
# server, never interleave): wait until the pid file is 0.3 s old (sshd settled), HUP, then
# wait until sshd has rewritten its pid file, i.e. the running daemon read the files as now.
_HUP_SSHD = (
    'exec 9>>"$1.suspension-agent.lock" && flock -w 60 9 || exit 3; '
    'pid=$(cat -- "$1") && case "$pid" in *[!0-9]*|"") exit 3;; esac; i=0; '
    'while [ "$i" -lt 100 ]; do age=$(( $(date +%s%N) - $(stat -c %.9Y -- "$1" | tr -d .) )); '
    '[ "$age" -ge 300000000 ] && break; sleep 0.05; i=$((i+1)); done; '
    'before=$(stat -c %.9Y -- "$1") && kill -HUP "$pid" || exit 3; i=0; '
    'while [ "$i" -lt 200 ]; do sleep 0.05; now=$(stat -c %.9Y -- "$1" 2>/dev/null) && '
    '[ "$now" != "$before" ] && exit 0; i=$((i+1)); done; '
    'echo "sshd (pid $pid) did not restart within 10 s of SIGHUP" >&2; exit 4'
)


# usermod refuses ("cannot lock /etc/passwd") while another usermod holds the files: the
# agent's own usermods (a reseller batch runs several side by side, or two agents) wait for
# each other on this lock on the server (agent/steps/account_files.py).
USERMOD_LOCK = account_files.LOCK
# How long the probe waits for a reload that another account's change has under way.
SETTLE = 10.0


def dropin_path(ctx: Context) -> str:
    return f"{ctx.server.linux.sshd_config_dir}/suspension-agent-{ctx.account}.conf"


class PanelLock:
    """Locks the account's password, shell and SSH access; restores them exactly."""

    name = "panel_lock"

    def plan(self, ctx: Context) -> Plan:
        paths = ctx.server.linux
        fields, hashed = linux.login_entry(ctx.conn, paths, ctx.account)
        dropin = dropin_path(ctx)
        before = snapshot(ctx.conn, [dropin])[dropin]
        text = (f"# suspension-agent case {ctx.case_id}: logins of {ctx.account} suspended\n"
                f"DenyUsers {ctx.account}\n").encode()
        argv = [paths.usermod]
        if not hashed.startswith("!"):
            argv.append("--lock")
        if fields[6] != paths.nologin_shell:
            argv += ["--shell", paths.nologin_shell]
        actions: list = [_usermod([*argv, ctx.account])] if len(argv) > 1 else []
        actions.append(Write(before, FileState(dropin, True, text, 0o644, "0:0")))
        # The finish: sshd tested and reloaded once for a whole batch of accounts.
        finish = [Run([paths.sshd, "-t"]), _reload(paths)]
        if ctx.params.get("kill_processes"):
            finish.append(Run(["pkill", "--signal", "KILL", "--uid", ctx.account],
                              ok_codes=(0, 1)))
        return Plan(self.name, actions, facts={"shell": fields[6]},
                    undo={**login_hash.kept(hashed), "shell": fields[6],
                          "locked_here": "--lock" in argv, "dropin": before.to_dict()},
                    finish=finish)

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        # A drop-in that fails `sshd -t` is put back by the runner at once from the undo data
        # (or the change is marked stuck), so it never waits for the next reload to break sshd.
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        paths = ctx.server.linux
        fields, hashed = linux.login_entry(ctx.conn, paths, ctx.account)
        argv = [paths.usermod]
        if undo["locked_here"] and hashed.startswith("!") and login_hash.is_before(
                hashed[1:], undo):
            argv.append("--unlock")
        if fields[6] != undo["shell"]:
            argv += ["--shell", undo["shell"]]
        actions: list = [_usermod([*argv, ctx.account])] if len(argv) > 1 else []
        before = FileState.from_dict(undo["dropin"])
        current = snapshot(ctx.conn, [before.path])[before.path]
        if current != before:
            actions.append(Write(current, before))
        # HUP even when the drop-in is already gone: a run that died between the removal
        # and the HUP left sshd denying the account with files that look restored.
        return Plan(self.name, actions, undo=undo,
                    finish=[Run([paths.sshd, "-t"]), _reload(paths)])

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the shadow hash, the shell and sshd's effective rules for the account."""
        paths = ctx.server.linux
        problems = []
        fields, hashed = linux.login_entry(ctx.conn, paths, ctx.account)
        shell = fields[6]
        if suspended and not hashed.startswith("!"):
            problems.append("the password is not locked")
        if not suspended and not login_hash.is_before(hashed, undo):
            problems.append("the password hash is not the one from before the case")
        want = paths.nologin_shell if suspended else undo["shell"]
        if shell != want:
            problems.append(f"the shell is {shell}, expected {want}")
        # The running daemon: its pid file (rewritten at each start) must be no older than the
        # last change in the drop-in folder, else the files below are not what sshd enforces.
        # Another account's drop-in may have landed since this one's reload, its own reload
        # still under way: wait for that one a little.
        deadline = time.monotonic() + SETTLE
        while True:
            started, changed = (int(x.replace(".", "")) for x in ctx.conn.run(
                ["stat", "-c", "%.9Y", "--", paths.sshd_pid_file,
                 paths.sshd_config_dir]).text.split())
            if started >= changed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if started < changed:
            problems.append("the running sshd has not re-read its config since the drop-in "
                            f"folder {paths.sshd_config_dir} changed")
        effective = ctx.conn.run([paths.sshd, "-T", "-C",
                                  f"user={ctx.account},host=probe.invalid,addr=192.0.2.1"]).text
        denied = any(line.split()[0] == "denyusers" and ctx.account in line.split()[1:]
                     for line in effective.splitlines() if line.strip())
        was_denied = FileState.from_dict(undo["dropin"]).exists
        if denied != (suspended or was_denied):
            problems.append(f"sshd {'does not deny' if suspended else 'still denies'} "
                            f"{ctx.account}")
        if problems:
            raise VerifyFailed("; ".join(problems))


def _usermod(argv: list[str]) -> Run:
    """usermod under the server-side lock that keeps the agent's usermods apart."""
    return account_files.run(argv)


def _reload(paths) -> Run:  # noqa: ANN001 - LinuxPaths
    return Run(["sh", "-c", _HUP_SSHD, "sh", paths.sshd_pid_file])
