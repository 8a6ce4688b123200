"""Every way Dovecot can authenticate a mailbox, and the agent's own `deny = yes` passdb.

Two layouts are supported (docs/linux-host.md):

- virtual mailboxes: a passwd-file passdb reads `<vmail_dir>/%d/shadow`, where mail_block
  prefixes a mailbox's password with `*LOCKED*` (cPanel's way);
- system users: Debian's stock `passdb { driver = pam }` (or passwd/shadow) with the
  account's unix login as the mailbox. A password cannot be locked there without locking
  SSH and everything else that reads /etc/shadow, so mail_block lists the login in an
  agent-managed passwd-file passdb with `deny = yes` that Dovecot consults before every
  other passdb: a listed login fails whatever backend would have accepted its password.

Any other passdb (sql, ldap, checkpassword, ...) is a way in the agent does not control,
unless the deny passdb comes first, in which case mail_block lists the locked virtual
addresses there too. Not a way in: a passdb that authenticates nobody because it gives
every login the `noauthenticate` field (`default_fields` or `override_fields`; it only looks
up fields, such as a `user` that renames a bare login to the full address). Dovecot then
takes its result as "next" whatever `result_success` says and verifies no password
(dovecot core, src/auth/auth-request.c, auth_request_handle_passdb_callback): the next
passdb decides, with the password the agent locked. Without that field the same passdb
with `result_success = continue` is a way in: a password it verified is not checked again
by the passdbs after it. Such a renaming passdb worked with the release of 2026-11-21 and
was refused as a way in until this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.config.servers import LinuxPaths
from agent.connector import Connector
from agent.drivers.linux import service_probes as probes
from agent.errors import VerifyFailed

# Passdbs that check the unix password of a system user.
SYSTEM_DRIVERS = ("pam", "passwd", "shadow", "bsdauth")
# `doveadm auth test` prints this extra field when a deny passdb refused the login; it is
# printed whatever password was given, so the probe needs none.
_DISABLED = "code=user_disabled"
PROBE_PASSWORD = "suspension-agent-probe"  # noqa: S105 - deliberately wrong, never a secret
# One round trip: `login<TAB>denied|open` per login; exit 3 when doveadm itself fails.
_TESTS = ('d=$1; p=$2; shift 2; for a do o=$("$d" auth test -- "$a" "$p" 2>&1); rc=$?; '
          'case $rc in 0|77) ;; *) echo "doveadm auth test failed ($rc): $o" >&2; exit 3;; '
          'esac; case $o in *' + _DISABLED + '*) s=denied;; *) s=open;; esac; '
          'printf "%s\\t%s\\n" "$a" "$s"; done')


def _describe(passdb: dict[str, str]) -> str:
    return f"driver={passdb.get('driver', '?')} args={passdb.get('args', '') or '-'}"


@dataclass(frozen=True)
class DovecotAuth:
    """Dovecot's effective passdbs, sorted by what mail_block can do about each."""

    deny_file: str
    vmail: bool = False                      # a passdb reads <vmail_dir>/%d/shadow
    deny_first: bool = False                 # the agent's deny passdb is consulted first
    system: list[str] = field(default_factory=list)   # system-user passdbs
    others: list[str] = field(default_factory=list)   # any other way in
    lookups: list[str] = field(default_factory=list)  # passdbs that authenticate nobody

    @property
    def layout(self) -> str:
        """Name the mailbox layout found, as `check` and plans show it."""
        kinds = (["virtual mailboxes (passwd-file)"] if self.vmail else []) + (
            [f"system users ({', '.join(self.system)})"] if self.system else [])
        return " + ".join(kinds) or "none the agent knows"

    def uncovered(self) -> list[str]:
        """Return the passdbs that could let a locked mailbox in: none when the deny passdb
        comes first, else every passdb besides the virtual mailboxes' passwd-file."""
        if self.deny_first:
            return []
        return [f"{d} (no deny passdb {self.deny_file} before it)" for d in self.system
                ] + self.others


def read(conn: Connector, paths: LinuxPaths) -> DovecotAuth:
    """Ask Dovecot (`doveconf passdb`, its effective configuration) how it authenticates."""
    passdbs = probes.dovecot_passdbs(conn, paths.doveconf)
    pattern = f"{paths.vmail_dir}/%d/shadow"

    def is_deny(p: dict[str, str]) -> bool:
        return (p.get("deny") == "yes" and p.get("driver") == "passwd-file"
                and paths.dovecot_deny_file in p.get("args", "").split())

    vmail = any(pattern in p.get("args", "").split() for p in passdbs)
    deny_first = bool(paths.dovecot_deny_file) and bool(passdbs) and is_deny(passdbs[0])
    system, others, lookups = [], [], []
    for p in passdbs:
        # A deny passdb only refuses; a master passdb needs the admin's own password.
        if p.get("deny") == "yes" or p.get("master") == "yes":
            continue
        if lookup_only(p):
            lookups.append(_describe(p))
            continue
        if pattern in p.get("args", "").split():
            continue
        if p.get("driver") in SYSTEM_DRIVERS:
            system.append(_describe(p))
        else:
            others.append(_describe(p))
    return DovecotAuth(paths.dovecot_deny_file, vmail, deny_first, system, others, lookups)


def lookup_only(passdb: dict[str, str]) -> bool:
    """Return True for a passdb that gives every login `noauthenticate`: it verifies no
    password and always hands the decision to the next passdb."""
    fields = f"{passdb.get('default_fields', '')} {passdb.get('override_fields', '')}"
    return any(word == "noauthenticate" or word.startswith("noauthenticate=")
               for word in fields.split())


def tests_command(doveadm: str, logins: list[str]) -> list[str]:
    """Return the command `denied` runs (a step may send it ahead: each.held)."""
    return ["sh", "-c", _TESTS, "sh", doveadm, PROBE_PASSWORD, *logins]


def denied(conn: Connector, doveadm: str, logins: list[str]) -> dict[str, bool]:
    """Return, for each login, whether Dovecot's running auth service refuses it as
    disabled (a deny passdb matched), asked with `doveadm auth test` in one round trip."""
    if not logins:
        return {}
    out = conn.run(tests_command(doveadm, logins)).text
    found = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    missing = [a for a in logins if a not in found]
    if missing:
        raise VerifyFailed(f"doveadm auth test gave no answer for {', '.join(missing)}")
    return {a: found[a] == "denied" for a in logins}
