"""`cpanel.ftp_sessions: leave`, for a cPanel server whose FTP daemon is not Pure-FTPd:
ftp_lock locks the logins without pure-ftpwho, ends no session, and the plan and `check`
say that open sessions stay."""

from __future__ import annotations

import pytest

from agent.engine.checks import check_servers
from agent.errors import ConfigError
from tests.fast.test_cpanel_check import PRESENT
from tests.fast.test_cpanel_ladder import Cp, cp, write_config  # noqa: F401 - the fixture
from tests.fast.test_ftp_sessions import WHO, cpf  # noqa: F401 - the fixture

LEFT = "open FTP sessions of the locked logins are left running (cpanel.ftp_sessions: leave)"


def test_leave_locks_without_pure_ftpwho_and_ends_no_session(cpf: Cp) -> None:  # noqa: F811
    write_config(cpf.tmp, "    cpanel:\n      ftp_sessions: leave\n")
    del cpf.fake.files[WHO]
    planned = cpf.suspend("cp-ftp", dry_run=True)
    lines = [line for p in planned.plans if p["step"] == "ftp_lock" for line in p["actions"]]
    assert lines[-1] == f"skip  {LEFT}", lines
    assert not [line for line in lines if line.startswith("kill")], lines
    out = cpf.suspend("cp-ftp")
    assert out.errors == [] and out.state == "suspended", out.errors
    assert b"!" in cpf.fake.files["/etc/proftpd/alice"].data  # the logins are locked
    assert cpf.fake.ended == [] and not [a for a in cpf.fake.log if a[0] == WHO]
    back = cpf.unsuspend()
    assert back.errors == [] and back.state == "active", back.errors


def test_check_says_sessions_are_left_and_needs_no_pure_ftpwho(cpf: Cp) -> None:  # noqa: F811
    write_config(cpf.tmp, "    cpanel:\n      ftp_sessions: leave\n")
    for path in PRESENT:
        cpf.fake.put(path, b"")
    del cpf.fake.files[WHO]
    report = check_servers(cpf.engine(), "cp1")[0]
    assert report["ok"], report["lines"]
    assert ("NOTE: ftp_lock leaves open FTP sessions running (cpanel.ftp_sessions: leave)"
            in report["lines"])
    assert "step ftp_lock: available" in report["lines"]


def test_any_other_value_is_a_config_error(cpf: Cp) -> None:  # noqa: F811
    write_config(cpf.tmp, "    cpanel:\n      ftp_sessions: kill\n")
    with pytest.raises(ConfigError, match="ftp_sessions"):
        cpf.engine()
