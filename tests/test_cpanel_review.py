"""The cPanel review's findings (../shared/reference/cpanel-review.md, issue 16), one test
each, against a simulator that now behaves as real cPanel does there (each behaviour cites
its source in tests/hosts/cpanel/sim/). Each test says which finding it covers; each was run
against the driver as it was before its fix and failed there (the note of issue 16 says how).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import tree_state
from tests.hosts import clients
from tests.hosts.cpanel import calls
from tests.hosts.cpanel.agent import make_agent, snapshot

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-review")]

cp, host = calls.fixtures(offset=36)


@pytest.fixture
def agent(cp, host, tmp_path):
    """The agent over SSH with whmapi1/uapi; the simulator's state is reset after."""
    return make_agent(host, tmp_path, "cli", cp[1].root_token)


def _cpuser(host, user: str) -> str:
    return host.path(f"/var/cpanel/users/{user}").read_text()


def test_f14_unsuspend_keeps_the_service_proxy_backends(host, agent) -> None:
    """F14: unsuspendacct drops every service-proxy backend unless told to retain them
    (scripts/unsuspendacct:402-415); the agent's reversal of its own suspendacct keeps them."""
    path = "/var/cpanel/users/bob"
    original = _cpuser(host, "bob")
    # unsuspendacct deletes SUSPENDED (scripts/unsuspendacct:224): an account that was
    # suspended once has none, so the round trip is byte-identical from there.
    proxied = (original.replace("SUSPENDED=0\n", "") + "PROXY_BACKEND=node2.example.net\n"
               "PROXY_BACKEND-Mail=mx2.example.net\n")
    host.path(path).write_text(proxied)
    try:
        before = snapshot(host)
        rc, _reply, out = agent("suspend", host.name, "bob", "--playbook", "final")
        assert rc == 0, out
        rc, _reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert _cpuser(host, "bob") == proxied
        assert snapshot(host) == before
    finally:
        host.path(path).write_text(original)


DCV = {"/.well-known/pki-validation/0123456789ABCDEF0123456789ABCDEF.txt": "sectigo dcv\n",
       "/.well-known/cpanel-dcv/Tok_en-42": "cpanel dcv\n",
       "/.well-known/acme-challenge/token-abc": "acme-token-for-bob.test\n"}


def test_f10_autossl_dcv_files_are_served_behind_the_landing_page(host, agent) -> None:
    """F10: AutoSSL's local DCV check and Sectigo's file validation fetch
    /.well-known/cpanel-dcv/<token> and /.well-known/pki-validation/<hex>.txt
    (Cpanel/SSL/Auto/Run/DCV.pm, Cpanel/SSL/Providers/Sectigo.pm:41-46); those existing files
    stay served, as static text even under a customer's handler, while all else is 503."""
    docroot = host.path("/home/bob/public_html")
    made = []
    for path, body in DCV.items():
        file = docroot / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        if not file.exists():
            file.write_text(body)
            made.append(file)
    handler = docroot / ".well-known/pki-validation/.htaccess"
    handler.write_text("SetHandler server-status\n")
    other = docroot / ".well-known/pki-validation/page.html"
    other.write_text("<h1>not a validation file</h1>\n")
    made += [handler, other]
    try:
        rc, _reply, out = agent("suspend", host.name, "bob", "--playbook", "web-now")
        assert rc == 0, out
        for scheme in ("http", "https"):
            for path, body in DCV.items():
                resp = calls.web(host, "bob.test", scheme, path)
                assert (resp.status_code, resp.text) == (200, body), (scheme, path)
                assert resp.headers["Content-Type"].startswith("text/plain")
            for path in ("/.well-known/pki-validation/page.html", "/.well-known/cpanel-dcv/x",
                         "/.well-known/pki-validation/", "/"):
                assert calls.web(host, "bob.test", scheme, path).status_code == 503, path
        rc, _reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
    finally:
        for file in made:
            file.unlink()


def _userdata(host, user: str, name: str) -> object:
    return host.path(f"/var/cpanel/userdata/{user}/{name}")


def _rebuild(host) -> None:
    calls.script(host, "rebuildhttpdconf")
    calls.script(host, "restartsrv_httpd")


def test_f3_a_force_https_domain_is_behind_the_landing_page(host, agent) -> None:
    """F3: with "Force HTTPS Redirect" the HTTP vhost answers 301 to HTTPS before any include
    (ea-apache2-config vhost.default:4-18); that domain counts as behind the landing page
    when HTTPS shows it, so landing_page applies instead of failing verify."""
    vhost = _userdata(host, "bob", "bob.test")
    original = vhost.read_text()
    vhost.write_text(original + "ssl_redirect: 1\n")
    try:
        _rebuild(host)
        assert calls.web(host, "bob.test").status_code == 301
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "web-now")
        assert rc == 0, out
        moved = calls.web(host, "bob.test", "http", "/some/page")
        assert (moved.status_code, moved.headers["Location"]) == (
            301, "https://bob.test/some/page")
        assert calls.web(host, "bob.test", "https", "/some/page").status_code == 503
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert calls.web(host, "bob.test", "https").status_code == 200
    finally:
        vhost.write_text(original)
        _rebuild(host)


def test_f8_an_account_with_a_wildcard_subdomain_is_behind_the_landing_page(host, agent):
    """F8: wildcard subdomains are ordinary sub_domains named `*.domain` (Cpanel/Sub.pm,
    Cpanel/WildcardDomain.pm); the account is not refused, and any name under the wildcard
    answers the landing page."""
    main = _userdata(host, "bob", "main")
    original = main.read_text()
    assert "sub_domains: []\n" in original
    main.write_text(original.replace("sub_domains: []\n", "sub_domains:\n  - \"*.bob.test\"\n"))
    docroot = host.path("/home/bob/public_html/any")
    docroot.mkdir()
    (docroot / "index.html").write_text("wildcard site\n")
    files = []
    for suffix in ("", "_SSL"):
        file = _userdata(host, "bob", f"_wildcard_.bob.test{suffix}")
        file.write_text("---\nservername: \"*.bob.test\"\nserveralias: \"*.bob.test\"\n"
                        "documentroot: /home/bob/public_html/any\nhomedir: /home/bob\n"
                        "user: bob\ngroup: bob\nowner: root\n"
                        f"ip: {host.address}\nusecanonicalname: Off\n")
        files.append(file)
    try:
        _rebuild(host)
        assert calls.web(host, "shop.bob.test").text == "wildcard site\n"
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "web-now")
        assert rc == 0, out
        for name in ("shop.bob.test", "x1.bob.test"):
            for scheme in ("http", "https"):
                assert calls.web(host, name, scheme).status_code == 503, (name, scheme)
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert calls.web(host, "shop.bob.test").text == "wildcard site\n"
    finally:
        main.write_text(original)
        for file in files:
            file.unlink()
        (docroot / "index.html").unlink()
        docroot.rmdir()
        _rebuild(host)


def test_f7_includes_kept_under_std_2_stay_in_effect(host, agent) -> None:
    """F7: every vhost includes from the first existing of std/2_4/ and std/2/
    (ea-apache2-config vhost.default:188-195); on a server whose includes live under std/2/,
    landing_page writes there and never makes std/2_4/, so alice's own include stays in
    effect while bob is suspended, and `check` names the base."""
    base = host.path("/etc/apache2/conf.d/userdata")
    for kind in ("std", "ssl"):
        (base / kind / "2_4").rmdir()  # provisioned empty, as a fresh EA4 has it
    made = [base / kind / "2" / "alice" for kind in ("std", "ssl")]
    for folder in made:
        folder.mkdir(parents=True)
        (folder / "admin.conf").write_text('Header always set X-Admin-Include "alice"\n')
    try:
        _rebuild(host)
        assert calls.web(host, "alice.test").headers.get("X-Admin-Include") == "alice"
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "web-now")
        assert rc == 0, out
        assert calls.web(host, "bob.test").status_code == 503
        for scheme in ("http", "https"):
            resp = calls.web(host, "alice.test", scheme)
            assert (resp.status_code, resp.headers.get("X-Admin-Include")) == (200, "alice")
        assert not (base / "std" / "2_4").exists() and not (base / "ssl" / "2_4").exists()
        rc, reply, out = agent("check", host.name)
        assert "userdata/{std,ssl}/2/" in out, out
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert sorted(p.name for p in (base / "std" / "2").iterdir()) == ["alice"]
    finally:
        for folder in made:
            (folder / "admin.conf").unlink(missing_ok=True)
        for kind in ("std", "ssl"):
            for version in ("2", "2_4"):
                top = base / kind / version
                for child in sorted(top.rglob("*"), reverse=True) if top.exists() else []:
                    child.rmdir() if child.is_dir() else child.unlink()
                if top.exists():
                    top.rmdir()
            (base / kind / "2_4").mkdir(mode=0o755)
        _rebuild(host)


def _ftp(host) -> dict:
    return {
        "main": clients.ftp_login(host, "alice", "alice-pass-1"),
        "logs": clients.ftp_login(host, "alice_logs", "alice-pass-1"),
        "sub": clients.ftp_login(host, "ftpuser@alice.test", "ftp-pass-1"),
    }


def test_f1_ftp_lock_holds_through_ftpupdate_and_comes_back_exactly(host, agent,
                                                                    tmp_path) -> None:
    """F1: ftpupdate rebuilds /etc/proftpd/USER, the main and _logs lines from the system
    password entry (bin/ftpupdate:128-333): ftp_lock's locks survive it (run by the step and
    again by cPanel at any time), every FTP login of the account is refused, then all come
    back, the files byte-identical; a second suspend changes nothing."""
    (tmp_path / "playbooks" / "ftp-now.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, ftp_lock]\n")
    before = snapshot(host)
    assert set(_ftp(host).values()) == {"ok"}
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "ftp-now")
    assert rc == 0, out
    assert "ok" not in _ftp(host).values(), _ftp(host)
    locked = snapshot(host)
    calls.script(host, "ftpupdate")
    assert "ok" not in _ftp(host).values(), _ftp(host)
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "ftp-now")
    assert rc == 0, out
    assert snapshot(host) == locked
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert set(_ftp(host).values()) == {"ok"}
    assert snapshot(host) == before


START = 2_000_000_000.0
DAY = 86400.0
BOXES = {"bob@bob.test": "bob-mail-1"}


def _imap(host) -> dict:
    return {box: clients.imap_login(host, box, password) for box, password in BOXES.items()}


def test_f4_someone_elses_suspension_never_costs_a_mailbox_its_password(host, agent,
                                                                        tmp_path) -> None:
    """F4: list_pops is blind during suspendacct's `*LOCKED*` (Cpanel/Email/Accounts.pm:368),
    and suspend_login would put `!!` in front of it, which unsuspendacct then keeps
    (scripts/unsuspendacct:467-470): so mail_block is not applied while someone else's full
    suspension is on, and says why; once it is lifted, the next tick applies it, and after
    our case is lifted every mailbox logs in with its old password."""
    (tmp_path / "playbooks" / "web-then-mail.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, landing_page]\n"
        "  - after: 1d\n    steps: [mail_block]\n")
    agent.now = START
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "web-then-mail")
    assert rc == 0, out
    calls.whmapi1(host, "suspendacct", user="bob", reason="WHMCS: Overdue on Payment")
    agent.now = START + DAY + 60
    rc, reply, out = agent("tick")
    assert rc != 0, out
    assert "WHMCS: Overdue on Payment" in out and "mail_block" in out, out
    rc, reply, out = agent("status", host.name, "bob")
    assert "mail_block" not in [a["step"] for a in reply["applied"]], out
    calls.whmapi1(host, "unsuspendacct", user="bob")
    assert set(_imap(host).values()) == {"ok"}
    agent.now = START + DAY + 120
    rc, reply, out = agent("tick")
    assert rc == 0, out
    assert "ok" not in _imap(host).values()
    rc, reply, out = agent("unsuspend", host.name, "bob")
    assert rc == 0, out
    assert set(_imap(host).values()) == {"ok"}


def test_f4_a_suspension_placed_after_mail_block_leaves_its_revert_stuck_not_silent(
        host, agent, tmp_path) -> None:
    """F4: someone else's suspendacct after mail_block hides the mailbox locks from
    list_pops; lifting the case then must not pass for done while the locks wait under
    `*LOCKED*`: the revert is stuck (exit 3) and names the suspension; once that is lifted,
    unsuspend finishes and every mailbox logs in with its old password."""
    (tmp_path / "playbooks" / "mail-now.yaml").write_text(
        "stages:\n  - after: 0s\n    steps: [backup, mail_block]\n")
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "mail-now")
    assert rc == 0, out
    assert "ok" not in _imap(host).values()
    calls.whmapi1(host, "suspendacct", user="bob", reason="admin: abuse report")
    rc, reply, out = agent("unsuspend", host.name, "bob")
    assert rc == 3, out
    assert "admin: abuse report" in out, out
    calls.whmapi1(host, "unsuspendacct", user="bob")
    rc, reply, out = agent("unsuspend", host.name, "bob")
    assert rc == 0, out
    assert set(_imap(host).values()) == {"ok"}


def _db_locks(host, *names: str) -> dict:
    sql = ("SELECT User, JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv "
           f"WHERE User IN ({', '.join(repr(n) for n in names)}) ORDER BY 1;")
    out = host.run(["mysql", "--batch", "--skip-column-names", "-e", sql]).stdout.decode()
    return {name: value in ("1", "true") for name, value in
            (line.split("\t") for line in out.splitlines())}


def test_f2_without_prefixing_the_panels_own_database_users_are_locked(host, agent) -> None:
    """F2: with the Tweak Setting database_prefix off, Mysql::get_restrictions answers
    prefix null (Cpanel/API/Mysql.pm:82-99) and the account's users are whatever its DB map
    holds: db_lock locks them instead of refusing the account."""
    host.run(["mysql", "-e", "CREATE USER 'shopdb'@'localhost' IDENTIFIED BY 'shop-db-2';"])
    config = host.path("/var/cpanel/cpanel.config")
    maps = host.path("/var/cpanel/databases")
    maps.mkdir(exist_ok=True)
    (maps / "bob.json").write_text(json.dumps({"version": 1, "MYSQL": {
        "owner": "bob", "dbs": {"bob_wp": "localhost"},
        "dbusers": {"shopdb": {"dbs": {}}, "bob_wp": {"dbs": {"bob_wp": "localhost"}}}}}))
    config.write_text("database_prefix=0\n")
    try:
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
        assert rc == 0, out
        assert _db_locks(host, "shopdb", "bob_wp", "bob") == {
            "bob": True, "bob_wp": True, "shopdb": True}
        assert clients.mysql_login(host, "shopdb", "shop-db-2") != "ok"
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert clients.mysql_login(host, "shopdb", "shop-db-2") == "ok"
    finally:
        config.unlink()
        (maps / "bob.json").unlink()
        host.run(["mysql", "-e", "DROP USER 'shopdb'@'localhost';"])


def test_f6_the_documented_token_works_for_every_step_and_check_names_a_missing_acl(
        cp, host, tmp_path) -> None:
    """F6: UAPI through WHM needs `cpanel-api`; version, myprivs and listsuspended are gated
    on basic-system-info, basic-whm-functions and suspend-acct (Whostmgr/XMLUI/Meta.pm):
    the token docs/cpanel.md documents runs `immediate` and back over the WHM API, and
    `check` with a token lacking one of them names it."""
    from tests.hosts.cpanel import services
    from tests.hosts.cpanel.agent import certificate_for

    certificate_for(host, cp[1])  # the API transport checks the certificate's name
    acls = ("acct-summary", "suspend-acct", "cpanel-api", "basic-system-info",
            "basic-whm-functions")
    least = make_agent(host, tmp_path / "least", "api",
                       services.create_token(host, "root", "least", acls))
    rc, reply, out = least("check", host.name)
    assert rc == 0 and "missing" not in out, out
    rc, reply, out = least("suspend", host.name, "bob", "--playbook", "immediate")
    assert rc == 0, out
    assert calls.web(host, "bob.test").status_code == 503
    rc, reply, out = least("unsuspend", host.name, "bob")
    assert rc == 0, out
    for gone in ("cpanel-api", "basic-system-info", "basic-whm-functions"):
        short = make_agent(host, tmp_path / gone, "api", services.create_token(
            host, "root", f"no-{gone}", tuple(a for a in acls if a != gone)))
        rc, reply, out = short("check", host.name)
        assert rc != 0 and gone in out, out


def test_f13_a_cpanel_session_s_phpmyadmin_user_is_locked_too(host, agent) -> None:
    """F13: cPanel's temporary phpMyAdmin users (cpses_*) are in the account's database map
    but not in Mysql::list_users (Cpanel/DB/Map/Reader.pm:214-233); db_lock locks them as
    suspendmysqlusers does, so a cPanel session open before the lock loses the databases."""
    session = "cpses_bo4f2a9c1e"
    host.run(["mysql"], input=(
        f"CREATE USER '{session}'@'localhost' IDENTIFIED BY 'pma-1';"
        f"GRANT ALL PRIVILEGES ON bob_wp.* TO '{session}'@'localhost';").encode())
    maps = host.path("/var/cpanel/databases")
    maps.mkdir(exist_ok=True)
    (maps / "bob.json").write_text(json.dumps({"version": 1, "MYSQL": {
        "owner": "bob", "dbs": {"bob_wp": "localhost"},
        "dbusers": {"bob_wp": {"dbs": {"bob_wp": "localhost"}}, session: {"dbs": {}}}}}))
    try:
        assert clients.mysql_login(host, session, "pma-1") == "ok"
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
        assert rc == 0, out
        assert clients.mysql_login(host, session, "pma-1") != "ok"
        assert clients.mysql_login(host, "bob_wp", "bob-db-1") != "ok"
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert clients.mysql_login(host, session, "pma-1") == "ok"
        assert _db_locks(host, session, "bob_wp", "bob") == {
            session: False, "bob_wp": False, "bob": False}
    finally:
        (maps / "bob.json").unlink()
        host.run(["mysql", "-e", f"DROP USER '{session}'@'localhost';"])


def test_f11_the_bandwidth_limit_during_our_suspension_does_not_keep_it(host, agent) -> None:
    """F11: accountsummary's `suspended` and reason come from the hash and the bandwidth
    limit, whose text replaces the reason file (Whostmgr/Accounts/Suspended.pm:70-79): an
    account over its limit while our suspendacct is on is still lifted from it (the reason
    is read from /var/cpanel/suspended/USER), not left suspended with the case closed."""
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "final")
    assert rc == 0, out
    host.path("/var/cpanel/bwlimited/bob").write_text("")
    try:
        shown = calls.whmapi1(host, "accountsummary", user="bob")["data"]["acct"][0]
        assert shown["suspendreason"].startswith("Bandwidth Limit Exceeded")
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert not host.path("/var/cpanel/suspended/bob").exists()
        hashed = next(line.split(":")[1] for line in
                      host.path("/etc/shadow").read_text().splitlines()
                      if line.startswith("bob:"))
        assert not hashed.startswith("!")
    finally:
        host.path("/var/cpanel/bwlimited/bob").unlink(missing_ok=True)


LONG = "longcustomer2026"  # 16 characters, the longest cPanel allows (panels.md A13)


def test_f2_the_longest_account_name_and_its_real_prefix_go_through_immediate_and_back(
        host, agent) -> None:
    """F2: on MariaDB the prefix is up to 16 characters of the name (Cpanel/DB/Prefix.pm,
    Cpanel/Database/MariaDB.pm:25), not 8: an account of 16 characters with databases and
    users under `longcustomer2026_` goes through `immediate` and back, byte-identical. (The
    account stays on this module's host, which is torn down after the module.)"""
    from tests.hosts.cpanel import resellers

    resellers.add_accounts(host, [resellers.account(LONG, "root")])
    db, user = f"{LONG}_shop", f"{LONG}_app"
    host.run(["mysql"], input=(
        f"CREATE DATABASE {db}; CREATE USER '{user}'@'localhost' IDENTIFIED BY 'app-db-1';"
        f"GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'localhost';").encode())
    folders = (f"/home/{LONG}/public_html", f"/home/{LONG}/etc", "/etc/proftpd",
               "/var/cpanel/users", "/var/cpanel/userdata", "/etc/apache2/conf.d/userdata")
    before = tree_state(host, *folders)
    assert clients.mysql_login(host, user, "app-db-1") == "ok"
    rc, reply, out = agent("suspend", host.name, LONG, "--playbook", "immediate")
    assert rc == 0, out
    assert _db_locks(host, user, LONG) == {user: True, LONG: True}
    assert clients.mysql_login(host, user, "app-db-1") != "ok"
    assert calls.web(host, f"{LONG}.test").status_code == 503
    rc, reply, out = agent("unsuspend", host.name, LONG)
    assert rc == 0, out
    assert _db_locks(host, user, LONG) == {user: False, LONG: False}
    assert clients.mysql_login(host, user, "app-db-1") == "ok"
    assert tree_state(host, *folders) == before


def test_f9_an_ssh_key_no_longer_logs_in_or_forwards_ports_behind_panel_lock(host, agent):
    """F9: with the hash locked and the shell noshell, sshd (UsePAM yes) still takes the
    account's SSH key and forwards ports. panel_lock now puts the account in cPanel's deny
    group, as suspendacct does (Whostmgr/Accounts/Suspension/SSH.pm; sshd_config's
    `DenyGroups cpaneldemo cpanelsuspended` from install/SSHD.pm), and takes it out again."""
    from tests.hosts import logins

    key = logins.install_key(host, "bob")
    try:
        before = snapshot(host)
        assert clients.ssh_key_forward(host, "bob", key) == "forwarded"
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
        assert rc == 0, out
        assert clients.ssh_key_forward(host, "bob", key).startswith("auth failed")
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert clients.ssh_key_forward(host, "bob", key) == "forwarded"
        assert snapshot(host) == before
        # Without the deny line in sshd's configuration, panel_lock refuses and changes
        # nothing (the rest of the stage is rolled back with it).
        conf = host.path("/etc/ssh/sshd_config.d/00-cpanel.conf")
        conf.write_text("# DenyGroups left out\n")
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
        assert rc != 0 and "does not deny the group cpanelsuspended" in out, out
        assert clients.ssh_key_forward(host, "bob", key) == "forwarded"
    finally:
        host.path("/etc/ssh/sshd_config.d/00-cpanel.conf").write_text(
            "DenyGroups cpaneldemo cpanelsuspended\n")
        agent("unsuspend", host.name, "bob")
        host.run(["rm", "-rf", "/home/bob/.ssh"])


def test_f16_on_mariadb_suspendacct_keeps_db_lock_and_every_password(host, agent) -> None:
    """F16: on MariaDB, (un)suspendmysqlusers reverse the stored hash behind a `-` and back
    and leave ACCOUNT LOCK alone (scripts/suspendmysqlusers:74-117,
    unsuspendmysqlusers:116-172), which suspendacct and unsuspendacct run. Run by someone
    else while db_lock is on: db_lock's lock holds all the while, and after our unsuspend
    every database user logs in with its old password and has its old hash."""
    users = {"alice_shop": "shop-db-1"}
    hashes = {u: calls.db_hash(host, u) for u in users}
    assert all(h.startswith("*") for h in hashes.values()), hashes
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    assert calls.script(host, "suspendmysqlusers", "alice")[0] == 0
    mangled = calls.db_hash(host, "alice_shop")
    assert mangled == "-" + hashes["alice_shop"][1:][::-1]
    assert calls.script(host, "unsuspendmysqlusers", "alice")[0] == 0
    assert calls.db_hash(host, "alice_shop") == hashes["alice_shop"]
    assert _db_locks(host, "alice_shop", "alice")["alice_shop"] is True  # db_lock held
    assert clients.mysql_login(host, "alice_shop", "shop-db-1") != "ok"
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert {u: calls.db_hash(host, u) for u in users} == hashes
    assert clients.mysql_login(host, "alice_shop", "shop-db-1") == "ok"


def _team_line(host, name: str, password: str, roles: str, suspend: str = "") -> str:
    from tests.hosts import hostfs

    hashed = hostfs.sha512_crypt(host, [password])[0]
    locked = "!!" if suspend else ""
    return f"{name}::{roles}:{locked}{hashed}:1700000000:{name}@bob.test::en:{suspend}:\n"


def test_f9_team_users_are_locked_and_come_back_as_they_were(host, agent) -> None:
    """F9: team users log in to the owner's cPanel (port 2083, NAME@DOMAIN) with their own
    passwords, and a database role keeps their MySQL user OWNER_NAME open. panel_lock
    suspends each open one (Team::suspend_team_user: `!!`, a date, its MySQL user locked);
    the reversal reinstates only those, and locks the MySQL user again of one without a
    database role (reinstate_team_user unlocks it whatever the roles). One the owner had
    suspended stays suspended. Checked from outside: cPanel logins and MySQL logins."""
    team = host.path("/var/cpanel/team/bob")
    db_users = {"bob_helper": "helper-db-1", "bob_dba": "dba-db-1"}
    try:
        team.parent.mkdir(exist_ok=True)
        team.write_text("bob 1.4\n" + _team_line(host, "helper", "helper-pw-1", "email")
                        + _team_line(host, "dba", "dba-pw-1", "database")
                        + _team_line(host, "off", "off-pw-1", "web", "1700000500,on leave"))
        host.run(["mysql", "-e", "".join(f"CREATE USER '{u}'@'localhost' IDENTIFIED BY '{p}';"
                                         for u, p in db_users.items())])
        assert calls.script(host, "suspendmysqlusers", "bob_helper", "1")[0] == 0
        listed = calls.uapi(host, "bob", "Team", "list_team")["result"]["data"]
        logins = {"helper@bob.test": "helper-pw-1", "dba@bob.test": "dba-pw-1",
                  "off@bob.test": "off-pw-1", "bob": "bob-pass-1"}

        def can_log_in() -> dict[str, bool]:
            out = {u: calls.cpanel_login(host, u, p) == "ok" for u, p in logins.items()}
            out.update({u: clients.mysql_login(host, u, p) == "ok" for u, p in db_users.items()})
            return out

        before = can_log_in()
        assert before == {"helper@bob.test": True, "dba@bob.test": True, "off@bob.test": False,
                          "bob": True, "bob_helper": False, "bob_dba": True}, before
        rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
        assert rc == 0, out
        assert not any(can_log_in().values())
        rc, reply, out = agent("unsuspend", host.name, "bob")
        assert rc == 0, out
        assert can_log_in() == before
        # The same records (cPanel writes `,` into empty suspend and expiry fields).
        assert calls.uapi(host, "bob", "Team", "list_team")["result"]["data"] == listed
    finally:
        team.unlink(missing_ok=True)
        host.run(["mysql", "-e", "".join(f"DROP USER IF EXISTS '{u}'@'localhost';"
                                         for u in db_users)])


WEBDISK = "/home/bob/etc/webdav/shadow"


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@pytest.fixture
def webdisk(host):
    """bob's Web Disk login disk@bob.test (crypt and Digest hashes) and bob's own Digest
    entry in /etc/digestshadow; both files taken away after."""
    from tests.hosts import hostfs

    owner = hostfs.user_ids(host, "bob")
    hashed = hostfs.sha512_crypt(host, ["disk-pw-1"])[0]
    hostfs.make_dirs(host, "/home/bob/etc/webdav", 0o750, owner)
    hostfs.write(host, WEBDISK, f"disk@bob.test:{hashed}:19000::::::"
                 f"{_md5('disk@bob.test:cPanel:disk-pw-1')}\n", mode=0o600, owner=owner)
    hostfs.write(host, "/etc/digestshadow", f"alice:{_md5('alice:cPanel:x')}\n"
                 f"bob:{_md5('bob:cPanel:bob-pass-1')}\n", mode=0o640)
    yield
    host.run(["rm", "-rf", "/home/bob/etc/webdav", "/etc/digestshadow"])


def _webdisk_logins(host) -> dict[str, bool]:
    return {f"{login} {'digest' if digest else 'basic'}":
            calls.webdisk_login(host, login, password, digest) == "ok"
            for login, password in (("disk@bob.test", "disk-pw-1"), ("bob", "bob-pass-1"))
            for digest in (False, True)}


def _files(host) -> dict[str, tuple]:
    out = {}
    for path in (WEBDISK, "/etc/digestshadow", "/etc/shadow"):
        st = host.path(path).lstat()
        out[path] = (host.path(path).read_bytes(), st.st_mode, st.st_uid, st.st_gid)
    return out


def test_f9_web_disk_logins_are_locked_and_come_back_byte_for_byte(host, agent, webdisk
                                                                    ) -> None:
    """F9: Web Disk (WebDAV on 2078) lets in the account's Web Disk logins by their crypt
    hash (Basic) or their Digest hash, and the account itself by Digest through
    /etc/digestshadow, none of which goes through the system hash. ftp_lock locks all of
    them; the reversal gives back both files byte for byte. Checked from outside, as a
    WebDAV client."""
    before = _files(host)
    assert all(_webdisk_logins(host).values()), _webdisk_logins(host)
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
    assert rc == 0, out
    assert not any(_webdisk_logins(host).values()), _webdisk_logins(host)
    rc, reply, out = agent("unsuspend", host.name, "bob")
    assert rc == 0, out
    assert all(_webdisk_logins(host).values()), _webdisk_logins(host)
    assert _files(host) == before


def test_f9_web_disk_survives_someone_elses_suspendacct_in_between(host, agent, webdisk
                                                                   ) -> None:
    """F9: an admin's suspendacct while ftp_lock is on puts `*LOCKED*` before our `!`, and
    the admin's unsuspendacct strips every `*LOCKED*` but not our `!`: the Web Disk logins
    stay locked until our unsuspend, and then come back with the files as they were. (Our
    unsuspend waits while the admin's suspension is on, F4; the other order is in
    tests/fast/test_cpanel_webdisk.py.)"""
    before = _files(host)
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
    assert rc == 0, out
    # panel_lock has locked the hash, so suspendacct needs --force (A7), as an admin learns.
    assert calls.script(host, "suspendacct", "--force", "bob", "admin")[0] == 0
    assert b"*LOCKED*!" in host.path(WEBDISK).read_bytes()
    assert calls.script(host, "unsuspendacct", "bob")[0] == 0
    # The Web Disk locks hold. (unsuspendacct strips every leading `!` of the system hash,
    # scripts/unsuspendacct:242, so bob's own password login is back: not Web Disk's part.)
    still = _webdisk_logins(host)
    assert not any(v for k, v in still.items() if k != "bob basic"), still
    rc, reply, out = agent("unsuspend", host.name, "bob")
    assert rc == 0, out
    assert all(_webdisk_logins(host).values()), _webdisk_logins(host)
    assert {p: v[0] for p, v in _files(host).items() if p != "/etc/shadow"} == {
        p: v[0] for p, v in before.items() if p != "/etc/shadow"}


def test_f9_a_web_disk_file_linked_to_roots_shadow_is_never_read_or_written(host, agent,
                                                                           webdisk) -> None:
    """F9, a hostile customer: ~/etc/webdav/shadow as a link to /etc/shadow. The agent reads
    and writes that file only as the customer, so root's file is neither shown nor changed;
    the plan says the Web Disk logins could not be read, and the case still goes through."""
    host.path(WEBDISK).unlink()
    host.path(WEBDISK).symlink_to("/etc/shadow")
    rc, reply, out = agent("plan", host.name, "bob", "--playbook", "immediate")
    assert rc == 0, out
    assert "Web Disk logins of bob could not be read" in out and "root:" not in out, out
    shadow = host.path("/etc/shadow").read_bytes()
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
    assert rc == 0, out
    assert b"bob:!" in host.path("/etc/shadow").read_bytes()  # panel_lock's own lock
    rc, reply, out = agent("unsuspend", host.name, "bob")
    assert rc == 0, out
    assert host.path("/etc/shadow").read_bytes() == shadow
    assert host.path(WEBDISK).is_symlink()


def test_f17_ftp_lock_edits_the_ftp_file_only_under_cpanels_own_lock(cp, host, tmp_path
                                                                      ) -> None:
    """F17: cPanel edits /etc/proftpd/USER holding USER.lock (its pid, linked into place)
    and flock (Cpanel/SafeFile.pm). While a live process of cPanel's holds it, ftp_lock
    waits `cpanel.safefile_wait` seconds and gives up with the holder named, the file and
    the lock untouched; once it is released, the suspension goes through and leaves no lock
    behind, and the round trip gives the file back byte for byte."""
    import subprocess

    path = "/etc/proftpd/alice"
    agent = make_agent(host, tmp_path, "cli", cp[1].root_token, safefile_wait="2")
    before = snapshot(host)
    original = host.path(path).read_bytes()
    lock = host.path(f"{path}.lock")
    holder = subprocess.Popen(["ip", "netns", "exec", host.netns, "chroot", str(host.root),
                               "sleep", "300"], stdin=subprocess.DEVNULL)
    try:
        lock.write_text(f"{holder.pid}\nftpupdate\n{path}\n")
        rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
        assert rc != 0 and "is locked by another process" in out, out
        assert str(holder.pid) in out
        assert host.path(path).read_bytes() == original
        assert lock.read_text().startswith(f"{holder.pid}\n")
    finally:
        holder.kill()
        holder.wait()
        lock.unlink(missing_ok=True)
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "immediate")
    assert rc == 0, out
    assert not lock.exists()
    assert clients.ftp_login(host, "ftpuser@alice.test", "ftp-pass-1") != "ok"
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert host.path(path).read_bytes() == original
    assert snapshot(host) == before


def test_f4_locks_an_admins_unsuspendacct_lifted_are_reported_and_put_back(host, agent
                                                                            ) -> None:
    """F4's "the reply never claims a lock that is not in place": an admin's
    `suspendacct --force` then `unsuspendacct` while our case is on strips every leading
    `!` of the hash (scripts/unsuspendacct:242-243) and takes the account out of the SSH
    deny group, so bob's password logs in to cPanel again. `status` says which steps are
    not in effect, the next `tick` puts them back (checked from outside), and the round
    trip ends byte-identical."""
    before = snapshot(host)
    rc, reply, out = agent("suspend", host.name, "bob", "--playbook", "immediate")
    assert rc == 0, out
    assert calls.cpanel_login(host, "bob", "bob-pass-1") != "ok"
    assert calls.script(host, "suspendacct", "--force", "bob", "admin")[0] == 0
    assert calls.script(host, "unsuspendacct", "bob")[0] == 0
    assert calls.cpanel_login(host, "bob", "bob-pass-1") == "ok"  # the gap
    rc, reply, out = agent("status", host.name, "bob")
    drift = " ".join(reply.get("warnings", []))
    assert "panel_lock: not in effect as planned" in drift, out
    assert "ftp_lock: not in effect as planned" in drift, out
    rc, reply, out = agent("tick")
    assert rc == 0, out
    assert calls.cpanel_login(host, "bob", "bob-pass-1") != "ok"
    assert clients.ssh_password_login(host, "bob", "bob-pass-1") != "ok"
    rc, reply, out = agent("status", host.name, "bob")
    assert not [w for w in reply.get("warnings", []) if "not in effect" in w], out
    rc, reply, out = agent("unsuspend", host.name, "bob")
    assert rc == 0, out
    assert calls.cpanel_login(host, "bob", "bob-pass-1") == "ok"
    assert snapshot(host) == before
