"""cPanel with EA4's ea-nginx in front of Apache and its default cache (review F5): real
NGINX on 80 and 443 caching every user's pages as the package ships it (cache.json), Apache
behind it on 81 and 444 (tests/hosts/cpanel/ea_nginx.py, sim/nginx.py). Checked as a visitor
sees it, through NGINX."""

from __future__ import annotations

import pytest

from tests.hosts.cpanel import calls, ea_nginx
from tests.hosts.cpanel.agent import make_agent, snapshot

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-nginx")]

USER_CACHE = "/var/cpanel/userdata/alice/nginx-cache.json"
PAGES = [(name, scheme, path) for name in ("alice.test", "alice-addon.test")
         for scheme in ("http", "https") for path in ("/", "/prices.html")]


@pytest.fixture(scope="module")
def cp():
    for host, cpanel in calls.running_host(offset=37):
        ea_nginx.enable(host)
        yield host, cpanel


@pytest.fixture
def host(cp):
    pages = {_docroot(cp[0], n) / "index.html": None for n in ("alice.test", "alice-addon.test")}
    for path in pages:
        pages[path] = path.read_text()
    yield cp[0]
    for path, text in pages.items():
        path.write_text(text)
        (path.parent / "prices.html").unlink(missing_ok=True)
    calls.reset(cp[0])
    cp[0].path(USER_CACHE).unlink(missing_ok=True)
    cp[0].path("/etc/nginx/ea-nginx/enable.standalone").unlink(missing_ok=True)
    cp[0].run([ea_nginx.EA_NGINX, "config", "alice"])


@pytest.fixture
def agent(cp, host, tmp_path):
    return make_agent(host, tmp_path, "cli", cp[1].root_token)


def _docroot(host, name: str):
    return host.path("/home/alice/public_html" if name == "alice.test"
                     else "/home/alice/alice-addon.test")


def _cache_pages(host) -> dict:
    """Write a page on both sites, have NGINX cache it and the home page, then change both
    on disk: what NGINX answers from then on is its cached copy. Returns what it cached."""
    cached = {}
    for name in ("alice.test", "alice-addon.test"):
        (_docroot(host, name) / "prices.html").write_text(f"prices of {name}\n")
    for page in PAGES:
        assert calls.web(host, page[0], page[1], page[2]).status_code == 200
    for name in ("alice.test", "alice-addon.test"):
        for file in ("index.html", "prices.html"):
            path = _docroot(host, name) / file
            path.write_text(path.read_text().replace("</h1>", " (new)</h1>") + "new\n")
    for page in PAGES:
        reply = calls.web(host, *page)
        assert "new" not in reply.text, f"{page} is not served from NGINX's cache"
        cached[page] = reply.text
    return cached


def test_f5_no_cached_page_is_served_behind_the_landing_page(host, agent) -> None:
    """F5: ea-nginx keeps serving cached pages (fresh for 60 minutes, then stale on 503:
    cache.json, server.conf.tt:99-128). With the landing page on, the home page and a page
    fetched before the suspension answer the landing page over HTTP and HTTPS; lifted, the
    sites answer as they are now (not a cached copy) and every file is as before."""
    _cache_pages(host)
    assert host.path("/var/cache/ea-nginx/proxy/alice").exists()
    before = snapshot(host)
    rc, reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    for page in PAGES:
        seen = calls.web(host, *page)
        assert seen.status_code == 503, (page, seen.status_code, seen.text[:200])
        assert "prices" not in seen.text and "site of alice" not in seen.text
    assert b'"enabled" : false' in host.path(USER_CACHE).read_bytes()
    assert "proxy_cache_path" not in host.path("/etc/nginx/conf.d/users/alice.conf").read_text()
    rc, reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    for page in PAGES:
        seen = calls.web(host, *page)
        assert seen.status_code == 200 and "new" in seen.text, (page, seen.text[:200])
    assert not host.path(USER_CACHE).exists()
    assert snapshot(host) == before


def test_f5_the_accounts_own_cache_setting_comes_back_byte_for_byte(host, agent) -> None:
    """F5: an account with a caching file of its own (as `ea-nginx cache USER` leaves it, and
    with a key ea-nginx keeps) gets it back exactly; a second suspend changes nothing."""
    own = b'{\n   "enabled" : true,\n   "x_cache_header" : true\n}\n'
    host.path(USER_CACHE).write_bytes(own)
    host.run([ea_nginx.EA_NGINX, "config", "alice"])
    _cache_pages(host)
    before = snapshot(host)
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    assert host.path(USER_CACHE).read_bytes() == (
        b'{\n   "enabled" : false,\n   "x_cache_header" : true\n}\n')
    during = snapshot(host)
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    assert snapshot(host) == during
    assert calls.web(host, "alice.test", "https", "/prices.html").status_code == 503
    rc, _reply, out = agent("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert host.path(USER_CACHE).read_bytes() == own
    assert snapshot(host) == before


def test_f5_standalone_nginx_is_refused_and_nothing_changes(host, agent) -> None:
    """F5: with `enable.standalone` NGINX serves the sites itself, no Apache behind it: the
    landing include could not act, so landing_page refuses before changing anything."""
    host.path("/etc/nginx/ea-nginx/enable.standalone").write_text("")
    before = snapshot(host)
    rc, _reply, out = agent("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc != 0
    assert "standalone" in out
    assert snapshot(host) == before


def test_check_reports_ea_nginx_and_refuses_landing_page_when_standalone(host, agent) -> None:
    """Issue 16 item 3: `check` names ea-nginx and its cache, and says landing_page cannot
    run when NGINX serves the sites standalone."""
    rc, reply, out = agent("check", host.name)
    assert rc == 0, out
    lines = reply["servers"][0]["lines"]
    assert any(line.startswith("ea-nginx in front of Apache, caching on by default")
               for line in lines), lines
    host.path("/etc/nginx/ea-nginx/enable.standalone").write_text("")
    rc, reply, out = agent("check", host.name)
    assert rc != 0
    assert ("step landing_page: NOT available: ea-nginx serves the sites standalone"
            in reply["servers"][0]["lines"]), out
