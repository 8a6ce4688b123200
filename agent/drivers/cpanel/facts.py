"""Facts about a cPanel account, read through the panel's own API (never its files):
exists, owner, suspension state, domains, mailboxes, FTP accounts, databases and their users.

Every read goes over the server's channel (whm.channel) and is judged by its envelope; a
list the API returns is checked for shape before anything is built from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from agent import ids
from agent.connector import Connector
from agent.drivers.cpanel import whm
from agent.errors import BadInput, StepError
from agent.steps.api import ApiCall, ApiRefused

# reference/panels.md A13 (Cpanel/Validate/Username/Core.pm). Existing accounts are checked
# leniently (transferred accounts may start with a digit), but never a reserved name or one
# of cPanel's own system-user prefixes (cpses session users, cptkt, cpbackup...). The
# creation-only rule against a leading "test" is not applied: transfers keep such names.
_NAME = re.compile(r"^[a-z0-9][-._a-z0-9]{0,15}$")
_RESERVED = {"root", "nobody", "all", "mailman", "postgres", "virtfs", "cpanel", "whm",
             "mysql", "apache", "named", "ftp", "mail", "dovecot", "cpanelsolr"}
_PREFIXES = ("passwd.", "cpmydns", "cpanel", "mydns", "pg_toast", "pg_temp", "cpses", "cptkt",
             "cpbackup")
_SUFFIXES = (".lock", ".cache", ".yaml", ".json", ".db", "assword")


def account_name(name: str) -> str:
    """Return `name` when it can be an existing cPanel account (A13); raise BadInput."""
    if not _NAME.fullmatch(name or ""):
        raise BadInput(f"{name!r} is not a cPanel user name (1-16 of a-z 0-9 - . _, not "
                       "starting with - or .)")
    if (name in _RESERVED or name.startswith(_PREFIXES) or name.endswith(_SUFFIXES)
            or not name.strip("-._0123456789")):
        raise BadInput(f"{name!r} is a name cPanel reserves for itself, never a customer's")
    return name


def _domain(name: str) -> str:
    """Return a domain as cPanel lists it, validated: a host name, or a wildcard subdomain
    `*.example.com` (stored as an ordinary subdomain: Cpanel/WildcardDomain.pm, Cpanel/Sub.pm;
    review F8), whose vhost the account's include covers like any other."""
    if isinstance(name, str) and name.startswith("*."):
        return "*." + ids.domain(name[2:])
    return ids.domain(name)


def dbowner(user: str) -> str:
    """Return the account's own MySQL login: its name without `_` and `.` (cPanel's
    username_to_dbowner, Cpanel/DB/Utils.pm:19; review F2)."""
    return user.replace("_", "").replace(".", "")


def suspension_file(conn: Connector, server: Any, user: str) -> str | None:
    """Return the reason suspendacct recorded for `user` ("Unknown" when it gave none), or
    None when the account is not under suspendacct: /var/cpanel/suspended/USER, what cpsrvd
    and suspendacct itself go by (Cpanel/AcctUtils/Suspended.pm:48-50). accountsummary's
    own `suspended` also counts a locked hash and the bandwidth limit, whose text then
    replaces this reason (review F11)."""
    path = f"{server.cpanel.suspended_dir}/{user}"
    found = conn.read_many([path])[path]
    if not found.exists:
        return None
    return (found.data or b"").decode("utf-8", "replace").strip() or "Unknown"


def marker(case_id: str) -> str:
    """The text that names a case in the reasons of the agent's own suspensions."""
    return f"suspension-agent case {case_id}"


def flag(value: Any) -> bool:
    """Return a cPanel boolean (1/0, "1"/"0", true/false) as a bool."""
    return str(value).strip().lower() in ("1", "true", "yes")


class Panel:
    """One server's panel as the driver uses it: builds calls, runs reads now, and turns
    changes into plan actions on the channel the config chooses."""

    def __init__(self, server: Any, conn: Connector) -> None:
        self.server = server
        self.conn = conn
        self.s = server.cpanel
        self.channel = whm.channel(server)

    def whm(self, function: str, params: Iterable[tuple[str, str]] = (),
            verify: str = "") -> ApiCall:
        return ApiCall("whmapi1", function, tuple(params), verify, binary=self.s.whmapi1)

    def uapi(self, user: str, function: str, params: Iterable[tuple[str, str]] = (),
             verify: str = "") -> ApiCall:
        return ApiCall("uapi", function, tuple(params), verify, user=user, binary=self.s.uapi)

    def query(self, call: ApiCall) -> Any:
        """Run a read-only call now and return its payload."""
        return self.channel.call(self.conn, call)

    def act(self, call: ApiCall) -> whm.PanelCall:
        return whm.PanelCall(call, self.channel)

    def read_calls(self, user: str, *names: str) -> list[ApiCall]:
        """Return the calls the reads `names` (summary, suspended, resellers, mailboxes,
        db_users) make for `user`, as they make them: a batch sends them at once."""
        return [_READS[name](self, user) for name in names]

    # -- account facts ----------------------------------------------------------------------
    def summary(self, user: str) -> dict[str, Any]:
        """Return accountsummary's record of `user` (A5); BadInput when there is none."""
        try:
            data = self.query(_READS["summary"](self, user))
        except ApiRefused as exc:
            if "does not exist" in str(exc).lower():
                raise BadInput(f"account {user!r} does not exist on {self.server.name}"
                               ) from None
            raise
        accts = data.get("acct") if isinstance(data, dict) else None
        if not isinstance(accts, list) or not accts or not isinstance(accts[0], dict):
            raise StepError(f"accountsummary {user}: no account record in the reply")
        if accts[0].get("user") != user:
            raise StepError(f"accountsummary {user}: the reply is about another account")
        return accts[0]

    def suspended_entry(self, user: str) -> dict[str, Any] | None:
        """Return `user`'s listsuspended entry (A5: bandwidth-limited users are listed too)."""
        data = self.query(_READS["suspended"](self, user))
        for entry in _records(data, "account", "listsuspended"):
            if entry.get("user") == user:
                return entry
        return None

    def domains(self, user: str) -> dict[str, list[str]]:
        """Return the account's domains by kind: main, addon, sub, parked."""
        data = self.query(self.uapi(user, "DomainInfo::list_domains"))
        if not isinstance(data, dict) or not isinstance(data.get("main_domain"), str):
            raise StepError(f"DomainInfo::list_domains of {user}: no main_domain in the reply")
        found = {"main": [ids.domain(data["main_domain"])]}
        for kind in ("addon", "sub", "parked"):
            names = data.get(f"{kind}_domains") or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise StepError(f"DomainInfo::list_domains of {user}: {kind}_domains is not a "
                                "list of names")
            found[kind] = [_domain(n) for n in names]
        return found

    def domain_index(self) -> dict[str, dict[str, list[str]]]:
        """Return every account's domains by kind (as `domains` gives one account's) from one
        get_domain_info call (all the domains the token may see: Whostmgr/API/1/Accounts.pm
        reads them from the userdata cache, which can lag behind a domain just added)."""
        data = self.query(self.whm("get_domain_info"))
        index: dict[str, dict[str, list[str]]] = {}
        for entry in _records(data, "domains", "get_domain_info"):
            user, kind, name = entry.get("user"), entry.get("domain_type"), entry.get("domain")
            if not (isinstance(user, str) and isinstance(name, str)
                    and kind in ("main", "addon", "sub", "parked")):
                raise StepError("get_domain_info: a record without user, domain and a known "
                                f"domain_type: {entry!r}"[:300])
            kinds = index.setdefault(user, {"main": [], "addon": [], "sub": [], "parked": []})
            kinds[kind].append(ids.domain(name))
        return {u: k for u, k in index.items() if len(k["main"]) == 1}

    def mailboxes(self, user: str) -> list[dict[str, Any]]:
        """Return each mailbox as {email, login_suspended, incoming_suspended} (A6)."""
        data = self.query(_READS["mailboxes"](self, user))
        boxes = []
        for entry in _records(data, None, "Email::list_pops"):
            email = str(entry.get("email") or "")
            if "@" not in email:
                continue  # the main account's own login: panel_lock's part
            boxes.append({"email": email, "login": flag(entry.get("suspended_login")),
                          "incoming": flag(entry.get("suspended_incoming"))})
        return boxes

    def ftp_accounts(self, user: str) -> list[dict[str, str]]:
        """Return the account's FTP logins of type main and sub (A6: Ftp::list_ftp)."""
        data = self.query(self.uapi(user, "Ftp::list_ftp",
                                    [("include_acct_types", "main|sub")]))
        return [{"user": str(e["user"]), "type": str(e.get("type", ""))}
                for e in _records(data, None, "Ftp::list_ftp") if e.get("user")]

    def db_prefix(self, user: str) -> str | None:
        """Return the account's database prefix as the server has it (UAPI
        `Mysql::get_restrictions`: `<dbowner>[:16]_` on MariaDB and MySQL 5.7+, `[:8]` on
        MySQL 5.5/5.6 or with force_short_prefix), or None when prefixing is off (review F2:
        Cpanel/DB/Prefix.pm, Cpanel/API/Mysql.pm:82-99; the documentation's "first eight
        characters" is only the old servers' rule)."""
        data = self.query(_READS["db_prefix"](self, user))
        if not isinstance(data, dict) or "prefix" not in data:
            raise StepError(f"Mysql::get_restrictions of {user}: no prefix in the reply")
        found = data["prefix"]
        if found is None or found == "":
            return None
        if not isinstance(found, str) or not found.endswith("_"):
            raise StepError(f"Mysql::get_restrictions of {user}: prefix {found!r} is not a "
                            "database prefix")
        return found

    def db_users(self, user: str) -> list[str]:
        """Return the account's MySQL users (Mysql::list_users, which lists the users of the
        account's database map): each must carry the account's prefix when the server
        prefixes (db_prefix); any other name is refused. Without prefixing the list is
        taken as cPanel's map gives it. The account's own MySQL login (`dbowner`) is left
        out: db_lock adds it."""
        data = self.query(_READS["db_users"](self, user))
        names = [str(e.get("user") or "") for e in _records(data, None, "Mysql::list_users")]
        prefix = self.db_prefix(user)
        own = dbowner(user)
        foreign = [n for n in names if prefix is not None and not n.startswith(prefix)
                   and n != own]
        if foreign:
            raise StepError(f"Mysql::list_users of {user} lists {foreign[:3]}, without the "
                            f"account's prefix {prefix!r}; nothing was changed")
        return sorted({n for n in names if n and n != own})

    def databases(self, user: str) -> list[str]:
        """Return the account's MySQL databases (Mysql::list_databases)."""
        data = self.query(self.uapi(user, "Mysql::list_databases"))
        return sorted(ids.database(str(e.get("database") or ""))
                      for e in _records(data, None, "Mysql::list_databases"))


# The reads whose calls a batch may send ahead (Panel.read_calls), each as its method makes it.
_READS: dict[str, Any] = {
    "summary": lambda p, u: p.whm("accountsummary", [("user", u)]),
    "suspended": lambda p, _u: p.whm("listsuspended"),
    "resellers": lambda p, _u: p.whm("listresellers"),
    "mailboxes": lambda p, u: p.uapi(u, "Email::list_pops", [("skip_main", "1")]),
    "db_users": lambda p, u: p.uapi(u, "Mysql::list_users"),
    "db_prefix": lambda p, u: p.uapi(u, "Mysql::get_restrictions"),
}


def account_facts(panel: Panel, user: str) -> dict[str, Any]:
    """Return what the driver knows of an account, all from the panel: owner (its reseller,
    or root), home (`/<partition>/<user>`, as cPanel lays it out), suspension state,
    domains by kind, mailboxes, databases, database users and FTP logins."""
    summary = panel.summary(user)
    return {
        "exists": True, "user": user, "owner": summary.get("owner"),
        "home": f"/{str(summary.get('partition') or 'home').strip('/')}/{user}",
        "suspended": flag(summary.get("suspended")), "locked": flag(summary.get("is_locked")),
        "domains": panel.domains(user), "mailboxes": panel.mailboxes(user),
        "databases": panel.databases(user), "db_users": panel.db_users(user),
        "ftp": panel.ftp_accounts(user),
    }


def _records(data: Any, key: str | None, what: str) -> list[dict[str, Any]]:
    """Return the list of records in a payload (at `key` of a WHM `data`, or the UAPI data
    itself), each a dict; raise StepError on any other shape."""
    items = data.get(key) if key is not None and isinstance(data, dict) else data
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise StepError(f"{what}: the reply is not a list of records")
    return items


def all_domains(found: dict[str, list[str]]) -> list[str]:
    """Return every domain of `found` once, main first."""
    return list(dict.fromkeys(d for kind in ("main", "addon", "sub", "parked")
                              for d in found.get(kind, [])))
