"""The cpanel driver: cPanel & WHM servers, every path, binary and API setting from
`CpanelSettings` (the server's `cpanel:` block)."""

from __future__ import annotations

from typing import Any

from agent.drivers.cpanel.backup import Backup
from agent.drivers.cpanel.check import cpanel_check
from agent.drivers.cpanel.db_lock import DbLock
from agent.drivers.cpanel.facts import Panel, account_facts, account_name
from agent.drivers.cpanel.ftp_lock import FtpLock
from agent.drivers.cpanel.landing_page import LandingPage
from agent.drivers.cpanel.mail_block import MailBlock
from agent.drivers.cpanel.panel_lock import PanelLock
from agent.drivers.cpanel.panel_suspend import PanelSuspend
from agent.drivers.cpanel.reseller_lock import ResellerLock
from agent.drivers.cpanel.reseller_tree import tree_of
from agent.drivers.cpanel.server_tree import tree_of as server_tree_of
from agent.drivers.cpanel.settings import CpanelSettings
from agent.drivers.cpanel.webmail import WebmailProxy
from agent.drivers.tree import Tree
from agent.errors import BadInput
from agent.steps.firewall import MAIL_CLIENT_PORTS
from agent.steps.firewall_block import FirewallBlock
from agent.steps.protocol import Step
from agent.steps.smtp_auth import EximAuth, cpanel_exim
from agent.steps.throttle import Throttle


class CpanelDriver:
    """Its settings class, its steps by name, its account facts, reseller trees and `check`."""

    name = "cpanel"
    paths = CpanelSettings
    # The step the engine applies first to each of a reseller tree's logins, before the
    # playbook's stages of its accounts: cPanel's own suspendreseller reseller-only=1, since
    # panel_lock (hash and shell) leaves a reseller's WHM tokens and sessions working
    # (reseller_lock.py). Internal: playbooks do not name it.
    login_step = "reseller_lock"

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {step.name: step for step in (
            Backup(), LandingPage(), MailBlock(), FtpLock(), DbLock(), PanelLock(),
            PanelSuspend(), ResellerLock(),
            # cPanel's webmail ports too (2095, 2096: lockouts.md 1.8), also over loopback
            # from the web server's proxy (webmail.py), doveadm from its settings.
            FirewallBlock(MAIL_CLIENT_PORTS + (2095, 2096), lambda s: s.cpanel.doveadm,
                          auth=EximAuth(cpanel_exim), local=WebmailProxy()),
            Throttle())}

    def ensure_suspendable(self, server: Any, conn: Any, account: str, min_uid: int) -> None:
        """Raise BadInput unless `account` is a cPanel user name (A13) that the panel knows
        (accountsummary) with a uid from `min_uid` on; a refused token raises TokenRefused
        (exit 78) and an API that does not answer Unreachable (75), before any case opens."""
        summary = Panel(server, conn).summary(account_name(account))
        uid = str(summary.get("uid", ""))
        if uid.isdigit() and (int(uid) < min_uid or int(uid) == 65534):
            raise BadInput(f"account {account!r} is a system account on {server.name} (uid "
                           f"{uid}; customers start at min_uid {min_uid})")

    def facts(self, server: Any, conn: Any, account: str) -> dict[str, Any]:
        """Return the account's facts as the panel reports them (read-only)."""
        return account_facts(Panel(server, conn), account_name(account))

    def reseller_tree(self, server: Any, conn: Any, name: str) -> Tree:
        """Return reseller `name`'s tree, walked from the panel's owner records (read-only).

        `resellers` and `logins`: `name`, then every sub-reseller at any depth, top first;
        `accounts`: every account any of them owns, each once, the resellers' own accounts
        included (they are cPanel accounts with sites and mail of their own, so they get the
        playbook's stages, the landing page too), `name`'s first; `notes`: the walk, and
        what the login lock (reseller_lock, a full suspendacct of each reseller's own
        account) takes down besides logins. Two reads whatever the tree's size
        (listresellers, one listaccts), over the server's channel (whmapi1 or the WHM API
        with a token). BadInput when `name` is no cPanel user name or no reseller there;
        an owner loop never repeats an account.
        """
        return tree_of(server, conn, name, self.login_step)

    def server_tree(self, server: Any, conn: Any, min_uid: int, protected: set[str]) -> Tree:
        """Return the whole server's tree: every reseller's login first (an owner before
        the resellers it owns), then every account, none protected (server_tree.py);
        the panel decides who is a customer, so `min_uid` is not consulted."""
        return server_tree_of(server, conn, self.login_step, protected)

    def check(self, server: Any, conn: Any, lines: list[str]) -> bool:
        return cpanel_check(server, conn, lines)


DRIVER = CpanelDriver()
