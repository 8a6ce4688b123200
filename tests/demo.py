"""The demo: bring up a test host, suspend an account with the `demo` playbook over SSH,
show what a visitor sees, unsuspend, show the site is back, and clean up."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent import PROJECT_ROOT
from agent.config import Server
from agent.steps.probes import fetch
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


def main() -> int:
    host = TestHost("demo", 77)
    say("bringing up a test host (Debian bookworm: sshd, Apache, MariaDB) in a network namespace")
    host.up()
    try:
        provision(host)
        work = Path(tempfile.mkdtemp(prefix="suspension-agent-demo-"))
        config = write_config(host, work)
        server = Server(name=host.name, panel="linux", transport="ssh", host=host.address)
        domains = ["shop.test", "www.blog.test"]
        print(f"host {host.address}; account alice with shop.test and blog.test; config {config}")

        say("before: a visitor sees alice's sites")
        visit(server, domains)

        say("the plan (nothing is changed)")
        agent(config, "plan", host.name, "alice", "--playbook", "demo")

        say("suspend alice with the demo playbook (backup now, landing page after 5 s)")
        agent(config, "suspend", host.name, "alice", "--playbook", "demo",
              "--reason", "invoice 1042 unpaid")
        say("waiting for the next stage, then `tick` (what cron/systemd runs every minute)")
        time.sleep(6)
        agent(config, "tick")

        say("while suspended: every URL answers 503 with the landing page")
        visit(server, domains)
        acme = fetch(server, "shop.test", "/.well-known/acme-challenge/token-abc", False)
        print(f"  ACME challenge still served: {acme.status_code} {acme.text.strip()!r}")
        print("  the landing page a visitor reads:")
        body = fetch(server, "shop.test", "/", False).text
        for line in body.split("<main>")[1].split("</main>")[0].strip().splitlines():
            print("    " + line)

        say("payment cleared: unsuspend")
        agent(config, "unsuspend", host.name, "alice")
        say("after: the sites are back, exactly as they were")
        visit(server, domains)

        say("history")
        agent(config, "history", host.name, "alice")
    finally:
        say("cleaning up the test host")
        host.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
