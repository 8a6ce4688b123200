"""A fake cPanel server for the fast tier: whmapi1/uapi answering the documented envelopes
(reference/panels.md A2, A4, A5, A6) from an in-memory model, with suspendacct's and
unsuspendacct's side effects (A7, A8) and their "result=1 but nothing happened" replies.

FakeCpanel extends the fast tier's FakeConnector (the real connector code on a dict of
files); FakeWhmHttp answers the same model over the WHM API's HTTPS form (A1) for the
`transport: api` channel. Tests of the fake itself sit at the end.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlparse

from agent.connector.base import Result
from agent.drivers.cpanel import webdisk
from agent.steps import archive
from tests.fast.fakes import FakeConnector, FakeFile

WHMAPI1 = "/usr/local/cpanel/bin/whmapi1"
UAPI = "/usr/local/cpanel/bin/uapi"
PKGACCT = "/usr/local/cpanel/scripts/pkgacct"
SUSPENDACCT = "/usr/local/cpanel/scripts/suspendacct"
REBUILD = "/usr/local/cpanel/scripts/rebuildhttpdconf"
RESTART = "/usr/local/cpanel/scripts/restartsrv_httpd"
FTPUPDATE = "/usr/local/cpanel/scripts/ftpupdate"
NOSHELL = "/usr/local/cpanel/bin/noshell"
DOVEADM = "/usr/bin/doveadm"
USERDATA = "/etc/apache2/conf.d/userdata"


@dataclass
class Account:
    uid: int = 1001
    shell: str = "/bin/bash"
    hash: str = "$6$salt$hash"
    main: str = "alice.test"
    addon: list[str] = field(default_factory=lambda: ["shop.test"])
    sub: list[str] = field(default_factory=lambda: ["blog.alice.test"])
    parked: list[str] = field(default_factory=lambda: ["alice.example"])
    # email -> {"login": suspended, "incoming": suspended}
    mailboxes: dict[str, dict[str, bool]] = field(default_factory=lambda: {
        "info@alice.test": {"login": False, "incoming": False},
        "old@alice.test": {"login": True, "incoming": False}})
    ftp: list[tuple[str, str]] = field(default_factory=lambda: [
        ("alice", "main"), ("up@alice.test", "sub")])
    databases: list[str] = field(default_factory=lambda: ["alice_wp"])
    db_users: list[str] = field(default_factory=lambda: ["alice_wp"])
    suspended: bool = False
    reason: str = ""
    locked: bool = False
    out_suspended: bool = False
    out_hold: bool = False
    saved_shell: str = ""
    ssh_denied: bool = False  # in the group cpanelsuspended (review F9)
    team: list[dict] = field(default_factory=list)  # Team::list_team's records


def whm_reply(function: str, data: Any = None, ok: bool = True, reason: str = "OK",
              raw: str = "") -> dict:
    meta: dict[str, Any] = {"command": function, "version": 1, "result": 1 if ok else 0,
                            "reason": reason}
    if raw:
        meta["output"] = {"raw": raw}
    return {"metadata": meta, "data": data}


def uapi_result(data: Any = None, errors: list[str] | None = None) -> dict:
    return {"data": data, "errors": errors, "messages": None, "warnings": None,
            "metadata": {}, "status": 0 if errors else 1}


class Model:
    """The panel's state and its functions, shared by the CLI and HTTPS fakes."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {"alice": Account()}
        self.bwlimited: set[str] = set()
        self.noop: set[str] = set()  # functions that answer success and do nothing (A8)
        self.calls: list[tuple[str, str, dict]] = []  # (api, function, params)
        # (user, host) -> locked, for the database server
        self.mysql: dict[tuple[str, str], bool] = {("alice_wp", "localhost"): False,
                                                    ("alice", "localhost"): False}
        # sshd_config's DenyGroups (cPanel's install: install/SSHD.pm), None: no such group
        self.deny_groups: list[str] = ["cpaneldemo", "cpanelsuspended"]
        self.group_exists = True

    def summary(self, user: str) -> dict:
        # As the simulator reads A5/A8: "suspended" is judged by the system hash, so a hash
        # locked by anyone shows as suspended, for reason "Unknown" without suspendacct.
        a = self.accounts[user]
        by_hash = a.hash.startswith(("!", "*"))
        return {"user": user, "domain": a.main, "owner": "root", "uid": str(a.uid),
                "shell": a.shell, "suspended": int(a.suspended or by_hash),
                "suspendreason": a.reason if a.suspended else "Unknown" if by_hash
                else "not suspended",
                "is_locked": int(a.locked), "outgoing_mail_suspended": int(a.out_suspended),
                "outgoing_mail_hold": int(a.out_hold), "diskused": "120M", "partition": "home"}

    def whm(self, function: str, p: dict) -> dict:
        self.calls.append(("whmapi1", function, p))
        user = p.get("user", "")
        if function == "version":
            return whm_reply(function, {"version": "11.118.0.9"})
        if function == "myprivs":
            return whm_reply(function, {"privileges": [{"all": 1}]})
        if function == "listsuspended":
            rows = [{"user": u, "owner": "root", "reason": a.reason or "Unknown",
                     "is_locked": int(a.locked)} for u, a in self.accounts.items()
                    if a.suspended or a.hash.startswith("!")]
            rows += [{"user": u, "owner": "root", "is_locked": 0, "reason":
                      "Bandwidth Limit Exceeded; Unsuspend by increasing bandwidth limit"}
                     for u in sorted(self.bwlimited)]
            return whm_reply(function, {"account": rows})
        if user not in self.accounts:
            return whm_reply(function, None, ok=False, reason="Account does not exist.")
        a = self.accounts[user]
        if function == "accountsummary":
            return whm_reply(function, {"acct": [self.summary(user)]})
        if function in self.noop:
            return whm_reply(function, None, raw="nothing happened")
        if function == "suspendacct":
            if not self.suspendacct(user, p.get("reason", "Unknown"),
                                    p.get("disallowun") == "1", force=False):
                # A8: the script refuses, the API still answers result=1
                return whm_reply(function, None, raw=f"User '{user}' is already suspended")
        elif function == "unsuspendacct":
            if not a.hash.startswith(("!", "*")):
                return whm_reply(function, None, raw=f"{user} is not in a suspended state")
            a.suspended, a.locked, a.reason = False, False, ""
            a.shell, a.hash = a.saved_shell or NOSHELL, a.hash.lstrip("!")
            a.out_suspended = False  # A8: always
            a.ssh_denied = False  # Whostmgr/Accounts/Suspension/SSH.pm unsuspend
            for box in a.mailboxes.values():  # A8: every *LOCKED* stripped
                box["login"] = False
        elif function in ("suspend_outgoing_email", "unsuspend_outgoing_email"):
            a.out_suspended = function.startswith("suspend")
        elif function in ("hold_outgoing_email", "release_outgoing_email"):
            a.out_hold = function.startswith("hold")
        else:
            return whm_reply(function, None, ok=False, reason=f"Unknown function {function}")
        return whm_reply(function, None)

    def suspendacct(self, user: str, reason: str, disallow: bool, force: bool) -> bool:
        """A7: refuses an account already suspended (by its hash) unless forced."""
        a = self.accounts[user]
        if (a.suspended or a.hash.startswith(("!", "*"))) and not force:
            return False
        a.suspended, a.reason, a.locked = True, reason, disallow
        a.saved_shell, a.shell = a.shell, "/bin/false"
        a.hash = "!!" + a.hash
        a.out_suspended = True  # A7 step 13
        a.ssh_denied = True
        return True

    def uapi(self, user: str, function: str, p: dict) -> dict:
        self.calls.append(("uapi", function, p))
        if user not in self.accounts:
            return uapi_result(None, [f"The user {user} does not exist."])
        a = self.accounts[user]
        if function == "DomainInfo::list_domains":
            return uapi_result({"main_domain": a.main, "addon_domains": a.addon,
                                "sub_domains": a.sub, "parked_domains": a.parked})
        if function == "Email::list_pops":
            return uapi_result([{"email": e, "login": e, "suspended_login": int(b["login"]),
                                 "suspended_incoming": int(b["incoming"])}
                                for e, b in a.mailboxes.items()])
        if function == "Team::list_team":
            return uapi_result(a.team)
        if function in ("Team::suspend_team_user", "Team::reinstate_team_user"):
            return self._team(a, function, p.get("user", ""))
        if function == "Ftp::list_ftp":
            return uapi_result([{"user": u, "type": t, "homedir": f"/home/{user}"}
                                for u, t in a.ftp])
        if function == "Mysql::list_users":
            return uapi_result([{"user": u, "shortuser": u.split("_", 1)[1], "databases": []}
                                for u in a.db_users])
        if function == "Mysql::get_restrictions":  # MariaDB's 16 characters (review F2)
            return uapi_result({"prefix": user.replace("_", "").replace(".", "")[:16] + "_",
                                "max_database_name_length": 64, "max_username_length": 47})
        if function == "Mysql::list_databases":
            return uapi_result([{"database": d, "users": [], "disk_usage": 0}
                                for d in a.databases])
        module, _, func = function.partition("::")
        box = a.mailboxes.get(p.get("email", ""))
        if module == "Email" and box is not None and function not in self.noop:
            kind = "login" if func.endswith("login") else "incoming"
            box[kind] = func.startswith("suspend")
            return uapi_result(None)
        if module == "Email" and function in self.noop:
            return uapi_result(None)
        return uapi_result(None, [f"{function}: no such mailbox or function"])


    def _team(self, a: Account, function: str, name: str) -> dict:
        # Cpanel/Team/Config.pm suspend_team_user / reinstate_team_user (sim/team.py).
        row = next((r for r in a.team if r["username"] == name), None)
        if row is None:
            return uapi_result(None, [f"The team user “{name}” does not exist."])
        if function in self.noop:
            return uapi_result(1)
        if function.endswith("suspend_team_user"):
            if not row["password"].startswith("!"):
                row["password"] = "!!" + row["password"]
            row["suspend_date"] = row.get("suspend_date") or "1800000000"
        elif row.get("suspend_date"):
            row["suspend_date"] = ""
            row["password"] = row["password"].removeprefix("!!")
        return uapi_result(1)


class FakeCpanel(FakeConnector):
    """A cPanel server: the panel's command lines plus the system tools its steps run."""

    def __init__(self, model: Model | None = None) -> None:
        super().__init__("cp1", accounts={"alice": "/home/alice"})
        self.model = model or Model()
        self.loaded: set[str] = set()  # include files Apache runs with (after restart)
        self.built: set[str] = set()  # include files in httpd.conf (after rebuild)
        # Dovecot: open IMAP/POP sessions per login, and the logins whose cached auth
        # answers were flushed (doveadm auth cache flush), in order.
        self.sessions: dict[str, int] = {}
        self.flushed: list[str] = []
        self.put(DOVEADM, b"\x7fELF doveadm", 0o755)
        self.put("/usr/sbin/pure-ftpwho", b"\x7fELF pure-ftpwho", 0o755)
        self.put("/etc/proftpd/alice", b"alice:$6$salt$hash:1001:1001:alice:/home/alice:"
                 b"/bin/bash\nup@alice.test:$6$up:1001:1001:alice:/home/alice/up:/bin/ftpsh\n")

    def _read(self, paths: list[str]) -> Result:
        # suspendacct's own record, /var/cpanel/suspended/USER (its reason), as the model has
        # it now (review F11: the driver reads the reason there).
        for user, a in self.model.accounts.items():
            path = f"/var/cpanel/suspended/{user}"
            if a.suspended:
                self.put(path, (a.reason + "\n").encode())
            else:
                self.files.pop(path, None)
        return super()._read(paths)

    def _ftpupdate(self) -> None:
        # The part of bin/ftpupdate the driver meets (review F1): the main login's line is
        # written again with the system hash; sub-account lines stay.
        path = "/etc/proftpd/alice"
        if path not in self.files or self.model.accounts["alice"].suspended:
            return
        lines = self.files[path].data.decode().splitlines()
        fields = lines[0].split(":")
        fields[1] = self.model.accounts["alice"].hash
        lines[0] = ":".join(fields)
        self.put(path, ("\n".join(lines) + "\n").encode(), self.files[path].mode)

    def _command(self, argv: list[str], stdin: bytes | None) -> Result:
        if argv[0] == "timeout":
            argv = argv[4:]
        if argv[0] == "flock":  # flock -w 60 LOCK CMD... (agent/steps/account_files.py)
            argv = argv[4:]
        m = self.model
        if argv[0] == WHMAPI1:
            params = dict(a.split("=", 1) for a in argv[3:])
            return _json(m.whm(argv[2], params))
        if argv[0] == UAPI:
            user = argv[2].removeprefix("--user=")
            params = dict(a.split("=", 1) for a in argv[5:])
            return _json({"apiversion": 3, "module": argv[3], "func": argv[4],
                          "result": m.uapi(user, f"{argv[3]}::{argv[4]}", params)})
        if argv[0].endswith("getent") and argv[1] == "group":
            if argv[2] != "cpanelsuspended" or not m.group_exists:
                return Result(2, b"", b"")
            names = ",".join(u for u, a in m.accounts.items() if a.ssh_denied)
            return Result(0, f"cpanelsuspended:x:995:{names}\n".encode(), b"")
        if argv[0].endswith("sshd") and argv[1] == "-T":
            return Result(0, ("port 22\nusepam yes\n" + (
                f"denygroups {' '.join(m.deny_groups)}\n" if m.deny_groups else "")).encode(),
                b"")
        if argv[0].endswith("setpriv") and argv[5:7] == ["stat", "-c"]:
            return Result(0, f"{self.files[argv[-1]].mode:o}\n".encode(), b"")
        if argv[0].endswith("setpriv") and argv[5:8] == ["sh", "-c", webdisk._INSTALL]:
            # The Web Disk file written as the customer (agent/drivers/cpanel/webdisk.py).
            path, mode, base = argv[9], int(argv[10], 8), argv[13]
            if hashlib.sha256(self.files[path].data).hexdigest() != base:
                return Result(93, b"", b"")
            self.put(path, stdin or b"", mode)
            return Result(0, b"", b"")
        if argv[0].endswith("setpriv") and argv[-3:-1] == ["cat", "--"]:
            # Reading a file in the home as the customer (left_open.py).
            f = self.files.get(argv[-1])
            return (Result(0, f.data, b"") if f else
                    Result(1, b"", f"cat: {argv[-1]}: No such file or directory\n".encode()))
        if argv[0].endswith("gpasswd"):
            m.accounts[argv[2]].ssh_denied = argv[1] == "--add"
            return Result(0, b"", b"")
        if argv[0].endswith("getent"):
            a = m.accounts.get(argv[2])
            if a is None:
                return Result(2, b"", b"")
            line = (f"{argv[2]}:x:{a.uid}:{a.uid}::/home/{argv[2]}:{a.shell}" if argv[1] ==
                    "passwd" else f"{argv[2]}:{a.hash}:19000:0:99999:7:::")
            return Result(0, (line + "\n").encode(), b"")
        if argv[0].endswith("suspendmysqlusers"):  # team mode: OWNER_TEAMUSER 1
            m.calls.append(("script", "suspendmysqlusers", {"argv": argv[1:]}))
            return Result(0, b"", b"")
        if argv[0] == FTPUPDATE:
            self._ftpupdate()
            return Result(0, b"", b"")
        if argv[0].endswith("usermod"):
            a = m.accounts[argv[-1]]
            if "--lock" in argv:
                a.hash = "!" + a.hash
            if "--unlock" in argv and a.hash.startswith("!"):
                a.hash = a.hash[1:]
            if "--shell" in argv:
                a.shell = argv[argv.index("--shell") + 1]
            if "--append" in argv and argv[argv.index("--groups") + 1] == "cpanelsuspended":
                a.ssh_denied = True
            return Result(0, b"", b"")
        if argv[0] == SUSPENDACCT:  # user, reason, disallow, [--force] (A7)
            m.calls.append(("script", "suspendacct", {"argv": argv[1:]}))
            done = m.suspendacct(argv[1], argv[2], argv[3] == "1", "--force" in argv)
            return Result(0 if done else 1, b"", b"" if done else b"already suspended")
        if argv[0] == PKGACCT:
            return self._pkgacct(argv[1], argv[2])
        if argv[0] == DOVEADM:
            return self._doveadm(argv[1:])
        if argv[:3] == ["sh", "-c", archive._VERIFY]:  # one round trip: size, sum, listing
            rc, out = self._verify(argv[4], argv[7])
            return Result(rc, out, b"" if rc == 0 else b"stat: no such file")
        if argv[:3] == ["sh", "-c", archive._VERIFY_MANY]:  # the same for several
            marker, out = argv[6], b""
            for i, path in enumerate(argv[7:]):
                rc, one = self._verify(path, marker)
                out += f"{marker} ITEM {i}\n".encode() + one + f"{marker} RC {rc}\n".encode()
            return Result(0, out, b"")
        if argv[0].endswith("tar") and argv[1] == "--list":
            f = self.files.get(argv[3].removeprefix("--file="))
            return Result(0, f.data, b"") if f else Result(2, b"", b"tar: no such file")
        if argv[0].endswith("sha256sum"):
            f = self.files[argv[2]]
            return Result(0, f"{hashlib.sha256(f.data).hexdigest()}  {argv[2]}\n".encode(), b"")
        if argv[0] == REBUILD:
            self.built = {p for p in self.files if p.startswith(USERDATA)}
        if argv[0] == RESTART:
            self.loaded = set(self.built)
        if argv[0].endswith("mysql"):
            return self._mysql((stdin or b"").decode())
        return super()._command(argv, stdin)

    def _verify(self, path: str, marker: str) -> tuple[int, bytes]:
        """Return archive._CHECK's exit status and output for the archive at `path`."""
        f = self.files.get(path)
        if f is None:
            return 3, b""
        out = (f"{marker} SIZE {len(f.data)}\n{marker} SHA "
               f"{hashlib.sha256(f.data).hexdigest()}\n{marker} LIST\n").encode()
        warned = self.files.get(path + ".warnings")
        return 0, (out + f.data + (b"" if f.data.endswith(b"\n") else b"\n")
                   + f"{marker} WARN\n".encode() + (warned.data if warned else b""))

    def _pkgacct(self, user: str, dest: str) -> Result:
        a = self.model.accounts[user]
        members = [f"cpmove-{user}/", f"cpmove-{user}/homedir/",
                   f"cpmove-{user}/homedir/public_html/index.html"]
        members += [f"cpmove-{user}/mysql/{db}.sql" for db in a.databases]
        self.files[f"{dest}/cpmove-{user}.tar.gz"] = FakeFile(("\n".join(members) + "\n")
                                                              .encode(), 0o600)
        return Result(0, b"pkgacct completed\n", b"")

    def _doveadm(self, args: list[str]) -> Result:
        """`auth cache flush -- USER...` and `kick -- USER` as Dovecot answers them: kick
        exits 68 (EX_NOUSER) when nobody of that name is connected."""
        if args[:4] == ["auth", "cache", "flush", "--"]:
            self.flushed += args[4:]
            return Result(0, f"{len(args) - 4} cache entries flushed\n".encode(), b"")
        if args[:2] == ["kick", "--"] and len(args) == 3:
            if self.sessions.pop(args[2], 0):
                return Result(0, f"{args[2]}\n".encode(), b"")
            return Result(68, b"", b"no users kicked\n")
        return Result(64, b"", b"doveadm: unknown command\n")

    def _mysql(self, sql: str) -> Result:
        m = self.model
        if sql.startswith("SELECT VERSION()"):
            return Result(0, b"10.11.6-MariaDB-0+deb12u1\n", b"")
        if "FROM mysql.global_priv" in sql:
            names = {bytes.fromhex(h).decode() for h in re.findall(r"X'([0-9a-f]*)'", sql)}
            rows = [f"{u}\t{h}\t{'true' if locked else 'false'}"
                    for (u, h), locked in sorted(m.mysql.items()) if u in names]
            return Result(0, "".join(r + "\n" for r in rows).encode(), b"")
        found = re.match(r"ALTER USER `(.*)`@`(.*)` ACCOUNT (LOCK|UNLOCK);", sql)
        if found:
            m.mysql[(found.group(1), found.group(2))] = found.group(3) == "LOCK"
            return Result(0, b"", b"")
        if "COUNT(*)" in sql:
            return Result(0, b"0\n", b"")
        return Result(0, b"", b"")


def _json(doc: dict) -> Result:
    return Result(0, json.dumps(doc).encode(), b"")


class FakeResponse:
    def __init__(self, status: int, doc: Any) -> None:
        self.status_code = status
        self.content = json.dumps(doc).encode() if doc is not None else b"<html>denied</html>"


class FakeWhmHttp:
    """Stands for requests.Session against WHM's HTTPS API (A1): checks the token header,
    answers `json-api/FUNCTION` and `json-api/uapi_cpanel` from the model."""

    def __init__(self, model: Model, token: str = "GOODTOKEN", user: str = "root") -> None:
        self.model = model
        self.header = f"whm {user}:{token}"
        self.headers: dict[str, str] = {}
        self.trust_env = True
        self.requests: list[tuple[str, list]] = []
        self.raise_: BaseException | None = None

    def get(self, url: str, params: list, timeout: float, verify: Any,
            allow_redirects: bool) -> FakeResponse:
        self.requests.append((url, params))
        if self.raise_ is not None:
            raise self.raise_
        if self.headers.get("Authorization") != self.header:
            return FakeResponse(403, None)
        query = dict(parse_qsl("&".join(f"{k}={v}" for k, v in params)))
        function = urlparse(url).path.rsplit("/", 1)[-1]
        if function != "uapi_cpanel":
            return FakeResponse(200, self.model.whm(function, query))
        user = query.pop("cpanel.user")
        name = f"{query.pop('cpanel.module')}::{query.pop('cpanel.function')}"
        query.pop("api.version")
        result = self.model.uapi(user, name, query)
        return FakeResponse(200, whm_reply("uapi_cpanel", {"uapi": result}))


# -- the fake's own behaviour (what the driver's tests rely on) ------------------------------
def test_suspendacct_twice_answers_result_1_and_changes_nothing() -> None:
    m = Model()
    assert m.whm("suspendacct", {"user": "alice", "reason": "first"})["metadata"]["result"] == 1
    again = m.whm("suspendacct", {"user": "alice", "reason": "second"})
    assert again["metadata"]["result"] == 1 and m.accounts["alice"].reason == "first"


def test_unsuspendacct_lifts_outgoing_and_mailbox_locks() -> None:
    m = Model()
    m.accounts["alice"].out_hold = False
    m.whm("suspendacct", {"user": "alice"})
    m.whm("unsuspendacct", {"user": "alice"})
    a = m.accounts["alice"]
    assert not a.out_suspended and not a.mailboxes["old@alice.test"]["login"]
