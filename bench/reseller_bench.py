"""Benchmark: a reseller's whole tree in one call (issue 15), on the linux test host.

Workload (tests/hosts/many.py): reseller rsl0 with 3 sub-resellers, 88 accounts, 104 sites
each with a www alias (208 names), HTTP and HTTPS, the host map installed. SSH goes through
the delay proxy (25 ms each way, 50 ms RTT, 2 ms jitter); HTTP probes go straight to the
host, as a visitor's would. In one run, each measured from the moment the process starts,
with an outside watcher that requests every one of the 208 names over HTTP (and the first
over HTTPS) until each shows the wanted side, and records when the first and the last
flipped:

  agent     `suspend --reseller rsl0` (playbook: backup reused + landing page; the backups
            themselves are taken once before and reported separately) and `unsuspend`;
  agent-ms2 the same with sshd's MaxSessions 2 (a hardened host);
  naive     what a shell script would do: one SSH connection per command, per account its
            include written, configtest, graceful (one reload per account), and back;
  floor     one SSH connection and one command writing the whole host map (and back).

For each: wall time to the last flip, the process's total, SSH connections (the proxy's
count), channels and commands (counted inside the agent's process), Apache reloads (its
error log), peak RSS. Run from the repository root as root:

    .venv/bin/python bench/reseller_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.config.config import load  # noqa: E402
from agent.config.servers import Server  # noqa: E402
from agent.steps import hostmap  # noqa: E402
from agent.steps.probes import PROBE_ERRORS, Visitor, looks_suspended, visit_all  # noqa: E402
from tests.hosts import many  # noqa: E402
from tests.hosts.delayproxy import DelayProxy  # noqa: E402
from tests.hosts.provision import provision, write_config  # noqa: E402
from tests.hosts.testhost import TestHost  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="sa-bench-pycache-")
MAP = "/etc/apache2/suspension-agent/hosts.map"
LOG = "/var/log/apache2/error.log"
PLAYBOOK = ("stages:\n  - after: 0s\n    steps:\n      - backup: {reuse_if_newer_than: 24h}\n"
            "      - landing_page\n")
# The outside watcher (watch): its threads, and the shortest time from one round's start to
# the next. A round of the 209 names takes 0.07-0.13 s and ~0.05 s of CPU on this machine
# (lean probes; 2 threads were as fast as 8, with less CPU). Unpaced it would spend most of
# a core against the agent it measures; a round every 0.2 s spends 0.2-0.5 of one (the old
# watcher a whole core) and still sees a flip within about 0.2 s (the old one's rounds took
# 0.3 s and more).
WATCH_WORKERS = 2
WATCH_ROUND = 0.2
# The agent, counting its SSH channels and commands and reporting its peak RSS at exit.
COUNTED = """
import atexit, json, resource, sys
from agent.connector import ssh
counts = {"channels": 0, "commands": 0}
real = ssh.SSHConnector._exec_one
seen = {}
import os, time
trace, start = [], time.monotonic()
def counted(self, argv, stdin, timeout):
    counts["channels"] += 1; counts["commands"] += 1
    key = " ".join(a[:70] for a in argv[:4])
    seen[key] = seen.get(key, 0) + 1
    began, size = time.monotonic() - start, sum(len(a) for a in argv)
    try:
        return real(self, argv, stdin, timeout)
    finally:
        trace.append((round(began, 3), round(time.monotonic() - start, 3), key[:160],
                      len(argv), size + len(stdin or b"")))
if os.environ.get("SA_BENCH_TRACE"):  # each command: start, end, words, argv count, bytes sent
    atexit.register(lambda: open(os.environ["SA_BENCH_TRACE"], "a").write(
        json.dumps(trace) + "\\n"))
if os.environ.get("SA_BENCH_ARGV"):  # where to append the commands' histogram at exit
    atexit.register(lambda: open(os.environ["SA_BENCH_ARGV"], "a").write(
        json.dumps(sorted(seen.items(), key=lambda kv: -kv[1])) + "\\n"))
ssh.SSHConnector._exec_one = counted
atexit.register(lambda: print("SA-COUNTS " + json.dumps({**counts, "rss_kib":
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), file=sys.stderr))
from agent.cli import main
main(sys.argv[1:])
"""
# The naive script and the floor, as one Python process each with paramiko.
NAIVE = """
import json, resource, sys, paramiko, socket
host, port, key, known, side = sys.argv[1:6]
accounts = json.loads(sys.stdin.read())
def one(command, data=b""):
    sock = socket.create_connection((host, int(port)))
    c = paramiko.SSHClient(); c.load_host_keys(known)
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.connect(host, int(port), username="root", key_filename=key, sock=sock,
              allow_agent=False, look_for_keys=False)
    i, o, e = c.exec_command(command); i.write(data); i.channel.shutdown_write()
    rc = o.channel.recv_exit_status(); o.read(); c.close()
    if rc: sys.exit(f"{command}: exit {rc}")
conf = ("RewriteEngine On\\nRewriteRule ^ - [R=503,L]\\nHeader always set Retry-After 60\\n"
        "Header always set Cache-Control no-store\\nHeader always set X-Robots-Tag noindex\\n")
n = 0
for a in accounts:
    path = f"/etc/apache2/suspension-agent/{a}/zz-naive.conf"
    if side == "suspend":
        one(f"cat > {path}", conf.encode())
    else:
        one(f"rm -f {path}")
    one("apache2ctl configtest"); one("apache2ctl graceful"); n += 3
print("SA-COUNTS " + json.dumps({"channels": n, "commands": n, "rss_kib":
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), file=sys.stderr)
"""
FLOOR = """
import json, resource, sys, paramiko, socket
host, port, key, known, path = sys.argv[1:6]
data = sys.stdin.buffer.read()
sock = socket.create_connection((host, int(port)))
c = paramiko.SSHClient(); c.load_host_keys(known)
c.set_missing_host_key_policy(paramiko.RejectPolicy())
c.connect(host, int(port), username="root", key_filename=key, sock=sock,
          allow_agent=False, look_for_keys=False)
i, o, e = c.exec_command(f"cat > {path}.new && mv -f {path}.new {path}")
i.write(data); i.channel.shutdown_write(); rc = o.channel.recv_exit_status(); c.close()
print("SA-COUNTS " + json.dumps({"channels": 1, "commands": 1, "rss_kib":
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), file=sys.stderr)
sys.exit(rc)
"""


def watch(server: Server, suspended: bool, t0: float, result: dict,
          stop: threading.Event, names: list[str], apart: frozenset = frozenset()) -> None:
    """Record the first and last moment a name showed the wanted side (HTTP every name,
    HTTPS the first: both schemes come from the same Apache configuration); the names in
    `apart` are watched as well, and their last flip is reported on its own ("apart").

    Through the probes' lean path (keep-alive HTTP, one shared SSL context) on few threads,
    each round at least WATCH_ROUND long: the watcher shares the machine's two cores with
    the agent it measures, so its own CPU must stay small.
    """
    pending = {(d, False) for d in names} | {(names[0], True)}
    flips: list[float] = []
    apart_flips: list[float] = []

    def probe(visitor: Visitor, item: tuple[str, bool]) -> float | None:
        """Return when `item` answered the wanted side, or None (not yet, or mid-reload)."""
        try:
            resp = visitor.get(item[0], "/", item[1])
        except PROBE_ERRORS:
            return None  # mid-reload: try again
        good = looks_suspended(resp) if suspended else (
            resp.status_code == 200 and not looks_suspended(resp))
        return time.monotonic() - t0 if good else None

    while pending and not stop.is_set():
        started = time.monotonic()
        items = sorted(pending)
        found = visit_all(server, items, probe, workers=WATCH_WORKERS, timeout=1.0)
        for item, when in zip(items, found, strict=True):
            if when is not None:
                pending.discard(item)
                (apart_flips if item[0] in apart else flips).append(when)
        stop.wait(max(0.0, WATCH_ROUND - (time.monotonic() - started)))
    if not pending:
        result["first"], result["last"] = min(flips), max(flips)
        if apart_flips:
            result["apart"] = max(apart_flips)


def reloads(host: TestHost) -> int:
    return host.path(LOG).read_text(errors="replace").count("resuming normal operations")


def backups_done(audit: Path | None, since: float) -> float | None:
    """Return when (epoch seconds) the last backup step of the run was applied, from the
    agent's audit log (None: the run had no backup step)."""
    if audit is None or not audit.exists():
        return None
    last = None
    for line in audit.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("event") == "step.applied" and entry.get("step") == "backup":
            at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
            if at >= since:
                last = at if last is None else max(last, at)
    return last


def timed(host: TestHost, argv: list[str], suspended: bool, proxy: DelayProxy,
          stdin: bytes = b"", audit: Path | None = None, names: list[str] | None = None,
          counters: object = None, apart: frozenset = frozenset()) -> dict:
    """Run `argv` with the outside watcher on `names` (default: the linux workload's) and
    `apart` (reported on their own); `counters(host) -> dict` adds the difference of its
    counts over the run."""
    names = many.domains() if names is None else names
    server = Server("t", "linux", "ssh", host=host.address)
    result: dict = {}
    stop = threading.Event()
    before_conn, before_reloads = proxy.connections, reloads(host)
    before_counts = counters(host) if counters else {}
    wall0 = time.time()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
    watcher = threading.Thread(target=watch, args=(server, suspended, t0, result, stop,
                                                   names, apart))
    watcher.start()
    out, err = proc.communicate(stdin, timeout=1800)
    result["total"] = time.monotonic() - t0
    watcher.join(timeout=60)
    stop.set()
    watcher.join()
    if proc.returncode != 0 or "last" not in result:
        raise RuntimeError(f"{argv[-3:]} exit {proc.returncode}: {out.decode()[-600:]} "
                           f"{err.decode()[-600:]}")
    counts = [line for line in err.decode().splitlines() if line.startswith("SA-COUNTS ")]
    result.update(json.loads(counts[-1][10:]) if counts else {})
    result["connections"] = proxy.connections - before_conn
    done = backups_done(audit, wall0)
    if done is not None:
        # The backups (reused ones checked whole again) are reported apart from the web
        # stage: the target counts from the moment they are done.
        result["backups"] = done - wall0
        result["after backups"] = result["last"] - result["backups"]
    time.sleep(1.0)  # a graceful's log line lands after the process ends
    result["reloads"] = reloads(host) - before_reloads
    if counters:
        after = counters(host)
        result.update({k: after.get(k, 0) - before_counts.get(k, 0) for k in after})
    return result


# What a suspend and its unsuspend may not leave changed (the backups are kept by design,
# logs grow): every file's content, mode and owner, and which files and folders exist.
SNAPSHOT = ("find /etc/apache2 /etc/ssh /etc/passwd /etc/shadow /etc/group /home "
            "/var/lib/suspension-agent-cases -xdev -printf '%p %y %m %U:%G\\n' "
            "2>/dev/null | sort; find /etc/apache2 /etc/ssh /etc/passwd /etc/shadow /etc/group "
            "/home -xdev -type f -print0 | sort -z | xargs -0 sha256sum")


def snapshot(host: TestHost, command: str = SNAPSHOT) -> list[str]:
    """Return the host's files as lines of path, type, mode, owner and their SHA-256."""
    return host.run(["sh", "-c", command], check=False).stdout.decode().splitlines()


def same_files(before: list[str], after: list[str]) -> str | None:
    """Return None when the snapshots are equal, else the first differences."""
    if before == after:
        return None
    gone, new = sorted(set(before) - set(after)), sorted(set(after) - set(before))
    return f"before only: {gone[:5]}; after only: {new[:5]}"


def set_max_sessions(host: TestHost, value: int | None) -> None:
    from agent.drivers.linux.panel_lock import _HUP_SSHD

    dropin = host.path("/etc/ssh/sshd_config.d/05-bench.conf")
    if value is None:
        dropin.unlink(missing_ok=True)
    else:
        dropin.write_text(f"MaxSessions {value}\n")
    host.run(["sh", "-c", _HUP_SSHD, "sh", "/run/sshd.pid"])


def run(host: TestHost, work: Path, repeat: int, naive: bool = True
        ) -> dict[str, list[dict]]:
    proxy = DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.002)
    books = work / "playbooks"
    books.mkdir()
    (books / "bench.yaml").write_text(PLAYBOOK)
    cfg_path = write_config(host, work / "agent", proxy_port=proxy.port,
                            playbooks_dir=str(books))
    text = cfg_path.read_text().replace("    connect_timeout: 5\n",
                                        "    connect_timeout: 5\n" + many.tree_config())
    cfg_path.write_text(text.replace("lock_wait_seconds: 2", "lock_wait_seconds: 30"))
    agent = [sys.executable, "-c", COUNTED, "--json", "--config", str(cfg_path)]
    ssh = ["127.0.0.1", str(proxy.port), str(work / "agent" / "id_ed25519"),
           str(work / "agent" / "known_hosts")]
    results: dict[str, list[dict]] = {}

    def add(key: str, value: dict) -> None:
        results.setdefault(key, []).append(value)

    try:
        t0 = time.monotonic()
        first = subprocess.run([*agent, "suspend", host.name, "--reseller", "rsl0",
                                "--playbook", "bench"], cwd=ROOT, env=ENV, capture_output=True,
                               timeout=3600, check=False)
        if first.returncode != 0:
            raise RuntimeError(first.stdout.decode()[-2000:])
        add("backups (first suspend, 88 archives)", {"total": time.monotonic() - t0})
        timed(host, [*agent, "unsuspend", host.name, "--reseller", "rsl0"], False, proxy)
        for _ in range(repeat):
            for who, sessions in (("agent", None), ("agent-ms2", 2)):
                set_max_sessions(host, sessions)
                before = snapshot(host)
                add(f"{who} suspend", timed(host, [*agent, "suspend", host.name, "--reseller",
                                                  "rsl0", "--playbook", "bench"], True, proxy,
                                            audit=work / "agent" / "audit.jsonl"))
                add(f"{who} unsuspend", timed(host, [*agent, "unsuspend", host.name,
                                                    "--reseller", "rsl0"], False, proxy))
                # The round trip leaves every file of the host as it found it.
                diff = same_files(before, snapshot(host))
                add(f"{who} byte-identical after the round trip", {"ok": diff is None})
                if diff is not None:
                    raise RuntimeError(f"{who}: files differ after the round trip: {diff}")
            set_max_sessions(host, None)
            names = json.dumps(list(many.ACCOUNTS)).encode()
            full = hostmap.map_text(many.domains())
            add("floor suspend", timed(host, [sys.executable, "-c", FLOOR, *ssh, MAP], True,
                                       proxy, full))
            add("floor unsuspend", timed(host, [sys.executable, "-c", FLOOR, *ssh, MAP], False,
                                         proxy, hostmap.map_text([])))
        for side, suspended in (("suspend", True), ("unsuspend", False)) if naive else ():
            add(f"naive {side}", timed(host, [sys.executable, "-c", NAIVE, *ssh, side],
                                       suspended, proxy, names))
    finally:
        set_max_sessions(host, None)
        proxy.stop()
    return results


def table(results: dict[str, list[dict]], extra: tuple[str, ...] = (),
          apart: str = "") -> str:
    """The results as a Markdown table (medians), with the `extra` counts as columns and,
    when named, the last flip of the names watched apart (`apart`: its column's title)."""
    def med(rows: list[dict], key: str) -> float:
        values = [r[key] for r in rows if key in r]
        return statistics.median(values) if values else float("nan")

    cols = 11 + len(extra) + bool(apart)
    lines = ["| run | last domain flipped | first flipped |" + (f" {apart} |" if apart else "")
             + " backups done | last flip after the backups | process total | SSH connections "
             "| channels | commands | reloads | peak RSS |" + "".join(f" {e} |" for e in extra),
             "|" + "---|" * cols]

    def opt(rows: list[dict], key: str) -> str:
        value = med(rows, key)
        return "-" if math.isnan(value) else f"{value:.2f} s"

    def opt_count(rows: list[dict], key: str) -> str:
        value = med(rows, key)
        return "-" if math.isnan(value) else f"{value:.0f}"

    checks = []
    for name, rows in results.items():
        if "byte-identical" in name:
            checks.append(f"{name}: {sum(r['ok'] for r in rows)} of {len(rows)} rounds")
            continue
        lines.append(f"| {name} | {med(rows, 'last'):.2f} s | {med(rows, 'first'):.2f} s | "
                     + (f"{opt(rows, 'apart')} | " if apart else "") +
                     f"{opt(rows, 'backups')} | {opt(rows, 'after backups')} | "
                     f"{med(rows, 'total'):.2f} s | {med(rows, 'connections'):.0f} | "
                     f"{med(rows, 'channels'):.0f} | {med(rows, 'commands'):.0f} | "
                     f"{med(rows, 'reloads'):.0f} | {med(rows, 'rss_kib') / 1024:.0f} MiB |"
                     + "".join(f" {opt_count(rows, e)} |" for e in extra))
    lines += ["", *checks]
    for side in ("suspend", "unsuspend"):
        agent = med(results.get(f"agent {side}", []), "last")
        floor = med(results.get(f"floor {side}", []), "last")
        naive = med(results.get(f"naive {side}", []), "last")
        after = med(results.get(f"agent {side}", []), "after backups")
        if not math.isnan(after):
            lines.append(f"\n{side}: the last domain flipped {after:.2f} s after the backups")
        lines.append(f"\n{side}: agent {agent:.2f} s = {agent / floor:.2f}x the floor "
                     f"({floor:.2f} s)" + ("" if math.isnan(naive) else
                                          f"; the naive baseline {naive:.1f} s = "
                                          f"{naive / agent:.0f}x the agent"))
        if apart:
            lines.append(f"\n{side}: {apart}, last flip at "
                         f"{med(results.get(f'agent {side}', []), 'apart'):.2f} s")
    return "\n".join(lines)


def arguments(doc: str) -> argparse.Namespace:
    """The reseller benches' command line: --repeat N, --skip-naive."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-naive", action="store_true",
                        help="leave out the naive script (minutes a run)")
    return parser.parse_args()


def main() -> int:
    args = arguments(__doc__)
    host = TestHost("rbench", int(os.environ.get("SA_TESTHOST_INDEX", "37")))
    work = Path(tempfile.mkdtemp(prefix="sa-reseller-bench-"))
    try:
        host.up()
        provision(host)
        branding = load(str(write_config(host, work / "brand"))).branding
        many.provision(host, branding)
        results = run(host, work, args.repeat, naive=not args.skip_naive)
        print(table(results))
    finally:
        host.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
