"""The reseller target end to end on the cPanel simulator, through the agent's CLI, over SSH
with whmapi1/uapi (cli) and over the WHM API with a root token (api); issue 15's acceptance,
cPanel half (the linux half: tests/test_reseller_linux.py).

The tree: res1 (owning itself) owns alice (addon, sub and parked domains, mailboxes) and the
sub-resellers sub1 and sub2; sub1 owns cust1 (a subdomain and a parked domain) and cust2,
sub2 owns cust3 and cust4; bob (root's) is outside. Beforehand an admin has suspended cust4
in WHM with a reason, and cust2 carries an abuse case of its own. `suspend --reseller res1`
(cli: `--playbook immediate`; api: `standard`, then `tick` with the injected clock for the
later stages) puts every domain of the tree behind the landing page (HTTP and HTTPS,
checked from outside) and refuses the resellers' SSH logins and WHM tokens from the first
stage on; repeated, it changes nothing. `unsuspend --reseller res1` brings back every site
but cust2's (abuse) and cust4's (still cPanel's suspension, same reason), then the reseller
logins (their reverts last of all); lifting cust2's case then gives back the host byte for
byte. `plan --reseller` shows the tree and what the reseller lock also takes down; hostile
reseller names are exit 2, nothing changed.
"""

from __future__ import annotations

import pytest

from tests.conftest import tree_state
from tests.hosts import clients
from tests.hosts.cpanel import calls, layout, services
from tests.hosts.cpanel.agent import certificate_for, make_agent
from tests.hosts.cpanel.agent import snapshot as alice_snapshot
from tests.hosts.cpanel.layout import Account
from tests.hosts.cpanel.resellers import account, add_accounts
from tests.test_ladder import at_once

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-reseller")]

CUST1 = Account("cust1", "sub1", "cust1-pass-1", "cust1.test", {},
                {"shop.cust1.test": "public_html/shop"}, ["cust1-parked.test"])
ADDED = [account("sub1", "res1", reseller=True), account("sub2", "res1", reseller=True),
         CUST1, account("cust2", "sub1"), account("cust3", "sub2"), account("cust4", "sub2")]
ACCOUNTS = {a.user: a for a in [*layout.ACCOUNTS, *ADDED]}
TREE = ("res1", "alice", "sub1", "sub2", "cust1", "cust2", "cust3", "cust4")
RESELLERS = ("res1", "sub1", "sub2")
ABUSE, ADMIN = "cust2", "cust4"
START = 2_000_000_000.0
DAY = 86400.0
ADMIN_REASON = "admin: spam complaint"
# Besides what tests/hosts/cpanel/agent.py watches (/etc, the panel's files, alice's home),
# every home of the tree and what a suspension writes (the mail stores left out: logins
# update them).
WATCHED = ("/var/cpanel/suspendinfo", "/var/spool/cron",
           *(f"/home/{u}/{d}" for u in TREE if u != "alice" for d in ("etc", "public_html")))


@pytest.fixture(scope="module")
def cp():
    """A cPanel host of its own (host index offset 34) with the tree above, a WHM token of
    each reseller, and a certificate naming the host (the API transport checks it)."""
    for host, cpanel in calls.running_host(offset=34):
        add_accounts(host, ADDED)
        tokens = {r: services.create_token(host, r, f"{r}-own", ("list-accts",))
                  for r in RESELLERS}
        yield host, certificate_for(host, cpanel), tokens


def agent_for(cp, folder, transport: str):
    """The agent over SSH, its panel calls by whmapi1/uapi (cli) or by the WHM API with
    the root token (api)."""
    host, cpanel, _tokens = cp
    return make_agent(host, folder, transport, cpanel.root_token)


@pytest.fixture(params=["cli", "api"])
def agent(request, cp, tmp_path):
    """agent_for each channel; afterwards nothing of the tree is left suspended, whatever
    failed."""
    host = cp[0]
    agent = agent_for(cp, tmp_path, request.param)
    agent.channel = request.param
    yield agent
    agent("unsuspend", host.name, "--reseller", "res1")
    agent("unsuspend", host.name, ABUSE, "--hold", "abuse")
    calls.reset(host)
    for user in TREE:
        host.path(f"/var/cpanel/suspended/{user}.lock").unlink(missing_ok=True)
        if summary(host, user)["suspended"]:
            calls.whmapi1(host, "unsuspendacct", user=user)


def snapshot(host) -> dict:
    """alice's and the panel's files as the other cPanel round trips compare them (the
    SUSPENDED=0 line and usermod's backups excepted), and the tree's homes."""
    state = alice_snapshot(host)
    state.update({k: v for k, v in tree_state(host, *WATCHED).items() if "/mail/" not in k})
    return state


def names(user: str) -> dict[str, str]:
    """Return every name a visitor can use for a site of `user` -> its vhost's ServerName."""
    vhosts = layout.vhosts(ACCOUNTS[user])
    return {name: next(s for s, (_d, aliases) in vhosts.items() if name in (s, *aliases))
            for name in layout.web_domains(ACCOUNTS[user])}


def shows(host, *users: str) -> dict[str, str]:
    """What each domain of `users` answers over HTTP and HTTPS: `landing` (503, Retry-After,
    the agent's page), `own` (200, the site's own page), `cpanel` (cPanel's suspended page,
    as account_suspensions.conf sends it), else the status."""
    out = {}
    for user in users:
        for name, servername in names(user).items():
            for scheme in ("http", "https"):
                resp = calls.web(host, name, scheme)
                if (resp.status_code == 503 and resp.headers.get("Retry-After")
                        and "Example Hosting" in resp.text):
                    seen = "landing"
                elif resp.status_code == 200 and resp.text == layout.site_page(user, servername):
                    seen = "own"
                elif "suspendedpage" in resp.headers.get("Location", "") + resp.text:
                    seen = "cpanel"
                else:
                    seen = str(resp.status_code)
                out[f"{scheme}://{name} ({user})"] = seen
    return out


def reseller_logins(host, tokens: dict[str, str]) -> dict[str, str]:
    """Each reseller's SSH login and its own WHM token ("ok" or why not), and alice's IMAP."""
    probes = {f"ssh {r}": (lambda r=r: clients.ssh_password_login(host, r, f"{r}-pass-1"))
              for r in RESELLERS}
    probes.update({f"whm {r}": (lambda r=r: _token(host, r, tokens[r])) for r in RESELLERS})
    probes["imap alice"] = lambda: clients.imap_login(host, "info@alice.test", "info-mail-1")
    return at_once(probes)


def _token(host, user: str, token: str) -> str:
    status = calls.api(host, token, "listaccts", as_user=user).status_code
    return "ok" if status == 200 else f"HTTP {status}"


def summary(host, user: str) -> dict:
    return calls.whmapi1(host, "accountsummary", user=user)["data"]["acct"][0]


def rebuilds(host, before: dict[str, int]) -> tuple[int, int]:
    """Return how often rebuildhttpdconf and restartsrv_httpd ran since `before`."""
    now = calls.script_runs(host)
    return tuple(now.get(n, 0) - before.get(n, 0)
                 for n in ("rebuildhttpdconf", "restartsrv_httpd"))


def ftpupdates(host, before: dict[str, int]) -> int:
    """Return how often ftpupdate ran since `before`."""
    return calls.script_runs(host).get("ftpupdate", 0) - before.get("ftpupdate", 0)


def keys(*users: str) -> list[str]:
    """The keys `shows` gives the domains of `users`."""
    return [f"{scheme}://{name} ({user})" for user in users for name in names(user)
            for scheme in ("http", "https")]


def test_reseller_tree_round_trip_with_provenance(cp, agent):
    """cli: `immediate` in one call; api: `standard`, its later stages reached by `tick`
    with the injected clock."""
    host, _cpanel, tokens = cp
    book = "immediate" if agent.channel == "cli" else "standard"
    assert set(shows(host, *TREE, "bob").values()) == {"own"}
    assert set(reseller_logins(host, tokens).values()) == {"ok"}
    calls.whmapi1(host, "suspendacct", user=ADMIN, reason=ADMIN_REASON)
    before = snapshot(host)
    agent.now = START
    rc, _reply, out = agent("suspend", host.name, ABUSE, "--playbook", "web-now",
                            "--hold", "abuse", "--reason", "phishing")
    assert rc == 0, out

    runs = calls.script_runs(host)
    rc, reply, out = agent("suspend", host.name, "--reseller", "res1", "--playbook", book,
                           "--reason", "11 invoices")
    assert rc == 0 and reply["state"] == "suspended", out
    # The landing stage of all eight accounts: httpd.conf rebuilt and Apache restarted once.
    assert rebuilds(host, runs) == (1, 1), out
    assert reply["target"] == {"server": host.name, "kind": "reseller", "name": "res1"}
    kids = {c["account"]: c for c in reply["children"]}
    assert sorted(kids) == sorted(TREE), out  # the logins are the resellers' own accounts
    assert {r: kids[r]["role"] for r in RESELLERS} == dict.fromkeys(RESELLERS,
                                                                      "login+account")
    assert kids[ABUSE]["holds"] == ["abuse", "billing"]
    seen = shows(host, *TREE)
    assert set(seen.values()) == {"landing"}, seen
    assert set(shows(host, "bob").values()) == {"own"}
    # The reseller logins are locked from the first stage on, whatever the playbook.
    refused = reseller_logins(host, tokens)
    assert [k for k, v in refused.items() if v == "ok"] == (
        [] if book == "immediate" else ["imap alice"]), refused
    for user in RESELLERS:
        state = summary(host, user)
        assert (state["suspended"], state["is_locked"]) == (1, 1), (user, state)
    if book == "standard":
        agent.now = START + 3 * DAY + 60
        rc, ticked, out = agent("tick")
        assert rc == 0 and ticked["processed"][0]["stage"] == 2, out
        refused = reseller_logins(host, tokens)
        assert "ok" not in refused.values(), refused
    # ftpupdate rewrites every account's FTP file: once for the tree's ftp_lock, after all
    # the edits (one beside another account's edit could write that file back unedited).
    assert ftpupdates(host, runs) == 1, out

    # Run twice (a billing system retrying): nothing more happens.
    rc, again, out = agent("suspend", host.name, "--reseller", "res1", "--playbook", book)
    assert rc == 0 and again["state"] == "suspended", out
    assert not [a for a in again["applied"] if a["changed"]], out

    runs = calls.script_runs(host)
    rc, reply, out = agent("unsuspend", host.name, "--reseller", "res1")
    assert rc == 0 and reply["state"] == "active", out
    assert rebuilds(host, runs) == (1, 1), out
    assert ftpupdates(host, runs) == 1, out
    kids = {c["account"]: c for c in reply["children"]}
    assert kids[ABUSE]["state"] == "suspended" and kids[ABUSE]["holds"] == ["abuse"], out
    back = [u for u in TREE if u not in (ABUSE, ADMIN)]
    assert shows(host, *back, ABUSE, ADMIN) == {**dict.fromkeys(keys(*back), "own"),
                                                **dict.fromkeys(keys(ABUSE), "landing"),
                                                **dict.fromkeys(keys(ADMIN), "cpanel")}
    assert set(reseller_logins(host, tokens).values()) == {"ok"}
    state = summary(host, ADMIN)
    assert (state["suspended"], state["suspendreason"]) == (1, ADMIN_REASON), state

    rc, reply, out = agent("unsuspend", host.name, ABUSE, "--hold", "abuse")
    assert rc == 0 and reply["state"] == "active", out
    assert set(shows(host, ABUSE).values()) == {"own"}
    assert snapshot(host) == before
    # The reseller logins came back last: after every other revert of the tree (README
    # "Resellers"; the resellers' own accounts are login+account children on cPanel).
    # cust2's changes came back later, with its own case.
    rc, events, out = agent("history", host.name, "--reseller", "res1")
    reverts = [(e["name"], e["step"]) for e in events["events"]
               if e["event"] == "step.reverted" and e["name"] != ABUSE]
    last = [step for _name, step in reverts[-len(RESELLERS):]]
    assert last == ["reseller_lock"] * len(RESELLERS), reverts


def test_plan_lists_the_tree_and_what_the_reseller_lock_takes_down(cp, tmp_path):
    """Over the WHM API (the tree walked over the token); nothing changes."""
    host = cp[0]
    agent = agent_for(cp, tmp_path, "api")
    before = snapshot(host)
    rc, reply, out = agent("plan", host.name, "--reseller", "res1", "--playbook", "immediate")
    assert rc == 0 and reply["ok"], out
    tree = reply["tree"]
    assert tree["resellers"] == tree["logins"] == list(RESELLERS)
    assert sorted(tree["accounts"]) == sorted(TREE), tree
    notes = " ".join(tree["notes"])
    for words in ("suspendreseller", "its own sites", "mailboxes, databases, cron jobs and "
                  "outgoing mail stop", "the accounts it owns are not touched"):
        assert words in notes, notes
    locks = {e["account"]: "\n".join(e["actions"]) for e in reply["logins"]}
    assert sorted(locks) == sorted(RESELLERS)
    for user, shown in locks.items():
        assert f"suspendreseller user={user}" in shown and "reseller-only=1" in shown, shown
    assert sorted(c["account"] for c in reply["children"]) == sorted(TREE)
    assert snapshot(host) == before


@pytest.mark.parametrize("name", ["r;id", "../x"])
def test_a_hostile_reseller_name_is_exit_2_and_nothing_changes(cp, tmp_path, name):
    host = cp[0]
    agent = agent_for(cp, tmp_path, "cli")
    before = snapshot(host)
    for verb in (("suspend", host.name, "--reseller", name, "--playbook", "immediate"),
                 ("unsuspend", host.name, "--reseller", name),
                 ("plan", host.name, "--reseller", name)):
        rc, reply, out = agent(*verb)
        assert rc == 2 and reply is not None and not reply["ok"], (verb, out)
    rc, reply, out = agent("status")
    assert rc == 0 and reply["targets"] == [], out
    assert snapshot(host) == before


def test_whole_server_round_trip_on_cpanel(cp, tmp_path):
    """`suspend --whole-server` (issue 17, item 1): every reseller's login locked first
    (res1, then the sub-resellers it owns), then every account of the server behind the
    landing page with one rebuild and one restart; the admin's own suspension of cust4 is
    kept; `unsuspend --whole-server` gives back the host byte for byte."""
    host, _cpanel, tokens = cp
    agent = agent_for(cp, tmp_path, "cli")
    everyone = tuple(ACCOUNTS)
    calls.whmapi1(host, "suspendacct", user=ADMIN, reason=ADMIN_REASON)
    before = snapshot(host)
    try:
        rc, reply, out = agent("check", host.name)
        assert any(line.startswith("whole server: would lock the logins res1, sub1, sub2 "
                                   f"first, then {len(everyone)} account(s)")
                   for line in reply["servers"][0]["lines"]), out
        runs = calls.script_runs(host)
        rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                               "web-now", "--reason", "server rent")
        assert rc == 0 and reply["state"] == "suspended", out
        assert rebuilds(host, runs) == (1, 1), out
        kids = {c["account"]: c for c in reply["children"]}
        assert sorted(kids) == sorted(everyone), out
        assert {r: kids[r]["role"] for r in RESELLERS} == dict.fromkeys(RESELLERS,
                                                                          "login+account")
        seen = shows(host, *everyone)
        assert set(seen.values()) == {"landing"}, seen
        refused = reseller_logins(host, tokens)
        assert [k for k, v in refused.items() if v == "ok"] == ["imap alice"], refused

        runs = calls.script_runs(host)
        rc, reply, out = agent("unsuspend", host.name, "--whole-server")
        assert rc == 0 and reply["state"] == "active", out
        assert rebuilds(host, runs) == (1, 1), out
        back = [u for u in everyone if u != ADMIN]
        assert shows(host, *back, ADMIN) == {**dict.fromkeys(keys(*back), "own"),
                                             **dict.fromkeys(keys(ADMIN), "cpanel")}
        assert set(reseller_logins(host, tokens).values()) == {"ok"}
        state = summary(host, ADMIN)
        assert (state["suspended"], state["suspendreason"]) == (1, ADMIN_REASON), state
        assert snapshot(host) == before
    finally:
        agent("unsuspend", host.name, "--whole-server")
        calls.reset(host)
        calls.whmapi1(host, "unsuspendacct", user=ADMIN)


def _webmail_by_name(host) -> dict[str, bool]:
    """Whether webmail.alice.test reaches cpsrvd's webmail through Apache (the service
    subdomains, sim/web.py), over HTTP and HTTPS, asked from outside."""
    out = {}
    for scheme in ("http", "https"):
        reply = calls.session(host).get(f"{scheme}://{host.address}/", timeout=10,
                                        headers={"Host": "webmail.alice.test"},
                                        allow_redirects=False)
        out[scheme] = reply.status_code == 200 and "Webmail Login" in reply.text
    return out


def test_whole_server_firewall_block_on_cpanel(cp, tmp_path):
    """`server-mail-first` on the cPanel simulator: the mail client and webmail ports the
    host answers on are refused from outside at once, 25 still answers, the sites stay up
    until the next stage, and SMTP AUTH on 25 is refused (Exim prepared as docs/cpanel.md,
    "Whole server", says); webmail by name through Apache's service subdomains
    (webmail.DOMAIN on 80 and 443, proxied to 127.0.0.1:2095) is closed too; `unsuspend
    --whole-server` brings back the ruleset, AUTH, webmail and every file exactly."""
    from tests.test_firewall_linux import answers, auth_on_25, ruleset

    host = cp[0]
    agent = agent_for(cp, tmp_path, "cli")
    ports = [p for p in (110, 143, 465, 587, 993, 995, 2095, 2096) if answers(host, p)]
    assert {2095, 2096} <= set(ports) and len(ports) >= 4, ports
    assert _webmail_by_name(host) == {"http": True, "https": True}
    mailbox = ("info@alice.test", "info-mail-1")
    assert auth_on_25(host, *mailbox) == "235"
    before, rules = snapshot(host), ruleset(host)
    try:
        rc, reply, out = agent("check", host.name)
        assert "firewall_block withdraws SMTP AUTH on 25: yes" in reply["servers"][0][
            "lines"], out
        rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                               "server-mail-first")
        assert rc == 0, out
        assert [p for p in ports if answers(host, p)] == [] and answers(host, 25), ports
        assert auth_on_25(host, *mailbox) == "503"  # not offered: refused
        assert _webmail_by_name(host) == {"http": False, "https": False}
        assert set(shows(host, "bob").values()) == {"own"}
        rc, reply, out = agent("unsuspend", host.name, "--whole-server")
        assert rc == 0 and reply["state"] == "active", out
        assert [p for p in ports if not answers(host, p)] == []
        assert auth_on_25(host, *mailbox) == "235"
        assert _webmail_by_name(host) == {"http": True, "https": True}
        assert ruleset(host) == rules
        assert snapshot(host) == before
    finally:
        agent("unsuspend", host.name, "--whole-server")
        calls.reset(host)


def test_whole_server_throttle_on_cpanel(cp, tmp_path):
    """`throttle` (issue 17 item 3) on the cPanel simulator, measured from outside: a
    download from bob's site runs at no more than 1.2x the 8mbit cap while suspended, and
    after `unsuspend --whole-server` every interface's qdiscs read back as before and the
    download is fast again."""
    from tests.test_throttle_linux import BOOK, RATE_BITS, SIZE, UNSHAPED, http_rate, qdiscs

    host = cp[0]
    agent = agent_for(cp, tmp_path, "cli")
    (tmp_path / "playbooks" / "throttle-now.yaml").write_text(BOOK)
    big = host.path("/home/bob/public_html/big.bin")
    big.write_bytes(b"x" * SIZE)
    before = qdiscs(host)
    try:
        assert http_rate(host) > UNSHAPED
        rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                               "throttle-now")
        assert rc == 0, out
        (step,) = [a for a in reply["applied"] if a["step"] == "throttle"]
        assert step["scope"] == "server" and step["changed"], reply["applied"]
        assert 0.5 * RATE_BITS / 8 <= http_rate(host) <= 1.2 * RATE_BITS / 8
        rc, reply, out = agent("unsuspend", host.name, "--whole-server")
        assert rc == 0 and reply["state"] == "active", out
        assert qdiscs(host) == before and http_rate(host) > UNSHAPED
    finally:
        agent("unsuspend", host.name, "--whole-server")
        host.run(["/usr/sbin/tc", "qdisc", "del", "dev", f"sa{host.index}n", "root"],
                 check=False)
        big.unlink()
        calls.reset(host)
