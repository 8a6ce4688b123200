"""The linux driver: a plain Debian/Ubuntu host without a panel (Apache, Dovecot + Exim,
Pure-FTPd, MariaDB, OpenSSH), every path and binary from `LinuxPaths`."""

from __future__ import annotations

from typing import Any

from agent.config.resellers import walk
from agent.config.servers import LinuxPaths
from agent.drivers import linux
from agent.drivers.linux.backup import Backup
from agent.drivers.linux.check import linux_check
from agent.drivers.linux.db_lock import DbLock
from agent.drivers.linux.ftp_lock import FtpLock
from agent.drivers.linux.landing_page import LandingPage
from agent.drivers.linux.mail_block import MailBlock
from agent.drivers.linux.panel_lock import PanelLock
from agent.drivers.linux.server_landing import ServerLanding
from agent.drivers.linux.server_tree import server_tree
from agent.drivers.tree import Tree
from agent.errors import BadInput
from agent.steps.firewall_block import FirewallBlock
from agent.steps.protocol import Step
from agent.steps.smtp_auth import EximAuth
from agent.steps.throttle import Throttle


class LinuxDriver:
    """Its settings class, its steps by name, its account facts and its `check`."""

    name = "linux"
    paths = LinuxPaths
    # What a reseller's own login (and each sub-reseller's) gets before its accounts' stages.
    login_step = "panel_lock"

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {step.name: step for step in (
            Backup(), LandingPage(), MailBlock(), FtpLock(), DbLock(), PanelLock(),
            FirewallBlock(auth=EximAuth()), Throttle(), ServerLanding())}

    def ensure_suspendable(self, server: Any, conn: Any, account: str, min_uid: int) -> None:
        """Raise BadInput when `account` has no passwd entry or home, or is a system account
        (uid below `min_uid`, or 65534, the overflow uid of `nobody`)."""
        fields = linux.passwd_entry(conn, server.linux, account)
        uid = int(fields[2]) if fields[2].isdigit() else -1
        if uid < min_uid or uid == 65534:
            raise BadInput(f"account {account!r} is a system account on {server.name} (uid "
                           f"{uid}; customers start at min_uid {min_uid}) and may never be "
                           "suspended")
        linux.home(conn, server.linux, account)

    def batch_files(self, server: Any) -> list[str]:
        """The host map: a batch's landing reverts all end in one edit of it."""
        return [server.linux.host_map]

    def check_accounts(self, server: Any, conn: Any, names: list[str],
                       min_uid: int) -> dict[str, str]:
        """Return, for each of `names` that may not be suspended, why: no passwd entry, no
        usable home, or a system account. One round trip for the whole tree."""
        if not names:
            return {}
        out = conn.run([server.linux.getent, "passwd", "--", *names], ok_codes=(0, 2)).text
        entries = {f[0]: f for f in (line.split(":") for line in out.splitlines())
                   if len(f) >= 7}
        problems = {}
        for name in names:
            fields = entries.get(name)
            uid = int(fields[2]) if fields and fields[2].isdigit() else -1
            if fields is None:
                problems[name] = f"account {name!r} does not exist on {server.name}"
            elif uid < min_uid or uid == 65534:
                problems[name] = (f"account {name!r} is a system account on {server.name} "
                                  f"(uid {uid}; customers start at min_uid {min_uid})")
            elif not fields[5].startswith("/"):
                problems[name] = f"account {name!r} has no usable home folder on {server.name}"
        return problems

    def reseller_tree(self, server: Any, conn: Any, name: str) -> Tree:
        """Return reseller `name`'s tree as the config declares it (a plain host keeps no
        reseller records): its login and its sub-resellers' logins, then every account."""
        entries, accounts = walk(server.resellers, name, f"servers.{server.name}.resellers")
        return Tree(name, tuple(dict.fromkeys(e.login for e in entries)), tuple(accounts),
                    tuple(e.name for e in entries),
                    ("the reseller logins are locked with panel_lock (password, shell, SSH) "
                     "before any account's stage",))

    def server_tree(self, server: Any, conn: Any, min_uid: int, protected: set[str]) -> Tree:
        """Return the whole host's tree: the config's admins and reseller logins first,
        then every passwd account from `min_uid` on (agent/drivers/linux/server_tree.py)."""
        return server_tree(server, conn, min_uid, protected)

    def check(self, server: Any, conn: Any, lines: list[str]) -> bool:
        return linux_check(conn, server.linux, lines)


DRIVER = LinuxDriver()
