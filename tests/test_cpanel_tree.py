"""The cpanel driver's reseller tree and its login step against the cPanel simulator, over
SSH with whmapi1/uapi on the host and over the WHM API with a root token: res1 (owning
itself and alice) gets two sub-resellers with customers of their own, the tree is walked
from the panel's owner records (reference/panels.md A5, A9; lockouts.md 4.2), and
reseller_lock (suspendreseller reseller-only=1, lockouts.md 6.4) locks a reseller's own
logins, WHM token included, leaves its customers alone, and comes back byte-identical."""

from __future__ import annotations

import hashlib
import time

import pytest

from agent.config import config as config_mod
from agent.connector import connect
from agent.drivers import driver
from agent.drivers.cpanel import whm
from agent.errors import BadInput
from agent.steps.actions import carry_out
from agent.steps.protocol import Context
from tests.conftest import tree_state
from tests.hosts import clients
from tests.hosts.cpanel import calls, services
from tests.hosts.cpanel.agent import certificate_for, make_agent
from tests.hosts.cpanel.resellers import account, add_accounts

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-tree")]

# res1 -> res1 (itself), alice, sub1, sub2; sub1 -> cust1, cust2; sub2 -> cust3; other1, a
# reseller of root's, -> cust9; bob is root's.
TREE = [account("sub1", "res1", reseller=True), account("sub2", "res1", reseller=True),
        account("cust1", "sub1"), account("cust2", "sub1"), account("cust3", "sub2"),
        account("other1", "root", reseller=True), account("cust9", "other1")]
# What a reseller lock may touch, compared byte for byte (usermod's own backups hold the
# version before its edit; the mail stores change on every login).
WATCHED = ("/etc", "/var/cpanel/users", "/var/cpanel/userdata", "/var/cpanel/suspended",
           "/var/cpanel/suspendinfo", "/var/spool/cron", "/home/sub1", "/home/res1/etc",
           "/home/res1/public_html")
NOT_RESTORED = ("etc/passwd-", "etc/shadow-", "etc/group-", "etc/gshadow-")


@pytest.fixture(scope="module")
def cp():
    """A cPanel host of its own (host index offset 33) with the tree above, whose WHM
    certificate names it (the API transport checks the name)."""
    for host, cpanel in calls.running_host(offset=33):
        add_accounts(host, TREE)
        yield host, certificate_for(host, cpanel)


@pytest.fixture(params=["cli", "api"])
def server(request, cp, tmp_path):
    """(server, connector) of the agent's config for the host, panel calls by whmapi1/uapi
    (cli) or the WHM API with the root token (api); nobody suspended afterwards."""
    host, cpanel = cp
    agent = make_agent(host, tmp_path, request.param, cpanel.root_token)
    cfg = config_mod.load(str(agent.config))
    srv = cfg.servers[host.name]
    conn = connect(srv)
    yield cfg, srv, conn
    conn.close()
    nobody_suspended(host)


@pytest.fixture
def host(cp):
    """The tree's host; nobody suspended afterwards."""
    yield cp[0]
    nobody_suspended(cp[0])


def nobody_suspended(host) -> None:
    """Put the provisioned state back (calls.reset) and lift what is left on the tree."""
    calls.reset(host)
    for acct in TREE:
        host.path(f"/var/cpanel/suspended/{acct.user}.lock").unlink(missing_ok=True)
        if store_hash(host, acct.user).startswith("!") or summary(host, acct.user)["suspended"]:
            calls.whmapi1(host, "unsuspendacct", user=acct.user)


def store_hash(host, user: str) -> str:
    line = next(x for x in host.path("/etc/shadow").read_text().splitlines()
                if x.startswith(user + ":"))
    return line.split(":")[1]


def snapshot(host) -> dict:
    """Every watched file's content, mode and owner; a cpuser file's `SUSPENDED=0` line
    left out (unsuspendacct drops the key, A8: both mean "not suspended")."""
    state = {k: v for k, v in tree_state(host, *WATCHED).items() if k not in NOT_RESTORED}
    for key in [k for k in state if k.startswith("var/cpanel/users/")]:
        text = host.path("/" + key).read_bytes().replace(b"SUSPENDED=0\n", b"")
        state[key] = (hashlib.sha256(text).hexdigest(), *state[key][1:])
    return state


def summary(host, user: str) -> dict:
    return calls.whmapi1(host, "accountsummary", user=user)["data"]["acct"][0]


def test_the_tree_is_walked_from_the_panel(cp, server):
    _cfg, srv, conn = server
    cpanel = driver("cpanel")
    # The config's channel: whmapi1 over SSH, or json-api over HTTPS with the token.
    assert whm.channel(srv).via == srv.cpanel.transport
    tree = cpanel.reseller_tree(srv, conn, "res1")
    assert tree.resellers == tree.logins == ("res1", "sub1", "sub2")
    assert tree.accounts == ("res1", "alice", "sub1", "sub2", "cust1", "cust2", "cust3")
    assert not {"bob", "other1", "cust9"} & set(tree.children)
    assert any("res1 owns its own account" in n for n in tree.notes)
    assert cpanel.reseller_tree(srv, conn, "sub1").accounts == ("sub1", "cust1", "cust2")
    for name, words in (("bob", "not a reseller"), ("nosuch", "no account"),
                        ("res1;id", "not a cPanel user name")):
        with pytest.raises(BadInput, match=words):
            cpanel.reseller_tree(srv, conn, name)
    # cPanel's own reseller suspension reaches one level only (lockouts.md 4.2): what the
    # tree adds over it.
    direct = calls.whmapi1(cp[0], "listaccts", searchtype="owner", search="res1",
                           searchmethod="exact")["data"]["acct"]
    assert {a["user"] for a in direct} == {"res1", "alice", "sub1", "sub2"}


def test_reseller_lock_round_trip_is_byte_identical(cp, server):
    host, _cpanel = cp
    cfg, srv, conn = server
    step = driver("cpanel").steps["reseller_lock"]
    token = services.create_token(host, "sub1", f"sub1-{srv.cpanel.transport}",
                                  ("list-accts", "acct-summary", "suspend-acct"))
    assert calls.api(host, token, "listaccts", as_user="sub1").status_code == 200
    assert clients.ssh_password_login(host, "sub1", "sub1-pass-1") == "ok"
    before = snapshot(host)
    ctx = Context(cfg, srv, conn, "sub1", "tree-1", time.time(), hold="billing")

    plan = step.plan(ctx)
    shown = "\n".join(plan.describe())
    assert "suspendreseller user=sub1" in shown and "reseller-only=1" in shown
    undo = step.apply(ctx, plan)
    step.verify(ctx, undo, True)
    state = summary(host, "sub1")
    assert (state["suspended"], state["is_locked"]) == (1, 1)
    assert "suspension-agent case tree-1" in state["suspendreason"]
    assert calls.api(host, token, "listaccts", as_user="sub1").status_code == 403
    assert clients.ssh_password_login(host, "sub1", "sub1-pass-1") != "ok"
    # The accounts it owns keep running: the login lock is the reseller's own.
    assert [summary(host, u)["suspended"] for u in ("cust1", "cust2", "sub2")] == [0, 0, 0]
    assert calls.web(host, "cust1.test").status_code == 200
    locked = snapshot(host)
    again = step.plan(ctx)  # a retried call: nothing to do
    assert again.actions == [] and "already locked by this case" in again.note
    assert snapshot(host) == locked

    revert = step.revert_plan(ctx, undo)
    assert any("unsuspendreseller user=sub1 reseller-only=1" in line
               for line in revert.describe())
    carry_out(conn, revert.actions)
    step.verify(ctx, undo, False)
    assert summary(host, "sub1")["suspended"] == 0
    assert calls.api(host, token, "listaccts", as_user="sub1").status_code == 200
    assert clients.ssh_password_login(host, "sub1", "sub1-pass-1") == "ok"
    assert snapshot(host) == before
    # Reverting twice changes nothing (no unsuspend: the lock is no longer this case's).
    twice = step.revert_plan(ctx, undo)
    assert not any(line.startswith("api") for line in twice.describe()), twice.describe()
    carry_out(conn, twice.actions)
    step.verify(ctx, undo, False)
    assert snapshot(host) == before


def test_a_reseller_suspended_before_stays_suspended(cp, server):
    host, _cpanel = cp
    cfg, srv, conn = server
    step = driver("cpanel").steps["reseller_lock"]
    calls.whmapi1(host, "suspendacct", user="sub2", reason="unpaid hosting of sub2")
    ctx = Context(cfg, srv, conn, "sub2", "tree-2", time.time(), hold="billing")
    plan = step.plan(ctx)
    assert plan.actions == [] and "unpaid hosting of sub2" in plan.note
    undo = step.apply(ctx, plan)
    carry_out(conn, step.revert_plan(ctx, undo).actions)
    step.verify(ctx, undo, False)
    state = summary(host, "sub2")
    assert (state["suspended"], state["suspendreason"]) == (1, "unpaid hosting of sub2")


def test_the_reseller_owning_itself_keeps_its_mail_locks(cp, server):
    """res1 owns itself and has a mailbox; a login lock of its own from before the case
    stays after the reversal although unsuspendacct strips every *LOCKED* (A8)."""
    host, _cpanel = cp
    cfg, srv, conn = server
    step = driver("cpanel").steps["reseller_lock"]
    calls.uapi(host, "res1", "Email", "suspend_login", email="admin@res1.test")
    before = snapshot(host)
    ctx = Context(cfg, srv, conn, "res1", "tree-3", time.time(), hold="abuse")
    undo = step.apply(ctx, step.plan(ctx))
    step.verify(ctx, undo, True)
    assert summary(host, "alice")["suspended"] == 0
    carry_out(conn, step.revert_plan(ctx, undo).actions)
    step.verify(ctx, undo, False)
    pops = calls.uapi(host, "res1", "Email", "list_pops", skip_main="1")["result"]["data"]
    assert {p["email"]: p["suspended_login"] for p in pops}["admin@res1.test"] == 1
    assert snapshot(host) == before
    calls.uapi(host, "res1", "Email", "unsuspend_login", email="admin@res1.test")


def test_the_simulators_reseller_functions_reach_one_level(host):
    """suspendreseller/unsuspendreseller as Whostmgr/Resellers.pm runs them (A9, lockouts.md
    4.2): the reseller first (no --force), then only the accounts it owns directly; an
    unsuspend of a reseller that is not suspended fails and touches nobody."""
    whmapi1 = calls.whmapi1
    refused = whmapi1(host, "unsuspendreseller", user="sub1")["metadata"]
    assert (refused["result"], refused["reason"]) == (0, "Failed to unsuspend reseller.")
    only = whmapi1(host, "suspendreseller", user="sub1", **{"reseller-only": "1"})["metadata"]
    assert only["result"] == 1 and only["reason"] == "OK"
    assert "were not suspended because the reseller-only parameter was set" in only["output"][
        "raw"]
    assert [summary(host, u)["suspended"] for u in ("sub1", "cust1")] == [1, 0]
    assert whmapi1(host, "suspendreseller", user="sub1")["metadata"]["result"] == 0
    assert whmapi1(host, "unsuspendreseller", user="sub1",
                   **{"reseller-only": "1"})["metadata"]["result"] == 1
    whmapi1(host, "suspendreseller", user="res1", reason="cascade")
    suspended = {u: summary(host, u)["suspended"] for u in
                 ("res1", "alice", "sub1", "sub2", "cust1", "cust2", "cust3", "bob")}
    assert suspended == {"res1": 1, "alice": 1, "sub1": 1, "sub2": 1, "cust1": 0,
                         "cust2": 0, "cust3": 0, "bob": 0}
    whmapi1(host, "unsuspendreseller", user="res1")
    assert not any(summary(host, u)["suspended"] for u in ("res1", "alice", "sub1", "sub2"))


def test_a_reseller_token_goes_by_the_suspension_file_not_the_hash(host):
    """The simulator refuses a reseller's token while /var/cpanel/suspended/USER exists
    (what cpsrvd goes by, sim/tokens.py); a hash locked otherwise (panel_lock's usermod
    --lock) leaves it working: why panel_lock is no reseller login lock."""
    token = services.create_token(host, "sub2", "sub2-hash", ("list-accts",))
    host.run(["usermod", "--lock", "sub2"])
    assert calls.api(host, token, "listaccts", as_user="sub2").status_code == 200
    host.run(["usermod", "--unlock", "sub2"])
    calls.whmapi1(host, "suspendacct", user="sub2")
    assert calls.api(host, token, "listaccts", as_user="sub2").status_code == 403
