"""Tests' ways to talk to the cPanel simulator: the command lines inside the host, the WHM
API over HTTPS from outside, and a reset that puts the provisioned state back."""

from __future__ import annotations

import json
import os
import ssl

import requests
from requests.adapters import HTTPAdapter

from tests.hosts import hostfs
from tests.hosts.cpanel import layout, services
from tests.hosts.testhost import TestHost


class _HostCert(HTTPAdapter):
    """Trust exactly the test host's own self-signed certificate (its name is no hostname,
    so only the name check is off)."""

    def __init__(self, cafile: str) -> None:
        self.context = ssl.create_default_context(cafile=cafile)
        self.context.check_hostname = False
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        kwargs["ssl_context"] = self.context
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)


def session(host: TestHost) -> requests.Session:
    """Return a requests session that trusts only `host`'s certificate (as it is now: a
    test may give the host a new one, agent.certificate_for)."""
    cert = host.path("/etc/ssl/certs/testhost.pem")
    key = cert.read_bytes()
    cached = getattr(host, "_cpanel_session", None)
    if cached is None or cached[0] != key:
        fresh = requests.Session()
        fresh.mount("https://", _HostCert(str(cert)))
        fresh.verify = str(cert)
        cached = host._cpanel_session = (key, fresh)
    return cached[1]


def cpanel_login(host: TestHost, user: str, password: str) -> str:
    """Log in to cPanel (2083, POST /login/?login_only=1) from outside as `user` (an account
    or a team user's NAME@DOMAIN); return "ok" or "refused: <status> <message>"."""
    reply = session(host).post(f"https://{host.address}:2083/login/?login_only=1",
                               data={"user": user, "pass": password}, timeout=30)
    body = reply.json()
    if reply.status_code == 200 and body.get("status") == 1:
        return "ok"
    return f"refused: {reply.status_code} {body.get('message')}"


def webdisk_login(host: TestHost, login: str, password: str, digest: bool = False) -> str:
    """PROPFIND / on Web Disk (2078) from outside as `login` (NAME@DOMAIN, or the account),
    by Basic or Digest authentication; return "ok" or "refused: <status>"."""
    from requests.auth import HTTPDigestAuth

    auth = HTTPDigestAuth(login, password) if digest else (login, password)
    reply = session(host).request("PROPFIND", f"https://{host.address}:2078/", auth=auth,
                                  headers={"Depth": "0"}, timeout=30)
    return "ok" if reply.status_code == 207 else f"refused: {reply.status_code}"


def whmapi1(host: TestHost, function: str, **args: str) -> dict:
    """Run `whmapi1 --output=json FUNCTION key=value...` in the host; return the reply."""
    argv = ["whmapi1", "--output=json", function, *(f"{k}={v}" for k, v in args.items())]
    return json.loads(host.run(argv).stdout)


def uapi(host: TestHost, user: str, module: str, function: str, **args: str) -> dict:
    """Run `uapi --output=json --user=USER Module function key=value...`; return the reply."""
    argv = ["uapi", "--output=json", f"--user={user}", module, function,
            *(f"{k}={v}" for k, v in args.items())]
    return json.loads(host.run(argv).stdout)


def script(host: TestHost, name: str, *args: str) -> tuple[int, str]:
    """Run /scripts/NAME ARGS...; return (exit code, stdout+stderr)."""
    proc = host.run([f"/scripts/{name}", *args], check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode()


def db_hash(host: TestHost, user: str) -> str:
    """Return MariaDB's stored password hash of `user`@localhost ("" when none)."""
    if not user.replace("_", "").isalnum():
        raise ValueError(f"bad database user name {user!r}")
    sql = ("SELECT IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') FROM "
           f"mysql.global_priv WHERE User = '{user}' AND Host = 'localhost'")
    return host.run(["mysql", "--batch", "--skip-column-names", "-e", sql]
                    ).stdout.decode().strip()


def script_runs(host: TestHost) -> dict[str, int]:
    """Return how often each /scripts/NAME ran since the host was provisioned (the
    simulator's own log of its script entry points; suspendacct's own restart is not one)."""
    log = host.path("/var/cpanel/sim/scripts.log")
    names = log.read_text().split() if log.exists() else []
    return {name: names.count(name) for name in set(names)}


def api(host: TestHost, token: str | None, function: str, *, as_user: str = "root",
        timeout: float = 30, method: str = "GET", **args: str) -> requests.Response:
    """Call https://HOST:2087/json-api/FUNCTION?api.version=1&ARGS with the header
    `Authorization: whm AS_USER:TOKEN` (none when `token` is None)."""
    headers = {"Authorization": f"whm {as_user}:{token}"} if token else {}
    url = f"https://{host.address}:{services.WHM_PORT}/json-api/{function}"
    params = {"api.version": "1", **args}
    if method == "POST":
        return session(host).post(url, data=params, headers=headers, timeout=timeout)
    return session(host).get(url, params=params, headers=headers, timeout=timeout)


def web(host: TestHost, name: str, scheme: str = "http", path: str = "/") -> requests.Response:
    """GET `path` of site `name` as a visitor would (no redirects followed)."""
    return session(host).get(f"{scheme}://{host.address}{path}", headers={"Host": name},
                             allow_redirects=False, timeout=10)


def reset(host: TestHost) -> None:
    """Put the provisioned panel state back: no faults, nobody suspended, no mailbox or
    outgoing switch set, delivery to suspended accounts "deliver", no EA4 include, Apache
    rebuilt. Calls only what differs (it runs after every test). Changes made behind the
    panel's back (a MariaDB lock, an edited /etc/proftpd file) are not undone."""
    services.set_faults(host, None)
    hostfs.write(host, "/etc/exim_suspended_list", "*: :unknown:\n")
    for acct in layout.ACCOUNTS:
        host.path(f"/var/cpanel/bwlimited/{acct.user}").unlink(missing_ok=True)
        host.path(f"/var/cpanel/suspended/{acct.user}.lock").unlink(missing_ok=True)
        state = whmapi1(host, "accountsummary", user=acct.user)["data"]["acct"][0]
        if state["suspended"] or host.path(f"/var/cpanel/suspended/{acct.user}").exists():
            whmapi1(host, "unsuspendacct", user=acct.user)
        if state["outgoing_mail_suspended"]:
            whmapi1(host, "unsuspend_outgoing_email", user=acct.user)
        if state["outgoing_mail_hold"]:
            whmapi1(host, "release_outgoing_email", user=acct.user)
        for box in uapi(host, acct.user, "Email", "list_pops",
                        skip_main="1")["result"]["data"]:
            for flag, function in (("suspended_login", "unsuspend_login"),
                                   ("suspended_incoming", "unsuspend_incoming"),
                                   ("suspended_outgoing", "unsuspend_outgoing"),
                                   ("hold_outgoing", "release_outgoing")):
                if box[flag]:
                    uapi(host, acct.user, "Email", function, email=box["email"])
    _restore_accounts(host)  # after unsuspendacct, which needs the suspension's `!!`
    folder = host.path("/etc/apache2/conf.d/userdata")
    stale = list(folder.rglob("*.conf"))
    for path in stale:
        path.unlink()
    if stale:
        script(host, "rebuildhttpdconf")
        script(host, "restartsrv_httpd")


# What a test that failed half-way can leave behind outside the panel's own state: the
# agent's locks in the system account files and FTP files, and its server-side case
# records (which the next test's agent would take over). Saved once provisioned.
BASELINE_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow")
CASE_RECORDS = "/var/lib/suspension-agent-cases"


def _baseline(host: TestHost) -> dict[str, tuple[bytes, int, int, int]]:
    paths = [*BASELINE_FILES, *(f"/etc/proftpd/{a.user}" for a in layout.ACCOUNTS)]
    out = {}
    for path in paths:
        if host.path(path).is_file():
            st = host.path(path).stat()
            out[path] = (host.path(path).read_bytes(), st.st_mode & 0o7777, st.st_uid,
                         st.st_gid)
    return out


def _merged(path: str, now: bytes, then: bytes) -> bytes:
    # The system account files line by line: the baseline's lines come back, lines of
    # accounts and groups a module added since (its resellers) stay as they are.
    if path not in BASELINE_FILES:
        return then
    old = {line.split(b":", 1)[0]: line for line in then.splitlines()}
    lines = [old.get(line.split(b":", 1)[0], line) for line in now.splitlines()]
    return b"\n".join(lines) + b"\n"


def _restore_accounts(host: TestHost) -> None:
    for path, (data, mode, uid, gid) in getattr(host, "_cp_baseline", {}).items():
        target = host.path(path)
        want = _merged(path, target.read_bytes(), data) if target.is_file() else data
        if not target.is_file() or target.read_bytes() != want:
            target.write_bytes(want)
            os.chown(target, uid, gid)
            os.chmod(target, mode)
    records = host.path(CASE_RECORDS)
    if records.is_dir():
        for record in records.glob("*.json"):
            record.unlink()


def fixtures(offset: int) -> tuple:
    """Return the pytest fixtures (cp, host) of a test module: `cp` a module-wide cPanel host
    at host_index(offset) as (TestHost, CpanelHost); `host` its TestHost, reset after each
    test. Use as `cp, host = calls.fixtures(20)`."""
    import pytest

    @pytest.fixture(scope="module")
    def cp():  # noqa: ANN202
        yield from running_host(offset)

    @pytest.fixture
    def host(cp):  # noqa: ANN001, ANN202
        yield cp[0]
        reset(cp[0])

    return cp, host


def running_host(offset: int):  # noqa: ANN201 - a pytest fixture body (generator)
    """Yield (TestHost, CpanelHost) for a fresh cPanel host at host_index(offset), torn down
    after; like tests/conftest.py's `host`, a host that cannot start fails the tests under
    CI=true or as root, and skips them only elsewhere."""
    from tests.conftest import host_index, start
    from tests.hosts.cpanel.provision import provision_cpanel

    index = host_index(offset=offset)
    host = TestHost(f"cp{index}", index)
    cpanel = start(host, provision_cpanel, "cPanel test host")
    host._cp_baseline = _baseline(host)
    try:
        yield host, cpanel
    finally:
        host.down()
