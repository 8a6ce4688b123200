"""Mail on a test host: cPanel-like virtual mailboxes served by Dovecot and Exim.

Layout (the agent's mail_block step relies on it exactly):
    /etc/userdomains            `domain: account`, one line per mail domain
    /etc/vmail/<domain>/passwd  Dovecot userdb, `local::UID:GID::HOME::` with the Maildir at
                                HOME = /home/<account>/mail/<domain>/<local>
    /etc/vmail/<domain>/shadow  Dovecot passdb, `local:{SHA512-CRYPT}$6$...`; a password field
                                starting `*LOCKED*` is a locked mailbox
    /etc/exim4/suspension-agent/<account>.{outgoing,incoming-reject,incoming-defer}
                                the agent's hook files, read by Exim's ACLs (etc/exim4.conf)
    /var/spool/outside/<local>  what was sent to <local>@outside.test, the stand-in internet
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.hosts import hostfs
from tests.hosts.testhost import TestHost

if TYPE_CHECKING:
    from tests.hosts.provision import Mailbox

ETC = Path(__file__).parent / "etc"
HOOK_DIR = "/etc/exim4/suspension-agent"
OUTSIDE_SPOOL = "/var/spool/outside"
LOCKED = "*LOCKED*"


def setup(host: TestHost, domains: dict[str, str], mailboxes: list[Mailbox]) -> None:
    """Ensure the mail layout, Maildirs, Dovecot's and Exim's configs exist for `mailboxes`.

    `domains` maps each mail domain to its account; a mailbox that is not `enabled` gets a
    shadow line already prefixed with `*LOCKED*`, as a disabled cPanel mailbox has.
    """
    hostfs.write(host, "/etc/userdomains",
                 "".join(f"{domain}: {account}\n" for domain, account in domains.items()))
    dovecot_gid = hostfs.group_id(host, "dovecot")
    hashes = iter(hostfs.sha512_crypt(host, [m.password for m in mailboxes]))
    passwd: dict[str, list[str]] = {domain: [] for domain in domains}
    shadow: dict[str, list[str]] = {domain: [] for domain in domains}
    for box in mailboxes:
        local, domain = box.address.split("@")
        account = domains[domain]
        uid, gid = hostfs.user_ids(host, account)
        home = f"/home/{account}/mail/{domain}/{local}"
        passwd[domain].append(f"{local}::{uid}:{gid}::{home}::\n")
        lock = "" if box.enabled else LOCKED
        shadow[domain].append(f"{local}:{lock}{{SHA512-CRYPT}}{next(hashes)}\n")
        # The Maildir exists from the start, as a panel creates it with the mailbox.
        for sub in ("cur", "new", "tmp"):
            hostfs.make_dirs(host, f"{home}/{sub}", 0o700, (uid, gid))
        hostfs.make_dirs(host, f"/home/{account}/mail", 0o751, (uid, gid))
    for domain in domains:
        hostfs.make_dirs(host, f"/etc/vmail/{domain}", 0o755, (0, 0))
        # Exim reads the passwd file (as Debian-exim) to know which mailboxes exist.
        hostfs.write(host, f"/etc/vmail/{domain}/passwd", "".join(passwd[domain]))
        hostfs.write(host, f"/etc/vmail/{domain}/shadow", "".join(shadow[domain]),
                     mode=0o640, owner=(0, dovecot_gid))
    exim = hostfs.user_ids(host, "Debian-exim")
    hostfs.write(host, "/etc/dovecot/dovecot.conf", (ETC / "dovecot.conf").read_text())
    hostfs.write(host, "/etc/exim4/exim4.conf", (ETC / "exim4.conf").read_text())
    # Any local part of outside.test is a mailbox there (see the `outside` router).
    hostfs.write(host, "/etc/exim4/outside-local-parts", "*: outside\n")
    hostfs.make_dirs(host, HOOK_DIR, 0o755, (0, 0))
    hostfs.make_dirs(host, OUTSIDE_SPOOL, 0o755, exim)


def start(host: TestHost) -> None:
    """Start Dovecot and Exim chrooted in the host; return when IMAP, POP and SMTP answer."""
    host.run(["install", "-d", "-o", "Debian-exim", "-g", "Debian-exim", "-m", "755",
              "/run/exim4"])
    host.daemon(["/usr/sbin/dovecot"])
    host.wait(lambda: host.path("/run/dovecot/auth-client").exists(), "Dovecot auth socket")
    host.daemon(["/usr/sbin/exim4", "-bd", "-q30m"])
    host.wait(lambda: all(host.port_open(p) for p in (143, 110, 25, 587)),
              "Dovecot and Exim ports")
