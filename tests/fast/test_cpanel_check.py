"""`check` on a cPanel server: read-only; reports the panel version, the API user's
privileges, EA4 include support, ACCOUNT LOCK, and each step's availability with the
reason when it is not."""

from __future__ import annotations

from agent.engine.checks import check_servers
from tests.fast.test_cpanel_fakes import REBUILD, USERDATA
from tests.fast.test_cpanel_ladder import Cp, cp  # noqa: F401 - the fixture

PRESENT = ["/usr/local/cpanel/bin/whmapi1", "/usr/local/cpanel/bin/uapi",
           "/usr/local/cpanel/scripts/pkgacct", "/bin/tar", "/usr/bin/sha256sum", USERDATA,
           REBUILD, "/usr/local/cpanel/scripts/restartsrv_httpd", "/etc/proftpd",
           "/usr/local/cpanel/scripts/ftpupdate", "/usr/bin/mysql", "/usr/sbin/usermod",
           "/usr/bin/getent", "/usr/local/cpanel/bin/noshell", "/usr/sbin/pure-ftpwho",
           "/usr/bin/gpasswd", "/usr/sbin/sshd"]


def test_check_reports_every_step_and_changes_nothing(cp: Cp) -> None:  # noqa: F811
    for path in PRESENT:
        cp.fake.put(path, b"")
    report = check_servers(cp.engine(), "cp1")[0]
    text = "\n".join(report["lines"])
    assert report["ok"], text
    assert "cPanel & WHM version 11.118.0.9" in text
    assert "API user privileges: all" in text
    assert "yes: EA4 userdata includes" in text and "supports ACCOUNT LOCK" in text
    for step in ("backup", "landing_page", "mail_block", "ftp_lock", "db_lock", "panel_lock",
                 "panel_suspend"):
        assert f"step {step}: available" in text
    assert cp.fake.changing() == [["true"]] or all(
        a[0] in ("true", "/usr/bin/mysql") or a[0].endswith(("whmapi1", "uapi"))
        for a in cp.fake.changing())
    # The whole-server line reads the tree (the fake panel here has no reseller records:
    # the line says why it has no tree), nothing else.
    assert {f for _a, f, _p in cp.fake.model.calls} <= {"version", "myprivs",
                                                        "listresellers", "listaccts"}
    assert "whole server: " in text, text


def test_check_says_why_a_step_is_not_available(cp: Cp) -> None:  # noqa: F811
    for path in PRESENT:
        if path != REBUILD:
            cp.fake.put(path, b"")
    report = check_servers(cp.engine(), "cp1")[0]
    text = "\n".join(report["lines"])
    assert not report["ok"]
    assert f"step landing_page: NOT available: missing {REBUILD}" in text
    assert "step backup: available" in text


def test_check_on_a_server_without_cpanel(cp: Cp) -> None:  # noqa: F811
    report = check_servers(cp.engine(), "cp1")[0]
    assert not report["ok"] and any("not a cPanel server" in line for line in report["lines"])
