"""firewall_block on the linux test host, in a whole-server case, probed from outside.

`server-mail-first` with the injected clock: at once the mail client ports are refused from
outside (an IMAP session opened before is cut), port 25 still takes mail for the domains but
no longer offers SMTP AUTH, and from an exempt address (a second address on the outside end
of the host's link) every port still answers; a `flush ruleset` meanwhile is undone by the
next tick; the websites follow at the tick a day later. A copy of the table that a panel
saved into /etc/nftables.conf meanwhile is taken out of it by the unsuspend (loading that
file brings no agent rule back). After `unsuspend --whole-server` the kernel's ruleset (`nft
-s list ruleset`) and every file are as before.
"""

from __future__ import annotations

import base64
import imaplib
import smtplib
import socket
import subprocess

import pytest

from tests.hosts import clients
from tests.test_ladder import NOT_RESTORED, snapshot
from tests.test_reseller_linux import shows

pytestmark = pytest.mark.testhost

MAIL_PORTS = (110, 143, 587)  # the mail client ports the test host listens on
START = 2_000_000_000.0


def answers(host, port: int, source: str | None = None) -> bool:
    try:
        with socket.create_connection((host.address, port), timeout=3,
                                      source_address=(source, 0) if source else None):
            return True
    except OSError:
        return False


def auth_on_25(host, user: str = "info@shop.test", password: str = "info-pass-1") -> str:
    """Return the reply code to AUTH PLAIN on port 25 (235: in; 503: not offered)."""
    with smtplib.SMTP(host.address, 25, timeout=5) as smtp:
        smtp.ehlo("tester.test")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return str(smtp.docmd("AUTH", f"PLAIN {token}")[0])


def ruleset(host) -> str:
    return host.run(["/usr/sbin/nft", "-s", "list", "ruleset"]).stdout.decode()


@pytest.fixture
def exempt(host):
    """A second address on the outside end of the host's link, exempt in the config."""
    address = host.gateway.rsplit(".", 1)[0] + ".3"
    link = f"sa{host.index}h"
    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", link], check=True)
    yield address
    subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", link], check=False)


@pytest.fixture
def fw_agent(mapped, agent_env, exempt):
    text = agent_env.config.read_text()
    agent_env.config.write_text(text.replace(
        "    connect_timeout: 5\n", f"    connect_timeout: 5\n    firewall_exempt: [{exempt}]\n"))
    yield agent_env
    agent_env("unsuspend", agent_env.host.name, "--whole-server")
    agent_env.host.run(["/usr/sbin/nft", "-f", "-"], check=False,
                       input=b"table inet suspension_agent\ndelete table inet suspension_agent\n")


def test_mail_ports_closed_from_outside_port_25_open_and_back_exactly(host, fw_agent, exempt
                                                                      ) -> None:
    agent = fw_agent
    before, rules_before = snapshot(host), ruleset(host)
    assert all(answers(host, p) for p in (25, *MAIL_PORTS))
    assert auth_on_25(host) == "235"
    session = imaplib.IMAP4(host.address, 143, timeout=5)
    session.login("info@shop.test", "info-pass-1")
    agent.now = START
    rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                           "server-mail-first", "--reason", "server rent")
    try:
        assert rc == 0, out
        (fw,) = [a for a in reply["applied"] if a["step"] == "firewall_block"]
        assert fw["scope"] == "server" and fw["changed"], reply["applied"]
        assert [p for p in MAIL_PORTS if answers(host, p)] == []
        assert answers(host, 25)
        assert clients.smtp_deliver(host, "info@shop.test", "still arrives") == "ok"
        assert auth_on_25(host) == "503"  # AUTH not offered, refused: no sending on 25
        assert [p for p in MAIL_PORTS if not answers(host, p, exempt)] == []
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            session.noop()  # the session opened before the grade is cut
        assert set(shows(host, "bob").values()) == {"own"}  # the websites come a day later
    finally:
        try:
            session.shutdown()
        except OSError:
            pass
    rc, again, out = agent("suspend", host.name, "--whole-server", "--playbook",
                           "server-mail-first")
    assert rc == 0 and not any(a["changed"] for a in again["applied"]), out
    # A reload of nftables.service (or a boot) loads /etc/nftables.conf: `flush ruleset`,
    # then its include of the agent's folder. The table stays, no tick needed.
    host.run(["/usr/sbin/nft", "-f", "/etc/nftables.conf"])
    assert [p for p in MAIL_PORTS if answers(host, p)] == []
    # Something flushes the ruleset (a reload of nftables.service does): the next tick,
    # due or not, puts the table back and says so.
    host.run(["/usr/sbin/nft", "flush", "ruleset"])
    assert all(answers(host, p) for p in MAIL_PORTS)
    rc, status, out = agent("status", host.name, "--whole-server")
    assert any(w.startswith("firewall_block: not in effect as planned")
               for w in status.get("warnings", [])), out
    agent.now = START + 60
    rc, ticked, out = agent("tick")
    assert rc == 0 and "put back: firewall_block" in out, out
    assert [p for p in MAIL_PORTS if answers(host, p)] == []
    rc, status, out = agent("status", host.name, "--whole-server")
    assert rc == 0 and not status.get("warnings"), out
    rc, ticked, out = agent("tick")
    assert rc == 0 and ticked["processed"] == [], out  # nothing undone, nothing due
    agent.now = START + 24 * 3600 + 1
    rc, ticked, out = agent("tick")
    assert rc == 0, out
    assert set(shows(host, "bob").values()) == {"landing"}

    # A panel saves the live ruleset, the agent's table with it, as the boot firewall
    # (cPanel's save_current_ruleset does: lockouts.md 1.6).
    boot = host.path("/etc/nftables.conf")
    original = boot.read_bytes() if boot.exists() else None
    boot.write_text("flush ruleset\n" + ruleset(host))
    assert "table inet suspension_agent" in boot.read_text()

    rc, reply, out = agent("unsuspend", host.name, "--whole-server")
    assert rc == 0 and reply["state"] == "active", out
    # The saved copy lost the agent's table and nothing else; a "reboot" (the boot file
    # loaded) brings no agent rule back.
    assert "suspension_agent" not in boot.read_text()
    host.run(["/usr/sbin/nft", "-f", "/etc/nftables.conf"])
    assert "suspension_agent" not in ruleset(host)
    if original is None:
        boot.unlink()
    else:
        boot.write_bytes(original)  # the prepared one, with its include: nothing left to load
        host.run(["/usr/sbin/nft", "-f", "/etc/nftables.conf"])
        assert "suspension_agent" not in ruleset(host)
    host.run(["/usr/sbin/nft", "-f", "-"], input=("flush ruleset\n" + rules_before).encode())
    assert all(answers(host, p) for p in (25, *MAIL_PORTS))
    assert auth_on_25(host) == "235"
    assert clients.imap_login(host, "info@shop.test", "info-pass-1") == "ok"
    assert set(shows(host, "bob").values()) == {"own"}
    assert ruleset(host) == rules_before
    assert {k: v for k, v in snapshot(host).items() if k not in NOT_RESTORED} == {
        k: v for k, v in before.items() if k not in NOT_RESTORED}


def test_dry_run_shows_the_nft_commands_and_a_foreign_table_is_refused(host, fw_agent
                                                                       ) -> None:
    agent = fw_agent
    rules_before = ruleset(host)
    rc, reply, out = agent("check", host.name)
    assert "firewall_block (whole-server playbooks): /usr/sbin/nft present" in \
        reply["servers"][0]["lines"], out
    assert "firewall_block withdraws SMTP AUTH on 25: yes" in reply["servers"][0]["lines"], out
    assert "firewall_block's table kept across reloads and reboots: yes (/etc/nftables.conf)" \
        in reply["servers"][0]["lines"], out
    rc, reply, out = agent("--dry-run", "suspend", host.name, "--whole-server", "--playbook",
                           "server-mail-first")
    assert rc == 0, out
    (plan,) = [p for p in reply["plan"] if p["step"] == "firewall_block"]
    shown = "\n".join(plan["actions"])
    assert "nft -c -f /var/lib/suspension-agent/nft/active.nft" in shown, shown
    assert "tcp dport @closed_tcp reject with tcp reset" in shown, shown
    assert ruleset(host) == rules_before
    # A table of that name the agent did not load: refused, never replaced.
    host.run(["/usr/sbin/nft", "add", "table", "inet", "suspension_agent"])
    rc, reply, out = agent("suspend", host.name, "--whole-server", "--playbook",
                           "server-mail-first")
    assert rc == 1 and "already loaded" in out, out
    assert "suspension_agent" in ruleset(host) and all(answers(host, p) for p in MAIL_PORTS)
