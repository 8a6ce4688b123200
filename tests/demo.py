"""The demo: bring up a test host, run the `demo` playbook (the standard ladder in seconds)
over SSH, show what a visitor and the customer meet at each stage (web, IMAP/POP/SMTP, FTP,
MySQL, SSH), unsuspend, show everything is back, and clean up."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent import PROJECT_ROOT
from agent.config.servers import Server
from agent.steps.probes import fetch
from tests.hosts import clients
from tests.hosts.provision import provision, write_config
from tests.hosts.testhost import TestHost


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def agent(config: Path, *args: str) -> None:
    """Run the agent's CLI as an admin would and show its readable reply."""
    env = {**os.environ, "SUSPENSION_AGENT_CONFIG": str(config)}
    print("$ suspension-agent " + shlex.join(args), flush=True)
    subprocess.run([sys.executable, "-m", "agent", *args], env=env, cwd=PROJECT_ROOT,
                   check=False)


def visit(server: Server, domains: list[str]) -> None:
    for domain in domains:
        for tls in (False, True):
            resp = fetch(server, domain, "/shop/cart?item=42", tls)
            headers = ", ".join(f"{h}: {resp.headers[h]}" for h in
                                ("Retry-After", "Cache-Control", "X-Robots-Tag")
                                if h in resp.headers)
            title = resp.text.split("<h1>")[1].split("</h1>")[0] if "<h1>" in resp.text else ""
            print(f"  {'https' if tls else 'http '}://{domain}/shop/cart?item=42 -> "
                  f"{resp.status_code}  {title!r}  {headers}")


def logins(host: TestHost, when: str) -> None:
    """Try the customer's logins from outside, as they would, and print what happens."""
    tries = [
        ("IMAP info@shop.test", clients.imap_login(host, "info@shop.test", "info-pass-1")),
        ("POP3 info@shop.test", clients.pop_login(host, "info@shop.test", "info-pass-1")),
        ("SMTP AUTH info@shop.test", clients.smtp_auth(host, "info@shop.test", "info-pass-1")),
        ("SMTP port 25 to info@shop.test",
         clients.smtp_deliver(host, "info@shop.test", f"hello ({when})", "from outside")),
        ("FTP alice_ftp", clients.ftp_login(host, "alice_ftp", "ftp-pass-1")),
        ("MySQL alice_shop", clients.mysql_login(host, "alice_shop", "db-pass-1")),
        ("SSH alice (password)", clients.ssh_password_login(host, "alice", "alice-pass-1")),
    ]
    for what, result in tries:
        print(f"  {what:<32} {result[:90]}")


def main() -> int:
    host = TestHost("demo", 40)
    say("bringing up a test host (Debian bookworm: sshd, Apache, MariaDB, Dovecot, Exim, "
        "Pure-FTPd) in a network namespace")
    host.up()
    try:
        provision(host)
        work = Path(tempfile.mkdtemp(prefix="suspension-agent-demo-"))
        config = write_config(host, work)
        server = Server(name=host.name, panel="linux", transport="ssh", host=host.address)
        domains = ["shop.test", "www.blog.test"]
        print(f"host {host.address}; account alice with shop.test and blog.test; config {config}")

        say("before: a visitor sees alice's sites, and alice's logins work")
        visit(server, domains)
        logins(host, "before")

        say("the plan (nothing is changed)")
        agent(config, "plan", host.name, "alice", "--playbook", "demo")

        say("suspend alice with the demo playbook: stage 0 = backup + landing page")
        started = time.time()
        agent(config, "suspend", host.name, "alice", "--playbook", "demo",
              "--reason", "invoice 1042 unpaid")
        say("stage 0: every URL answers 503 with the landing page; mail still works")
        visit(server, domains)
        acme = fetch(server, "shop.test", "/.well-known/acme-challenge/token-abc", False)
        print(f"  ACME challenge still served: {acme.status_code} {acme.text.strip()!r}")
        print("  the landing page a visitor reads:")
        body = fetch(server, "shop.test", "/", False).text
        for line in body.split("<main>")[1].split("</main>")[0].strip().splitlines():
            print("    " + line)
        logins(host, "stage 0")

        for stage, due, what in ((1, 5, "mail block"), (2, 10, "FTP, database and login locks")):
            time.sleep(max(0.0, started + due + 0.5 - time.time()))
            say(f"{due} s later `tick` (cron/systemd runs it every minute) applies the {what}")
            agent(config, "tick")
            logins(host, f"stage {stage}")
        agent(config, "status", host.name, "alice")

        say("payment cleared: unsuspend")
        agent(config, "unsuspend", host.name, "alice")
        say("after: the sites and every login are back; the mail sent meanwhile is there")
        visit(server, domains)
        logins(host, "after")
        inbox = clients.imap_read_messages(host, "info@shop.test", "info-pass-1")
        kept = [m for m in inbox if "Subject: hello (stage" in m]
        print(f"  info@shop.test holds the {len(kept)} messages sent to it while suspended")

        say("history")
        agent(config, "history", host.name, "alice")
    finally:
        say("cleaning up the test host")
        host.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
