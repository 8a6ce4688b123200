"""`check`'s report of a cPanel server's layout (issue 16 item 3): ea-nginx and its cache
(review F5), standalone NGINX, Force HTTPS Redirect domains (F3), ProFTPD (F1/F9) and the
database prefix setting (F2); read-only."""

from __future__ import annotations

from agent.engine.checks import check_servers
from tests.fast.test_cpanel_check import PRESENT
from tests.fast.test_cpanel_ladder import Cp, cp  # noqa: F401 - the fixture
from tests.fast.test_cpanel_nginx_fake import SHIPPED


def _check(cp: Cp, **files: bytes) -> tuple[dict, str]:  # noqa: F811
    for path in PRESENT:
        cp.fake.put(path, b"")
    for path, data in files.items():
        cp.fake.put(path, data)
    report = check_servers(cp.engine(), "cp1")[0]
    return report, "\n".join(report["lines"])


def test_a_plain_server_says_so_for_each_hazard(cp: Cp) -> None:  # noqa: F811
    report, text = _check(cp)
    assert report["ok"], text
    assert "ea-nginx: not installed (Apache answers visitors itself)" in text
    assert "FTP daemon: pure-ftpd (ftp_lock ends open sessions with pure-ftpwho)" in text
    assert "database prefixing: on" in text
    assert "Force HTTPS Redirect domains: none" in text
    assert cp.fake.changing() == [] or all(
        a[0] in ("true", "/usr/bin/mysql") or a[0].endswith(("whmapi1", "uapi"))
        for a in cp.fake.changing())


def test_ea_nginx_proftpd_prefix_off_and_force_https_are_named(cp: Cp) -> None:  # noqa: F811
    report, text = _check(cp, **{
        "/etc/nginx/ea-nginx/cache.json": SHIPPED,
        "/var/cpanel/cpanel.config": b"ftpserver=proftpd\ndatabase_prefix=0\n",
        "/var/cpanel/userdata/bob/bob.test": b"---\nservername: bob.test\nssl_redirect: 1\n",
        "/var/cpanel/userdata/bob/bob.test_SSL": b"---\nssl_redirect: 1\n",
        "/var/cpanel/userdata/bob/shop.bob.test": b"---\nssl_redirect: 0\n"})
    assert "ea-nginx in front of Apache, caching on by default" in text
    assert "NOTE: the FTP daemon is ProFTPD" in text and "ftp_sessions: leave" in text
    assert "database prefixing: off (database_prefix=0)" in text
    assert "NOTE: 1 domain(s) with Force HTTPS Redirect (bob.test)" in text
    assert report["ok"], text  # warnings, no step refuses


def test_standalone_nginx_makes_landing_page_unavailable(cp: Cp) -> None:  # noqa: F811
    report, text = _check(cp, **{"/etc/nginx/ea-nginx/cache.json": SHIPPED,
                                 "/etc/nginx/ea-nginx/enable.standalone": b""})
    assert not report["ok"]
    assert "NO: ea-nginx serves the sites standalone" in text
    assert "step landing_page: NOT available: ea-nginx serves the sites standalone" in text


def test_check_says_whether_the_mail_grade_closes_webmail_by_name(cp: Cp) -> None:  # noqa: F811
    """Issue 17: with cPanel's service subdomains on, webmail.DOMAIN goes through the web
    server, and firewall_block closes that too; with them off there is nothing to close."""
    _report, text = _check(cp, **{"/var/cpanel/cpanel.config": b"proxysubdomains=1\n"})
    assert "firewall_block closes webmail by name too (service subdomains on" in text, text
    _report, text = _check(cp, **{"/var/cpanel/cpanel.config": b"proxysubdomains=0\n"})
    assert "service subdomains are off here" in text, text
