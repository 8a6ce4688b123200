"""The WHMCS module (contrib/whmcs, issue 19 item 4) run by Debian's php-cli through a harness
that supplies WHMCS's documented `$params` and `logModuleCall` (tests/whmcs/harness.php),
over real OpenSSH to the agent's forced command: an sshd of the test's own on loopback
whose authorized_keys line forces `serve-ssh --caller whmcs`, the agent reaching the linux
test host. Checked from outside: SuspendAccount puts bob's sites behind the landing page
(and a retry acts no more), TerminateAccount is refused, UnsuspendAccount brings them back
through `reconcile`, the InvoicePaid hook reconciles the invoice's services, a manual
suspension is not lifted by billing, and a transport failure is a failure, never success.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent import PROJECT_ROOT
from tests.hosts import logins
from tests.test_reseller_linux import shows

pytestmark = pytest.mark.testhost

HARNESS = PROJECT_ROOT / "tests" / "whmcs" / "harness.php"
CALLERS = ("callers:\n  whmcs:\n    verbs: [suspend, unsuspend, reconcile, status, check, "
           "history, case]\n    holds: [billing, manual]\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def forced(agent_env, tmp_path):
    """An sshd on 127.0.0.1 whose one key runs the agent's forced command (stopped after)."""
    for tool in ("php", "ssh", "/usr/sbin/sshd"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (tests/setup-machine.sh installs it)")
    agent_env.config.write_text(agent_env.config.read_text() + CALLERS
                                + f"dossier_dir: {tmp_path / 'dossiers'}\n")
    d = tmp_path / "sshd"
    d.mkdir(mode=0o700)
    host_key, client_key = d / "host_key", d / "whmcs_key"
    public = logins.new_key(host_key)
    client_public = logins.new_key(client_key)
    command = (f"{sys.executable} -m agent --config {agent_env.config} serve-ssh "
               "--caller whmcs")
    (d / "authorized_keys").write_text(f'command="{command}",restrict {client_public}\n')
    port = free_port()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {public}\n")
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nLogLevel ERROR\n")
    # sshd's privilege separation folder, made if missing and never removed: the xdist
    # workers run this fixture side by side, and one removing it while another's sshd still
    # accepts made that sshd reset every later connection (seen in CI at f8959dd).
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = d / "sshd.log"  # a file, not a pipe nobody reads, so sshd never blocks on it
    with log.open("wb") as err:
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                                stderr=err)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    # Something else may have taken the port between free_port and sshd's bind.
    time.sleep(0.2)
    assert proc.poll() is None, log.read_text()
    params = {"serviceid": 77, "userid": 5, "username": "bob", "domain": "bob.test",
              "serverip": "127.0.0.1", "serverhostname": "agent.example", "serverport": port,
              "serverusername": "root", "serverpassword": "not-used-secret",
              "serveraccesshash": "", "suspendreason": "", "nextduedate": "2026-12-01",
              "configoption1": agent_env.host.name, "configoption2": "web-now",
              "configoption3": str(client_key), "configoption4": str(d / "known_hosts")}
    yield agent_env, params, tmp_path
    proc.terminate()  # exactly the sshd this fixture started
    proc.wait(timeout=10)


def whmcs(tmp_path: Path, function: str, params: dict) -> object:
    """Run one module function (or `hook:NAME`) with php-cli; return its result."""
    file = tmp_path / "params.json"
    file.write_text(json.dumps(params))
    proc = subprocess.run(["php", str(HARNESS), function, str(file), str(tmp_path / "log")],
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["result"]


def test_whmcs_suspends_and_unsuspends_over_the_forced_command(host, forced) -> None:
    agent, params, tmp = forced
    assert whmcs(tmp, "TestConnection", params) == {"success": True, "error": ""}
    assert whmcs(tmp, "SuspendAccount", params) == "success"
    assert set(shows(host, "bob").values()) == {"landing"}
    assert whmcs(tmp, "SuspendAccount", params) == "success"  # WHMCS retried: replayed
    rc, status, _out = agent("status", host.name, "bob")
    assert len(status["cases"]) == 1 and status["holds"] == ["billing"]
    assert whmcs(tmp, "ExportDossier", params) == "success"
    (dossier,) = (tmp / "dossiers").iterdir()
    assert (dossier / "manifest.json").exists() and (dossier / "visitors.warc").stat().st_size
    refused = whmcs(tmp, "TerminateAccount", params)
    assert refused != "success" and "termination is disabled" in refused
    assert whmcs(tmp, "UnsuspendAccount", params) == "success"
    assert set(shows(host, "bob").values()) == {"own"}
    log = (tmp / "log").read_text()
    assert "not-used-secret" not in log and "SuspendAccount" in log
    assert "--idempotency-key whmcs:77:suspend:2026-12-01" in log.replace("'", "")


def test_a_manual_suspension_stays_and_a_paid_invoice_reconciles(host, forced) -> None:
    agent, params, tmp = forced
    manual = params | {"suspendreason": "Abuse report 4411"}
    assert whmcs(tmp, "SuspendAccount", manual) == "success"
    rc, status, _out = agent("status", host.name, "bob")
    assert status["holds"] == ["manual"]
    said = whmcs(tmp, "UnsuspendAccount", params)
    assert said != "success" and "held by manual" in said  # billing never lifts it
    assert set(shows(host, "bob").values()) == {"landing"}
    agent("unsuspend", host.name, "bob", "--hold", "manual")
    assert whmcs(tmp, "SuspendAccount", params) == "success"
    assert whmcs(tmp, "hook:InvoicePaid", params) == "ran 1 hook(s)"
    assert set(shows(host, "bob").values()) == {"own"}
    assert '"action":"Reconcile"' in (tmp / "log").read_text()


def test_a_transport_failure_is_never_success(host, forced) -> None:
    _agent, params, tmp = forced
    closed = params | {"serverport": free_port()}
    said = whmcs(tmp, "SuspendAccount", closed)
    assert said != "success" and "no reply" in said
    pinned = params | {"configoption4": str(tmp / "empty_known_hosts")}
    (tmp / "empty_known_hosts").write_text("")
    assert whmcs(tmp, "SuspendAccount", pinned) != "success"  # unknown host key
    result = whmcs(tmp, "TestConnection", closed)
    assert result["success"] is False and result["error"]
    assert set(shows(host, "bob").values()) == {"own"}
