"""While suspended, the only thing served besides the landing page is a static file that
exists in the docroot's /.well-known/acme-challenge/ (issue 9, item 1): a customer's
.htaccess cannot turn the exemption into a way around the landing page."""

from __future__ import annotations

import pytest

from agent.config.servers import Server
from agent.steps.probes import fetch, looks_suspended

pytestmark = pytest.mark.testhost

DOCROOT = "/home/alice/public_html"
CHALLENGE = f"{DOCROOT}/.well-known/acme-challenge"
BYPASSES = {
    # Serves the whole site under /.well-known/acme-challenge/site/...
    "prefix rewrite": (DOCROOT, "RewriteEngine On\n"
                       "RewriteRule ^\\.well-known/acme-challenge/site/(.*)$ /$1 [L]\n"),
    # A front controller without PHP: any missing path becomes the home page.
    "front controller": (DOCROOT, "RewriteEngine On\nRewriteCond %{REQUEST_FILENAME} !-f\n"
                         "RewriteRule ^ index.html [L]\n"),
    # A handler for the challenge folder itself (here mod_status; PHP would be the same).
    "handler": (CHALLENGE, "SetHandler server-status\n"),
    # Server-side includes in a challenge file pulling in the home page.
    "includes": (CHALLENGE, "Options +Includes\nSetOutputFilter INCLUDES\n"),
}
PROBES = ["/.well-known/acme-challenge/site/", "/.well-known/acme-challenge/site/index.html",
          "/.well-known/acme-challenge/x", "/.well-known/acme-challenge/",
          "/.well-known/acme-challenge/token-abc/", "/.well-known/acme-challenge/a.html"]
SSI = '<!--#include virtual="/index.html" -->\n'


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_acme_exemption_serves_only_existing_static_files(agent_env, host, name):
    folder, htaccess = BYPASSES[name]
    host.path(f"{folder}/.htaccess").write_text(htaccess)
    host.path(f"{CHALLENGE}/ssitoken").write_text(SSI)
    host.path(f"{CHALLENGE}/a.html").write_text("<script>location='https://x.invalid'</script>")
    srv = Server(host.name, "linux", "ssh", host=host.address)
    rc, _reply, out = agent_env("suspend", host.name, "alice", "--playbook", "web-now")
    assert rc == 0, out
    for tls in (False, True):
        for path in PROBES:
            resp = fetch(srv, "shop.test", path, tls)
            assert resp.status_code == 503 and looks_suspended(resp), (name, path, tls,
                                                                       resp.status_code)
        token = fetch(srv, "shop.test", "/.well-known/acme-challenge/token-abc", tls)
        assert token.status_code == 200 and token.text == "acme-token-for-shop.test\n", (
            name, tls, token.status_code, token.text[:200])
        assert token.headers["Content-Type"].startswith("text/plain")
        ssi = fetch(srv, "shop.test", "/.well-known/acme-challenge/ssitoken", tls)
        assert ssi.status_code == 200 and ssi.text == SSI, (name, tls, ssi.text[:200])
    rc, _reply, out = agent_env("unsuspend", host.name, "alice")
    assert rc == 0, out
    assert fetch(srv, "shop.test", "/", False).status_code == 200
