"""The accounts a cPanel test host is provisioned with: names, domains, passwords.

res1 is a reseller owning itself and alice; bob is owned by root. Addon domains are stored
as cPanel stores them: a subdomain of the main domain (its vhost's ServerName) with the
addon domain as ServerAlias, so the EA4 include folder of an addon is named by the subdomain.
"""

from __future__ import annotations

from typing import NamedTuple


class Account(NamedTuple):
    """One cPanel account."""

    user: str
    owner: str
    password: str
    main: str
    # addon domain -> (its subdomain of the main domain, docroot under home)
    addons: dict[str, tuple[str, str]]
    # subdomain -> docroot under home
    subs: dict[str, str]
    parked: list[str]
    reseller: bool = False


class Mailbox(NamedTuple):
    """A mailbox (login = the full address)."""

    email: str
    user: str
    password: str


class Database(NamedTuple):
    """A MariaDB database with one user of the same name holding ALL on it."""

    name: str
    user: str
    db_user: str
    password: str


class FtpAccount(NamedTuple):
    """An FTP sub-account `login` (name@domain) of `user`, chrooted to `homedir`."""

    login: str
    user: str
    password: str
    homedir: str


ACCOUNTS = [
    Account("res1", "res1", "res1-pass-1", "res1.test", {}, {}, [], reseller=True),
    Account("alice", "res1", "alice-pass-1", "alice.test",
            {"alice-addon.test": ("alice-addon.alice.test", "alice-addon.test")},
            {"blog.alice.test": "public_html/blog"}, ["alice-parked.test"]),
    Account("bob", "root", "bob-pass-1", "bob.test", {}, {}, []),
]
MAILBOXES = [
    Mailbox("info@alice.test", "alice", "info-mail-1"),
    Mailbox("sales@alice.test", "alice", "sales-mail-1"),
    Mailbox("news@alice-addon.test", "alice", "news-mail-1"),
    Mailbox("bob@bob.test", "bob", "bob-mail-1"),
    Mailbox("admin@res1.test", "res1", "admin-mail-1"),
]
# Names carry cPanel's 8-character prefix `alice_` (panels.md A13).
DATABASES = [
    Database("alice_shop", "alice", "alice_shop", "shop-db-1"),
    Database("alice_blog", "alice", "alice_blog", "blog-db-1"),
    Database("bob_wp", "bob", "bob_wp", "bob-db-1"),
]
FTP_ACCOUNTS = [
    FtpAccount("ftpuser@alice.test", "alice", "ftp-pass-1", "/home/alice/public_html/ftpuser"),
]


def account(user: str) -> Account:
    """Return the Account named `user`."""
    return next(a for a in ACCOUNTS if a.user == user)


def vhosts(acct: Account) -> dict[str, tuple[str, list[str]]]:
    """Return servername -> (docroot under home, aliases) for each vhost of `acct`."""
    out = {acct.main: ("public_html",
                       [f"www.{acct.main}", f"mail.{acct.main}"]
                       + [d for p in acct.parked for d in (p, f"www.{p}")])}
    for addon, (sub, docroot) in acct.addons.items():
        out[sub] = (docroot, [f"www.{sub}", addon, f"www.{addon}"])
    for sub, docroot in acct.subs.items():
        out[sub] = (docroot, [f"www.{sub}"])
    return out


def domains(acct: Account) -> list[str]:
    """Return every domain of `acct` as /etc/userdomains lists it."""
    return [acct.main, *acct.addons, *(s for s, _d in acct.addons.values()), *acct.subs,
            *acct.parked]


def web_domains(acct: Account) -> list[str]:
    """Return every name a visitor can use for a site of `acct` (main, addon, sub, parked)."""
    return [acct.main, *acct.addons, *acct.subs, *acct.parked]


def site_page(user: str, servername: str) -> str:
    """Return the index.html the vhost `servername` of `user` serves."""
    return f"<html><body><h1>{servername}</h1><p>site of {user}</p></body></html>\n"
