"""The linux driver: a plain Debian/Ubuntu host without a panel (Apache, Dovecot + Exim,
Pure-FTPd, MariaDB, OpenSSH), every path and binary from `LinuxPaths`."""

from __future__ import annotations

from typing import Any

from agent.config import LinuxPaths
from agent.drivers import linux
from agent.drivers.linux.backup import Backup
from agent.drivers.linux.check import linux_check
from agent.drivers.linux.db_lock import DbLock
from agent.drivers.linux.ftp_lock import FtpLock
from agent.drivers.linux.landing_page import LandingPage
from agent.drivers.linux.mail_block import MailBlock
from agent.drivers.linux.panel_lock import PanelLock
from agent.errors import BadInput
from agent.steps.base import Step


class LinuxDriver:
    """Its settings class, its steps by name, its account facts and its `check`."""

    name = "linux"
    paths = LinuxPaths

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {step.name: step for step in (
            Backup(), LandingPage(), MailBlock(), FtpLock(), DbLock(), PanelLock())}

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

    def check(self, server: Any, conn: Any, lines: list[str]) -> bool:
        return linux_check(conn, server.linux, lines)


DRIVER = LinuxDriver()
