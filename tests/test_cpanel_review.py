"""The cPanel review's findings (../shared/reference/cpanel-review.md, issue 16), one test
each, against a simulator that now behaves as real cPanel does there (each behaviour cites
its source in tests/hosts/cpanel/sim/). Each test says which finding it covers; each was run
against the driver as it was before its fix and failed there (the note of issue 16 says how).
"""

from __future__ import annotations

import pytest

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
