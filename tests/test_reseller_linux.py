"""A reseller's tree on the linux test host, over real SSH, checked from outside.

The tree (from config): rita (login rita) owns alice and the sub-reseller sam (login sam),
who owns bob. Beforehand alice carries her own abuse case and an admin has locked bob's
password. After `suspend --reseller rita` every domain of the tree answers the landing page
over HTTP and HTTPS and the reseller logins are refused; after `unsuspend --reseller rita`
bob's sites are back with their own content while alice (abuse) stays suspended and bob's
password stays locked, as the admin left it; lifting alice's own case then gives back the
host byte for byte.
"""

from __future__ import annotations

import pytest

from tests.hosts import clients, sites
from tests.hosts.provision import ACCOUNTS, HOOK_DIR
from tests.test_ladder import NOT_RESTORED, TOUCHED, snapshot

pytestmark = pytest.mark.testhost

LOGINS = {"rita": "rita-pass-1", "sam": "sam-pass-1"}
TREE = ("    resellers:\n"
        "      rita: {login: rita, accounts: [alice], resellers: [sam]}\n"
        "      sam: {accounts: [bob]}\n")


def unix_users(host, users: dict[str, str]):
    """Make `users` (name -> password) unix users of the host, part of its baseline, for
    the length of a module; remove them again afterwards (a generator for a fixture)."""
    for name in users:
        host.run(["useradd", "--create-home", "--shell", "/bin/bash", name])
    host.run(["chpasswd"], input="".join(f"{n}:{p}\n" for n, p in users.items()).encode())
    host.baseline = type(host.baseline).take(host)  # the users are part of "before" now
    yield users
    for name in users:
        host.run(["userdel", "--remove", name], check=False)
    host.run(["rm", "-f", "/etc/passwd-", "/etc/shadow-", "/etc/group-", "/etc/gshadow-"],
             check=False)
    host.baseline = type(host.baseline).take(host)


@pytest.fixture(scope="module")
def logins(host):
    """The reseller logins as unix users of the host (removed again afterwards)."""
    yield from unix_users(host, LOGINS)


@pytest.fixture
def tree_agent(agent_env, logins):
    text = agent_env.config.read_text()
    agent_env.config.write_text(text.replace("    connect_timeout: 5\n",
                                             "    connect_timeout: 5\n" + TREE))
    yield agent_env
    for hold in ("billing", "abuse"):
        agent_env("unsuspend", agent_env.host.name, "--reseller", "rita", "--hold", hold)


def shadow_line(host, account: str) -> str:
    return next(line for line in host.path("/etc/shadow").read_text().splitlines()
                if line.startswith(account + ":"))


def domains(account: str) -> list[tuple[str, str]]:
    """Return (domain, the vhost's ServerName) for every name of the account's sites."""
    return [(domain, name) for name, _sub, aliases, _h in ACCOUNTS[account]
            for domain in (name, *aliases)]


def shows(host, account: str) -> dict[str, str]:
    """Return what each domain of the account answers over HTTP and HTTPS."""
    return sites.shows(host, {account: domains(account)})


def test_reseller_tree_round_trip_with_provenance(host, tree_agent) -> None:
    agent = tree_agent
    before = snapshot(host)
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now",
                           "--hold", "abuse", "--reason", "phishing")
    assert rc == 0, out
    host.run(["usermod", "--lock", "bob"])  # an admin's own lock, before any case of bob
    locked_by_admin = shadow_line(host, "bob")
    assert set(shows(host, "bob").values()) == {"own"}

    rc, reply, out = agent("suspend", host.name, "--reseller", "rita", "--playbook",
                           "immediate", "--reason", "11 invoices")
    assert rc == 0, out
    assert reply["target"] == {"server": host.name, "kind": "reseller", "name": "rita"}
    kids = {c["account"]: c for c in reply["children"]}
    assert set(kids) == {"alice", "bob", "rita", "sam"}
    assert kids["alice"]["holds"] == ["abuse", "billing"]
    for account in ("alice", "bob"):
        assert set(shows(host, account).values()) == {"landing"}, account
    for name, password in LOGINS.items():
        assert clients.ssh_password_login(host, name, password) != "ok", name
    assert clients.imap_login(host, "bob@bob.test", "bob-pass-1") != "ok"

    # Run twice: nothing more happens.
    rc, again, out = agent("suspend", host.name, "--reseller", "rita", "--playbook",
                           "immediate")
    assert rc == 0 and not any(a["changed"] for a in again["applied"]), out

    rc, reply, out = agent("unsuspend", host.name, "--reseller", "rita")
    assert rc == 0 and reply["state"] == "active", out
    kids = {c["account"]: c for c in reply["children"]}
    assert kids["alice"]["state"] == "suspended" and kids["alice"]["holds"] == ["abuse"]
    assert set(shows(host, "alice").values()) == {"landing"}
    assert set(shows(host, "bob").values()) == {"own"}
    assert clients.imap_login(host, "bob@bob.test", "bob-pass-1") == "ok"
    for name, password in LOGINS.items():
        assert clients.ssh_password_login(host, name, password) == "ok", name
    assert shadow_line(host, "bob") == locked_by_admin  # the admin's lock stays as it was
    assert clients.ssh_password_login(host, "bob", "bob-pass-1") != "ok"

    rc, reply, out = agent("unsuspend", host.name, "alice", "--hold", "abuse")
    assert rc == 0 and reply["state"] == "active", out
    host.run(["usermod", "--unlock", "bob"])
    after = snapshot(host)
    assert {k: v for k, v in after.items() if k not in NOT_RESTORED} == {
        k: v for k, v in before.items() if k not in NOT_RESTORED}, TOUCHED


def test_a_tree_entry_naming_an_account_the_host_lacks_is_78_before_anything(host, tree_agent
                                                                            ) -> None:
    agent = tree_agent
    text = agent.config.read_text().replace("accounts: [bob]", "accounts: [bob, nosuch]")
    agent.config.write_text(text)
    before = snapshot(host)
    rc, reply, out = agent("suspend", host.name, "--reseller", "rita")
    assert rc == 78 and "resellers.sam.accounts[1]" in out and "nosuch" in out, out
    assert snapshot(host) == before
    rc, reply, out = agent("status")
    assert rc == 0 and reply["targets"] == [], out


def test_the_batch_reads_sshd_max_sessions_and_keeps_below_it(host, tree_agent) -> None:
    """A hardened sshd (MaxSessions 2): the tree still goes through, one session at a time."""
    dropin = host.path("/etc/ssh/sshd_config.d/05-hardened.conf")
    dropin.write_text("MaxSessions 2\n")
    try:
        from agent.drivers.linux.panel_lock import _HUP_SSHD

        host.run(["sh", "-c", _HUP_SSHD, "sh", "/run/sshd.pid"])
        rc, reply, out = tree_agent("suspend", host.name, "--reseller", "rita",
                                    "--playbook", "web-now")
        assert rc == 0, out
        assert set(shows(host, "bob").values()) == {"landing"}
        _rc, events, _out = tree_agent("history", host.name, "--reseller", "rita")
        sized = [e["detail"] for e in events["events"] if e["event"] == "batch.workers"]
        assert sized and all(d["workers"] == 1 and d["max_sessions"] == 2 for d in sized)
        rc, reply, out = tree_agent("unsuspend", host.name, "--reseller", "rita")
        assert rc == 0 and set(shows(host, "bob").values()) == {"own"}, out
    finally:
        dropin.unlink()
        host.run(["sh", "-c", _HUP_SSHD, "sh", "/run/sshd.pid"])


def test_tick_gives_the_mail_stage_to_the_tree_and_one_failing_account_stays_behind(
        host, tree_agent) -> None:
    """The demo ladder (mail after 5 s) over the tree: at the tick, every account gets its
    mail stage side by side; bob's fails (his mailbox file is a folder for a moment), is
    rolled back on its own and named, alice's stays applied; once bob's file is back, the
    retry gives him the stage too, and the unsuspend gives back the host byte for byte."""
    agent = tree_agent
    before = snapshot(host)
    shadow = host.path("/etc/vmail/bob.test/shadow")
    original = shadow.read_bytes()
    agent.now = 2_000_000_000.0
    rc, reply, out = agent("suspend", host.name, "--reseller", "rita", "--playbook", "demo")
    assert rc == 0, out
    try:
        aside = shadow.with_name("shadow.aside")
        shadow.rename(aside)
        shadow.mkdir()
        agent.now += 5.5
        rc, reply, out = agent("tick")
        assert rc == 1, out
        (tree,) = [o for o in reply["processed"] if o["target"]["kind"] == "reseller"]
        kids = {c["account"]: c for c in tree["children"]}
        assert kids["alice"]["stage"] == 1 and not kids["alice"]["errors"], kids["alice"]
        assert kids["bob"]["stage"] == 0 and kids["bob"]["errors"], kids["bob"]
        assert [e["account"] for e in tree["errors"]] == ["bob"]
        assert clients.imap_login(host, "info@shop.test", "info-pass-1") != "ok"
    finally:
        if shadow.is_dir():
            shadow.rmdir()
            aside.rename(shadow)
    assert shadow.read_bytes() == original
    assert clients.imap_login(host, "bob@bob.test", "bob-pass-1") == "ok"  # never locked
    agent.now += 120  # past the retry pause
    rc, reply, out = agent("tick")
    assert rc == 0, out
    assert clients.imap_login(host, "bob@bob.test", "bob-pass-1") != "ok"
    rc, reply, out = agent("unsuspend", host.name, "--reseller", "rita")
    assert rc == 0 and reply["state"] == "active", out
    assert {k: v for k, v in snapshot(host).items() if k not in NOT_RESTORED} == {
        k: v for k, v in before.items() if k not in NOT_RESTORED}


def test_a_revert_left_stuck_keeps_the_account_in_the_trees_view_until_it_is_done(
        host, tree_agent) -> None:
    """bob's landing folder turns read-only (a remount, as a failing disk does) while the
    tree is suspended: the tree's unsuspend brings every other site back, and bob's revert
    goes stuck. From then on status and unsuspend of the tree say so (exit 3,
    bob `partial` with the stuck step) until the folder is writable again and the next
    `unsuspend --reseller` finishes bob's revert; then the host is back byte for byte."""
    agent = tree_agent
    before = snapshot(host)
    folder = f"{HOOK_DIR}/bob"
    rc, reply, out = agent("suspend", host.name, "--reseller", "rita", "--playbook", "web-now")
    assert rc == 0 and set(shows(host, "bob").values()) == {"landing"}, out
    host.in_namespaces(["mount", "--bind", str(host.path(folder)), str(host.path(folder))])
    mounted = True
    try:
        host.in_namespaces(["mount", "-o", "remount,bind,ro", str(host.path(folder))])
        rc, reply, out = agent("unsuspend", host.name, "--reseller", "rita")
        assert rc == 3 and reply["state"] == "partial", out
        assert set(shows(host, "alice").values()) == {"own"}
        assert set(shows(host, "bob").values()) == {"landing"}  # the include still loaded
        for verb in ("status", "unsuspend"):
            rc, reply, out = agent(verb, host.name, "--reseller", "rita")
            assert rc == 3, (verb, out)
            kids = {c["account"]: c for c in reply["children"]}
            assert kids["bob"]["state"] == "partial", (verb, out)
            assert [s["step"] for s in kids["bob"]["stuck"]] == ["landing_page"], (verb, out)
        host.in_namespaces(["umount", str(host.path(folder))])
        mounted = False
        rc, reply, out = agent("unsuspend", host.name, "--reseller", "rita")
        assert rc == 0 and reply["state"] == "active", out
        assert "bob" in reply["message"], out
        assert set(shows(host, "bob").values()) == {"own"}
        rc, reply, out = agent("status", host.name, "--reseller", "rita")
        assert rc == 0 and reply["children"] == [], out
    finally:
        if mounted:
            host.in_namespaces(["umount", str(host.path(folder))])
    assert {k: v for k, v in snapshot(host).items() if k not in NOT_RESTORED} == {
        k: v for k, v in before.items() if k not in NOT_RESTORED}


SHA_LOG = "/run/sa-sha256.log"
# sha256sum as the agent runs it (`SUM -- ARCHIVE`), logging the session id of the SSH
# command it runs under (field 6 of /proc/PID/stat) and the archive.
SHA_WRAPPER = ("#!/bin/sh\nread -r _pid _comm _state _ppid _pgrp sid _rest < /proc/$$/stat\n"
               f'printf "%s %s\\n" "$sid" "$2" >> {SHA_LOG}\nexec /usr/bin/sha256sum "$@"\n')


def test_the_trees_reused_backups_are_checked_in_one_command_and_still_whole(host, tree_agent
                                                                            ) -> None:
    """The standard ladder reuses a backup younger than 24h. On the tree's second suspend
    alice's and bob's archives are checked in one command (one SSH session), each whole:
    bob's, changed since it was taken (recompressed: the same files, other bytes), fails
    its check, so bob gets a fresh backup while alice's is reused; each old archive is
    checked that once."""
    agent = tree_agent
    wrapper, log = host.path("/usr/local/sbin/sa-sha256"), host.path(SHA_LOG)
    wrapper.write_text(SHA_WRAPPER)
    wrapper.chmod(0o755)
    agent.config.write_text(agent.config.read_text().replace(
        "    connect_timeout: 5\n",
        "    connect_timeout: 5\n    linux:\n      sha256sum: /usr/local/sbin/sa-sha256\n"))
    backups = host.path("/var/backups/suspension-agent")

    def archives(account: str) -> set[str]:
        """The account's archives on the host, but those other tests left there."""
        return {f"/{p.relative_to(host.root)}" for p in backups.glob(f"{account}-*.tar.gz")
                } - earlier

    earlier: set[str] = set()
    earlier = archives("alice") | archives("bob")
    try:
        agent.now = 2_000_000_000.0
        for verb in ("suspend", "unsuspend"):
            rc, reply, out = agent(verb, host.name, "--reseller", "rita",
                                   *(("--playbook", "standard") if verb == "suspend" else ()))
            assert rc == 0, out
        (alice,), (bob,) = archives("alice"), archives("bob")
        host.run(["sh", "-c", 'gzip -dc -- "$1" | gzip -1 > "$1.new" && mv -- "$1.new" "$1"',
                  "sh", bob])
        log.write_text("")
        agent.now += 600
        rc, reply, out = agent("suspend", host.name, "--reseller", "rita", "--playbook",
                               "standard")
        assert rc == 0, out
        assert set(shows(host, "bob").values()) == {"landing"}
        seen = [line.split(" ", 1) for line in log.read_text().splitlines()]
        first = {path: sid for sid, path in seen[:2]}
        assert set(first) == {alice, bob} and len(set(first.values())) == 1, seen
        checked = [path for _sid, path in seen]
        # Held for each plan, not run again; bob's plan judged it changed (its SHA-256).
        assert checked.count(alice) == 1 and checked.count(bob) == 1, seen
        (fresh,) = archives("bob") - {bob}
        assert fresh in checked and archives("alice") == {alice}
    finally:
        agent("unsuspend", host.name, "--reseller", "rita")
        wrapper.unlink()
        log.unlink(missing_ok=True)
