"""The cPanel simulator's WHM API over HTTPS (panels.md A1, A2): tokens and their ACLs,
uapi_cpanel, start_background_pkgacct sessions (A11) and fault injection."""

from __future__ import annotations

import time

import pytest
import requests

from tests.hosts.cpanel import calls, services
from tests.hosts.cpanel.calls import api, script, whmapi1

# One worker runs the whole module, so its cPanel host is brought up once (tests/run.sh).
pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-sim-api")]

# A module-wide cPanel host (host index offset 22), reset after each test.
cp, host = calls.fixtures(offset=22)


@pytest.fixture
def root_token(cp):
    return cp[1].root_token


def test_token_is_checked_on_every_call(host, root_token):
    good = api(host, root_token, "version")
    assert good.status_code == 200 and good.json()["metadata"]["result"] == 1
    posted = api(host, root_token, "accountsummary", method="POST", user="alice")
    assert posted.json()["data"]["acct"][0]["owner"] == "res1"
    for token, user in ((None, "root"), ("X" * 32, "root"), (root_token, "res1"),
                        (root_token.lower(), "root")):
        assert api(host, token, "version", as_user=user).status_code == 403
    unknown = api(host, root_token, "no_such_function")
    assert unknown.status_code == 200 and unknown.json()["metadata"]["result"] == 0
    stored = host.path("/var/cpanel/authn/api_tokens_v2/whostmgr/root.json").read_text()
    assert root_token not in stored


def test_reseller_token_sees_and_does_only_what_its_acls_allow(host):
    token = services.create_token(host, "res1", "listing", ("list-accts", "acct-summary"))
    listed = api(host, token, "listaccts", as_user="res1").json()
    assert sorted(a["user"] for a in listed["data"]["acct"]) == ["alice", "res1"]
    assert api(host, token, "accountsummary", as_user="res1",
               user="bob").json()["metadata"]["reason"] == "Account does not exist."
    refused = api(host, token, "suspendacct", as_user="res1", user="alice").json()
    assert refused["metadata"]["result"] == 0
    assert whmapi1(host, "accountsummary", user="alice")["data"]["acct"][0]["suspended"] == 0
    # myprivs needs basic-whm-functions (review F6, Whostmgr/XMLUI/Meta.pm).
    assert api(host, token, "myprivs", as_user="res1").json()["metadata"]["result"] == 0
    seeing = services.create_token(host, "res1", "seeing",
                                   ("list-accts", "acct-summary", "basic-whm-functions"))
    privs = api(host, seeing, "myprivs", as_user="res1").json()["data"]["privileges"][0]
    assert (privs["list-accts"], privs["suspend-acct"], privs["all"]) == (1, 0, 0)
    # A suspended reseller's token stops working ([INF] from A1).
    whmapi1(host, "suspendacct", user="res1")
    assert api(host, token, "listaccts", as_user="res1").status_code == 403


def test_uapi_cpanel_returns_the_uapi_result_in_data_uapi(host, root_token):
    reply = api(host, root_token, "uapi_cpanel", **{
        "cpanel.user": "alice", "cpanel.module": "Email", "cpanel.function": "suspend_login",
        "email": "info@alice.test"}).json()
    assert reply["metadata"]["result"] == 1
    assert reply["data"]["uapi"]["status"] == 1
    pops = api(host, root_token, "uapi_cpanel", **{
        "cpanel.user": "alice", "cpanel.module": "Email",
        "cpanel.function": "list_pops"}).json()["data"]["uapi"]["data"]
    assert {p["email"]: p["suspended_login"] for p in pops}["info@alice.test"] == 1
    wrong = api(host, root_token, "uapi_cpanel", **{
        "cpanel.user": "alice", "cpanel.module": "Email", "cpanel.function": "suspend_login",
        "email": "bob@bob.test"}).json()
    assert wrong["data"]["uapi"]["status"] == 0 and wrong["data"]["uapi"]["errors"]


def test_background_pkgacct_is_asynchronous(host, root_token):
    services.set_faults(host, {"pkgacct": {"mode": "hang", "seconds": 3}})
    archive = host.path("/home/cpmove-bob.tar.gz")
    archive.unlink(missing_ok=True)
    started = time.monotonic()
    reply = api(host, root_token, "start_background_pkgacct", user="bob").json()
    assert time.monotonic() - started < 2
    session = reply["data"]["session_id"]
    state = api(host, root_token, "get_pkgacct_session_state", session_id=session).json()
    assert state["data"]["state"] == "RUNNING" and not archive.exists()
    host.wait(lambda: api(host, root_token, "get_pkgacct_session_state",
                          session_id=session).json()["data"]["state"] == "COMPLETED",
              "pkgacct session", timeout=60)
    assert archive.exists()
    log = api(host, root_token, "fetch_pkgacct_master_log", session_id=session).json()
    assert "pkgacct completed" in log["data"]["log"]
    assert host.path(f"/var/cpanel/pkgacct_sessions/{session}/master.log").exists()
    bad = api(host, root_token, "get_pkgacct_session_state", session_id="nope").json()
    assert bad["metadata"]["result"] == 0


def test_faults_make_functions_lie_fail_or_hang(host, root_token):
    services.set_faults(host, {"suspendacct": {"mode": "noop"},
                               "listaccts": {"mode": "fail", "message": "database busy"},
                               "version": {"mode": "hang", "seconds": 3, "times": 1},
                               "rebuildhttpdconf": {"mode": "fail", "exit": 3}})
    lied = api(host, root_token, "suspendacct", user="alice").json()
    assert lied["metadata"]["result"] == 1
    assert whmapi1(host, "accountsummary", user="alice")["data"]["acct"][0]["suspended"] == 0
    failed = api(host, root_token, "listaccts").json()["metadata"]
    assert (failed["result"], failed["reason"]) == (0, "database busy")
    with pytest.raises(requests.Timeout):
        api(host, root_token, "version", timeout=1)
    assert api(host, root_token, "version").json()["metadata"]["result"] == 1  # times: 1
    before = host.path("/etc/apache2/conf/httpd.conf").read_text()
    assert script(host, "rebuildhttpdconf")[0] == 3
    assert host.path("/etc/apache2/conf/httpd.conf").read_text() == before
    services.set_faults(host, None)
    assert api(host, root_token, "listaccts").json()["metadata"]["result"] == 1


def test_token_lifecycle_over_the_api(host, root_token):
    made = api(host, root_token, "api_token_create", token_name="billing",
               **{"acl-0": "list-accts", "acl-1": "acct-summary"}).json()
    assert made["metadata"]["result"] == 1 and made["data"]["acls"] == ["acct-summary",
                                                                        "list-accts"]
    token = made["data"]["token"]
    assert api(host, token, "listaccts").json()["metadata"]["result"] == 1
    assert api(host, token, "suspendacct", user="bob").json()["metadata"]["result"] == 0
    listed = api(host, root_token, "api_token_list").json()["data"]["tokens"]
    assert "billing" in listed and "token" not in listed["billing"]
    assert api(host, root_token, "api_token_revoke", token_name="billing").json()[
        "metadata"]["result"] == 1
    assert api(host, token, "listaccts").status_code == 403


@pytest.mark.parametrize("name", ["../../etc/passwd", "root", "nobody", "alice;id", ""])
def test_hostile_account_names_are_unknown_accounts(host, root_token, name):
    for function in ("accountsummary", "suspendacct", "start_background_pkgacct"):
        reply = api(host, root_token, function, user=name).json()
        assert reply["metadata"]["result"] == 0, (function, reply)
    assert calls.uapi(host, name or "x", "Email", "list_pops")["result"]["status"] == 0
    assert not host.path("/var/cpanel/suspended/root").exists()
