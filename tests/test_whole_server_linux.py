"""The whole-server target on the linux test host, over real SSH, checked from outside.

The server's admin login `ops` (from config) is locked first; then every passwd account
from min_uid on gets the playbook's stages: alice, bob, and `ops` itself. `keeper` is a
protected account and must not be touched. Beforehand alice carries her own abuse case.
After `suspend --whole-server` every domain answers the landing page over HTTP and HTTPS,
ops and bob are refused over SSH and IMAP, keeper still logs in, and the agent still reaches
its server; after `unsuspend --whole-server` bob's sites and logins are back while alice
(abuse) stays suspended; lifting alice's own case then gives back the host byte for byte.
"""

from __future__ import annotations

import pytest

from tests.hosts import clients
from tests.test_ladder import NOT_RESTORED, TOUCHED, snapshot
from tests.test_reseller_linux import shows, unix_users

pytestmark = pytest.mark.testhost

USERS = {"ops": "ops-pass-1", "keeper": "keeper-pass-1"}


@pytest.fixture(scope="module")
def users(host):
    """The admin login and a protected account as unix users (removed again afterwards)."""
    yield from unix_users(host, USERS)


@pytest.fixture
def server_agent(mapped, agent_env, users):
    text = agent_env.config.read_text()
    agent_env.config.write_text(text.replace(
        "    connect_timeout: 5\n",
        "    connect_timeout: 5\n    admins: [ops]\n    protected_accounts: [keeper]\n"))
    yield agent_env
    for hold in ("billing", "abuse"):
        agent_env("unsuspend", agent_env.host.name, "--whole-server", "--hold", hold)
        agent_env("unsuspend", agent_env.host.name, "alice", "--hold", hold)


def test_whole_server_round_trip_with_provenance(host, server_agent) -> None:
    agent = server_agent
    before = snapshot(host)
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now",
                           "--hold", "abuse", "--reason", "phishing")
    assert rc == 0, out

    rc, reply, out = agent("check", host.name)
    assert rc == 0, out
    (lines,) = [r["lines"] for r in reply["servers"]]
    assert "whole server: would lock the logins ops first, then 3 account(s); never root " \
           "nor the agent's own login 'root'" in lines, lines

    rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                           "immediate", "--reason", "server rent")
    assert rc == 0, out
    assert reply["target"] == {"server": host.name, "kind": "server", "name": host.name}
    kids = {c["account"]: c for c in reply["children"]}
    assert set(kids) == {"alice", "bob", "ops"}, kids
    assert kids["ops"]["role"] == "login+account" and kids["alice"]["holds"] == [
        "abuse", "billing"]
    for account in ("alice", "bob"):
        assert set(shows(host, account).values()) == {"landing"}, account
    assert clients.ssh_password_login(host, "ops", USERS["ops"]) != "ok"
    assert clients.ssh_password_login(host, "bob", "bob-pass-1") != "ok"
    assert clients.imap_login(host, "bob@bob.test", "bob-pass-1") != "ok"
    assert clients.ssh_password_login(host, "keeper", USERS["keeper"]) == "ok"

    # Run twice: nothing more happens (and the agent still reaches its own server).
    rc, again, out = agent("suspend", host.name, "--whole-server", "--playbook", "immediate")
    assert rc == 0 and not any(a["changed"] for a in again["applied"]), out
    rc, status, out = agent("status", host.name, "--whole-server")
    assert rc == 0 and status["state"] == "suspended", out

    rc, reply, out = agent("unsuspend", host.name, "--whole-server")
    assert rc == 0 and reply["state"] == "active", out
    kids = {c["account"]: c for c in reply["children"]}
    assert kids["alice"]["state"] == "suspended" and kids["alice"]["holds"] == ["abuse"]
    assert set(shows(host, "alice").values()) == {"landing"}
    assert set(shows(host, "bob").values()) == {"own"}
    assert clients.imap_login(host, "bob@bob.test", "bob-pass-1") == "ok"
    assert clients.ssh_password_login(host, "ops", USERS["ops"]) == "ok"

    rc, reply, out = agent("unsuspend", host.name, "alice", "--hold", "abuse")
    assert rc == 0 and reply["state"] == "active", out
    after = snapshot(host)
    assert {k: v for k, v in after.items() if k not in NOT_RESTORED} == {
        k: v for k, v in before.items() if k not in NOT_RESTORED}, TOUCHED


def test_dry_run_and_plan_change_nothing_and_name_what_is_left_out(host, server_agent
                                                                  ) -> None:
    agent = server_agent
    before = snapshot(host)
    rc, reply, out = agent("--dry-run", "suspend", host.name, "--whole-server")
    assert rc == 0, out
    planned = {p.get("account") for p in reply["plan"]}
    assert planned == {"alice", "bob", "ops", None}, planned  # None: the server's own
    assert [p["step"] for p in reply["plan"] if "account" not in p] == ["server_landing"]
    rc, reply, out = agent("plan", host.name, "--whole-server", "--playbook", "immediate")
    assert rc == 0 and reply["tree"]["logins"] == ["ops"], out
    assert any("keeper" in n and "root" in n for n in reply["tree"]["notes"]), reply["tree"]
    assert snapshot(host) == before
    rc, reply, out = agent("status")
    assert rc == 0 and reply["targets"] == [], out


def test_an_account_whose_vhost_lacks_the_hook_is_refused_and_named(host, server_agent
                                                                   ) -> None:
    """ops gets a site of its own that nobody prepared (no IncludeOptional of its hook
    folder): its landing stage fails naming that vhost, the other accounts go on, and the
    reply is exit 1 with ops named; nothing of ops stays changed but its login lock."""
    agent = server_agent
    site = host.path("/etc/apache2/sites-enabled/ops.conf")
    docroot = host.path("/home/ops/public_html")
    docroot.mkdir(parents=True, exist_ok=True)
    site.write_text("<VirtualHost *:80>\n    ServerName ops.test\n"
                    "    DocumentRoot /home/ops/public_html\n</VirtualHost>\n")
    try:
        rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                               "web-now")
        assert rc == 1, out
        kids = {c["account"]: c for c in reply["children"]}
        assert kids["bob"]["state"] == "suspended" and not kids["bob"]["errors"]
        (error,) = kids["ops"]["errors"]
        assert error["step"] == "landing_page" and "ops.conf (ops.test)" in error["message"]
        assert set(shows(host, "bob").values()) == {"landing"}
        rc, reply, out = agent("unsuspend", host.name, "--whole-server")
        assert rc == 0 and reply["state"] == "active", out
        assert set(shows(host, "bob").values()) == {"own"}
    finally:
        site.unlink()
        host.run(["rm", "-rf", "/home/ops/public_html"])
        host.run(["/usr/sbin/apache2ctl", "graceful"])  # Apache forgets the vhost too
