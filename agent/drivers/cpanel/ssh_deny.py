"""The account in cPanel's SSH deny group: no SSH login of any kind, no port forwarding.

A locked hash and the noshell shell stop password logins and shells, but not an SSH key
login where sshd checks accounts through PAM (`UsePAM yes`, the default on cPanel's
systems): `ssh -N -L ...` still forwards ports (cpanel-review.md F9). cPanel's own answer,
read in 11.120: its install creates the group `cpanelsuspended` and puts it in sshd's
`DenyGroups` (install/SSHD.pm:96-118), and suspendacct adds the account to the group,
unsuspendacct removes it (Whostmgr/Accounts/Suspension/SSH.pm, run by
Whostmgr::Accounts::Suspend from scripts/suspendacct:254). panel_lock does the same, and
checks the effect where sshd decides it: `sshd -T -C user=USER,...` prints the DenyGroups
that sshd's configuration gives a connection of that account (Match blocks included).
"""

from __future__ import annotations

from agent.errors import StepError
from agent.steps.protocol import Context


def members(ctx: Context) -> list[str] | None:
    """Return the deny group's members now, or None when the group does not exist."""
    s = ctx.server.cpanel
    result = ctx.conn.run([s.getent, "group", s.ssh_deny_group], ok_codes=(0, 2))
    fields = result.text.rstrip("\n").split(":")
    if result.rc == 2 or len(fields) < 4 or fields[0] != s.ssh_deny_group:
        return None
    return [m for m in fields[3].split(",") if m]


def denied_by_sshd(ctx: Context, user: str) -> bool:
    """True when sshd's configuration denies the group to a connection of `user`."""
    s = ctx.server.cpanel
    result = ctx.conn.run([s.sshd, "-T", "-C", f"user={user},host=localhost,addr=127.0.0.1"],
                          ok_codes=(0, 1, 255))
    if result.rc != 0:
        raise StepError(f"`{s.sshd} -T` failed on {ctx.server.name}: "
                        f"{result.text.strip()[-200:]} (cpanel.sshd)")
    for line in result.text.splitlines():
        key, _sp, value = line.partition(" ")
        if key.lower() == "denygroups" and s.ssh_deny_group in value.split():
            return True
    return False


def require(ctx: Context, user: str) -> list[str]:
    """Return the group's members; StepError (nothing changed) when the group is missing or
    sshd does not deny it, since then SSH key logins would stay open."""
    s = ctx.server.cpanel
    found = members(ctx)
    if found is None:
        raise StepError(f"there is no group {s.ssh_deny_group} on {ctx.server.name}: SSH key "
                        "logins and port forwarding would stay open (cPanel's install creates "
                        "it; cpanel.ssh_deny_group); nothing was changed")
    if not denied_by_sshd(ctx, user):
        raise StepError(f"sshd on {ctx.server.name} does not deny the group "
                        f"{s.ssh_deny_group} (no `DenyGroups ... {s.ssh_deny_group}` in "
                        "sshd_config, as cPanel's install sets it): SSH key logins and port "
                        "forwarding would stay open; nothing was changed")
    return found
