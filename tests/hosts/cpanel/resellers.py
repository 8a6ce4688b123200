"""Reseller trees on a running cPanel test host: further accounts, each with its owner, some
of them resellers, laid out as provision_cpanel lays out its own.

What the simulator's WHM reads them from (panels.md A5, lockouts.md 4.2): the owner of each
account in /etc/trueuserowners (listaccts' `owner`, and getaccts, which suspendreseller
walks one level deep), reseller names in /var/cpanel/resellers (listresellers). So a chain
R -> S (a sub-reseller owned by R) -> c (owned by S) is three Account entries:
    add_accounts(host, [Account("r1", "r1", ..., reseller=True),
                        Account("s1", "r1", ..., reseller=True), Account("c1", "s1", ...)])
The accounts have sites on every vhost (layout.vhosts), a home with etc/, a MariaDB login of
their own name and a main FTP login; no mailboxes or databases.
"""

from __future__ import annotations

import time

from tests.hosts import hostfs
from tests.hosts.cpanel import layout, provision, services
from tests.hosts.cpanel.layout import Account
from tests.hosts.testhost import TestHost


def account(user: str, owner: str, reseller: bool = False) -> Account:
    """Return an account `user` owned by `owner`, main domain USER.test, password
    USER-pass-1, no addon, sub or parked domain."""
    return Account(user, owner, f"{user}-pass-1", f"{user}.test", {}, {}, [],
                   reseller=reseller)


def _append(host: TestHost, path: str, lines: list[str], before: str | None = None) -> None:
    # Keep a catch-all line (/etc/userdomains' "*: nobody") last, as cPanel writes it.
    old = host.path(path).read_text().splitlines(keepends=True)
    tail = [line for line in old if before is not None and line == before]
    kept = [line for line in old if line not in tail]
    hostfs.write(host, path, "".join(kept + lines + tail))


def add_accounts(host: TestHost, accounts: list[Account]) -> None:
    """Ensure each of `accounts` exists on the provisioned cPanel host with its owner and,
    for a reseller, its reseller entry; then rebuild and restart Apache once so every new
    site is served. An account already on the host is refused (ValueError)."""
    taken = set(host.path("/etc/trueuserowners").read_text().split())
    clash = [a.user for a in accounts if f"{a.user}:" in taken]
    if clash:
        raise ValueError(f"accounts already on the host: {clash}")
    now = int(time.time())
    for acct in accounts:
        host.run(["useradd", "--create-home", "--shell", "/bin/bash", acct.user])
        host.run(["chmod", "711", f"/home/{acct.user}"])
    host.run(["chpasswd"], input="".join(f"{a.user}:{a.password}\n" for a in accounts).encode())
    for acct in accounts:
        provision.account_files(host, acct, now)
        provision.site_files(host, acct)
        host.run(["chown", "-R", f"{acct.user}:{acct.user}", f"/home/{acct.user}"])
        uid, gid = hostfs.user_ids(host, acct.user)
        hostfs.make_dirs(host, f"/home/{acct.user}/etc", 0o751, (uid, gid))
        system = next(line.split(":")[1] for line in
                      host.path("/etc/shadow").read_text().splitlines()
                      if line.startswith(acct.user + ":"))
        hostfs.write(host, f"/etc/proftpd/{acct.user}",
                     f"{acct.user}:{system}:{uid}:{gid}::/home/{acct.user}:/bin/ftpsh\n",
                     mode=0o640)
    _append(host, "/etc/userdomains", [f"{d}: {a.user}\n" for a in accounts
                                       for d in layout.domains(a)], before="*: nobody\n")
    _append(host, "/etc/localdomains", [f"{d}\n" for a in accounts for d in layout.domains(a)])
    _append(host, "/etc/trueuserowners", [f"{a.user}: {a.owner}\n" for a in accounts])
    _append(host, "/var/cpanel/resellers",
            [provision.reseller_line(a) for a in accounts if a.reseller])
    host.run(["mysql"], input="".join(
        f"CREATE USER '{a.user}'@'localhost' IDENTIFIED BY '{a.password}';\n"
        for a in accounts).encode())
    for acct in accounts:
        provision.logs(host, acct.user)
    host.run([f"{services.SCRIPTS}/ftpupdate"])
    host.run([f"{services.SCRIPTS}/rebuildhttpdconf"])
    host.run([f"{services.SCRIPTS}/restartsrv_httpd"])
