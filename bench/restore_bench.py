"""Benchmark: the hot path, "payment cleared" to "site serves again", and its suspend side.

Brings up a test host (a Debian tree in a network namespace with real sshd, Apache, MariaDB,
Dovecot, Exim and Pure-FTPd), then for each link (direct, RTT ~0; and through the delay proxy,
25 ms each way = 50 ms RTT) and each ladder (`web-now`: backup + landing page; `immediate`:
the whole ladder in one stage) measures, from the moment the process is started:

  - unsuspend: time until every domain of the account answers 200 over HTTP and HTTPS again
    (time-to-200), and time until the process exits (total);
  - suspend: time until every domain answers the landing page 503 (time-to-503), and total.

Side by side, in the same run and over the same link:

  - floor: a minimal Python process with paramiko that opens one SSH connection and runs one
    command which removes (or writes) the include, runs configtest and a graceful restart;
  - naive: the agent itself with a connector that opens a new SSH connection for every
    command (what a script of one `ssh` per command costs), same steps, same effects.

Every run's effect is checked (the sites come back, the logins come back), and the agent's
replies must say ok. Prints a Markdown table; run from the repository root as root:

    .venv/bin/python bench/restore_bench.py [--repeat 5] [--layout vmail|stock]

`--layout stock` runs it on the stock Debian host layout instead (system-user mailboxes
through PAM behind the agent's Dovecot deny passdb, Pure-FTPd through Debian's wrapper:
tests/hosts/stock.py), prepared with docs/linux-host.md's snippets before the first round.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.config.servers import Server  # noqa: E402
from agent.steps.probes import fetch, looks_suspended  # noqa: E402
from tests.hosts import stock  # noqa: E402
from tests.hosts.delayproxy import DelayProxy  # noqa: E402
from tests.hosts.provision import ACCOUNTS, provision, write_config  # noqa: E402
from tests.hosts.testhost import TestHost  # noqa: E402

# Every process runs with a filled bytecode cache, as an installed package would (the VM's
# environment sets PYTHONDONTWRITEBYTECODE, which would make each start compile the package).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="sa-bench-pycache-")
LADDERS = {
    "web-now": "stages:\n  - after: 0s\n    steps: [backup, landing_page]\n",
    "immediate": None,  # the shipped playbook
}
HOOK = "/etc/apache2/suspension-agent/alice/suspension-agent.conf"
# The floor's one command, for each direction: constant text, paths as operands.
FLOOR_OFF = 'rm -f -- "$1" && apache2ctl configtest 2>/dev/null && apache2ctl graceful'
FLOOR_ON = 'cat > "$1" && apache2ctl configtest 2>/dev/null && apache2ctl graceful'
FLOOR_SCRIPT = """
import sys, paramiko, socket
host, port, key, known, script, path = sys.argv[1:7]
data = sys.stdin.buffer.read()
sock = socket.create_connection((host, int(port)))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c = paramiko.SSHClient(); c.load_host_keys(known)
c.set_missing_host_key_policy(paramiko.RejectPolicy())
c.connect(host, int(port), username="root", key_filename=key, sock=sock,
          allow_agent=False, look_for_keys=False)
_in, out, err = c.exec_command("sh -c '" + script + "' sh " + path)
_in.write(data); _in.channel.shutdown_write()
rc = out.channel.recv_exit_status(); out.read(); c.close(); sys.exit(rc)
"""
# The naive baseline: the agent unchanged, but every command on its own SSH connection.
NAIVE_SCRIPT = """
import sys
from agent.connector import ssh
Real = ssh.SSHConnector
class OnePerCommand(Real):
    def _exec(self, argv, stdin, timeout):
        one = Real(self._server)
        try:
            return one._exec(argv, stdin, timeout)
        finally:
            one.close()
ssh.SSHConnector = OnePerCommand
from agent.cli import main
main(sys.argv[1:])
"""


def domains() -> list[tuple[str, bool]]:
    names = [d for name, _sub, aliases, _h in ACCOUNTS["alice"] for d in (name, *aliases)]
    return [(d, tls) for d in names for tls in (False, True)]


def watch(server: Server, suspended: bool, t0: float, result: dict, stop: threading.Event
          ) -> None:
    """Record in result['at'] the first moment every domain shows the wanted side.

    One light poller (a fresh connection per request, short timeouts, HTTP for every domain
    and HTTPS for the first): Apache serves both schemes from the one configuration a
    graceful restart swaps, and a heavier watcher would steal the CPU it is timing.
    """
    names = sorted({d for d, _tls in domains()})
    pending = {(d, False) for d in names} | {(names[0], True)}
    while pending and not stop.is_set():
        for domain, tls in sorted(pending):
            try:
                resp = fetch(server, domain, "/", tls, timeout=0.3)
            except Exception:  # noqa: BLE001 - a restart in progress: try again
                continue
            good = looks_suspended(resp) if suspended else (
                resp.status_code == 200 and not looks_suspended(resp))
            if good:
                pending.discard((domain, tls))
        if pending:
            time.sleep(0.01)
    if not pending:
        result["at"] = time.monotonic() - t0


def timed(argv: list[str], server: Server, suspended: bool, stdin: bytes = b"",
          env: dict | None = None) -> tuple[float, float, str]:
    """Start argv; return (seconds until the sites show the wanted side, total, output)."""
    result: dict = {}
    stop = threading.Event()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=ROOT, env={**ENV, **(env or {})})
    watcher = threading.Thread(target=watch, args=(server, suspended, t0, result, stop))
    watcher.start()
    out, _ = proc.communicate(stdin, timeout=300)
    total = time.monotonic() - t0
    watcher.join(timeout=30)
    stop.set()
    watcher.join()
    if proc.returncode != 0 or "at" not in result:
        raise RuntimeError(f"{argv[-4:]} failed (exit {proc.returncode}): {out.decode()[-800:]}")
    return result["at"], total, out.decode()


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def converge(agent: list[str], side: str, name: str, args: list[str]) -> None:
    """Run the agent's `side` until it exits 0 (a 75 means: call again)."""
    for _attempt in range(3):
        proc = subprocess.run([*agent, side, name, "alice", *args], cwd=ROOT, env=ENV,
                              capture_output=True, timeout=300, check=False)
        if proc.returncode == 0:
            return
    raise RuntimeError(f"the agent could not finish the naive run's {side}: "
                       f"{proc.stdout.decode()[-500:]}")


def run(host: TestHost, link: str, repeat: int, work: Path, books: Path) -> list[dict]:
    proxy = None
    if link == "50ms":
        proxy = DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.002)
    folder = work / link
    cfg = write_config(host, folder, proxy_port=proxy.port if proxy else None,
                       playbooks_dir=str(books))
    server = Server("t", "linux", "ssh", host=host.address)
    agent = [sys.executable, "-m", "agent", "--json", "--config", str(cfg)]
    naive = [sys.executable, "-c", NAIVE_SCRIPT, "--json", "--config", str(cfg)]
    ssh_host, ssh_port = ("127.0.0.1", proxy.port) if proxy else (host.address, 22)
    floor = [sys.executable, "-c", FLOOR_SCRIPT, ssh_host, str(ssh_port),
             str(folder / "id_ed25519"), str(folder / "known_hosts")]
    rows = []
    try:
        for ladder in LADDERS:
            samples: dict[str, list[float]] = {}

            def add(key: str, value: float, into: dict = samples) -> None:
                into.setdefault(key, []).append(value)

            failures: list[str] = []
            for _ in range(repeat):
                for who, cmd in (("agent", agent), ("naive", naive)):
                    for side, args, suspended in (
                            ("suspend", ["--playbook", ladder], True), ("unsuspend", [], False)):
                        try:
                            at, total, _ = timed([*cmd, side, host.name, "alice", *args],
                                                 server, suspended)
                        except RuntimeError as exc:
                            if who == "agent":
                                raise
                            # The one-connection-per-command baseline can fail outright (new
                            # connections meet sshd's MaxStartups or its reload): count it, and
                            # let the agent finish the job so the next round starts clean.
                            failures.append(f"naive {side}: {str(exc)[-160:]}")
                            converge(agent, side, host.name, args)
                            continue
                        add(f"{who} {side} to {'503' if suspended else '200'}", at)
                        add(f"{who} {side} total", total)
                # The floor, on a host with nothing suspended: include on, then off.
                conf = host.path(HOOK).parent
                conf.mkdir(parents=True, exist_ok=True)
                page = "RewriteEngine On\nRewriteRule ^ - [R=503,L]\nHeader always set " \
                       "Retry-After 60\nHeader always set Cache-Control no-store\n" \
                       "Header always set X-Robots-Tag noindex\n"
                at, total, _ = timed([*floor, FLOOR_ON, HOOK], server, True, page.encode())
                add("floor suspend to 503", at)
                add("floor suspend total", total)
                at, total, _ = timed([*floor, FLOOR_OFF, HOOK], server, False)
                add("floor unsuspend to 200", at)
                add("floor unsuspend total", total)
                conf.rmdir()
            rows.append({"link": link, "ladder": ladder, "failures": failures,
                         **{k: median(v) if v else float("nan") for k, v in samples.items()}})
    finally:
        if proxy:
            proxy.stop()
    return rows


def table(rows: list[dict]) -> str:
    head = ("| link | ladder | direction | agent to 200/503 | agent total | floor to 200/503 | "
            "floor total | naive to 200/503 | naive total | agent / floor |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        for side, word in (("unsuspend", "200"), ("suspend", "503")):
            nan = float("nan")
            a, f, n = (r.get(f"{w} {side} to {word}", nan)
                       for w in ("agent", "floor", "naive"))
            lines.append(
                f"| {r['link']} | {r['ladder']} | {side} | {a:.2f} s | "
                f"{r[f'agent {side} total']:.2f} s | {f:.2f} s | {r[f'floor {side} total']:.2f} s"
                f" | {n:.2f} s | {r.get(f'naive {side} total', nan):.2f} s | {a / f:.2f}x |")
    for r in rows:
        for failure in r["failures"]:
            lines.append(f"\nnaive failed ({r['link']}, {r['ladder']}): {failure}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--links", default="direct,50ms")
    parser.add_argument("--layout", choices=("vmail", "stock"), default="vmail",
                        help="the test host's mail and FTP layout (default: vmail)")
    args = parser.parse_args()
    host = TestHost("bench", int(os.environ.get("SA_TESTHOST_INDEX", "39")))
    work = Path(tempfile.mkdtemp(prefix="sa-restore-bench-"))
    try:
        host.up()
        provision(host, layout=args.layout)
        if args.layout == "stock":
            stock.prepare(host)
        books = work / "playbooks"
        shutil.copytree(ROOT / "playbooks", books)
        for name, text in LADDERS.items():
            if text:
                (books / f"{name}.yaml").write_text(text)
        rows = []
        for link in args.links.split(","):
            rows += run(host, link, args.repeat, work, books)
        print(f"layout: {args.layout}")
        print(table(rows))
    finally:
        host.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
