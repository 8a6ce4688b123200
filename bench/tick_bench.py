"""Benchmark: `tick` with 10,000 open cases and nothing due.

Builds a temporary state database with open cases spread over a few configured servers, every
case at some stage of a shipped playbook (`standard`, `mail-first`) with its next stage due in
the future, and measures in the same run:

  (a) the real `Engine.tick()` in process, with nothing due;
  (b) the whole CLI process `python -m agent --json tick` (what cron or the timer pays);
  (c) a naive baseline: for every open case load its playbook and work out whether a stage is
      due (what a tick without the `next_due_at` index would do), plus the same scan with the
      playbooks cached, to separate the cost of the scan from the cost of the YAML loads.

It checks that nothing connects anywhere: the in-process engine gets a connector factory that
counts and raises, and the servers of the CLI runs point at a local TCP listener that counts
every connection made to it. It also checks that no run changed the journal, took a lock or
wrote to the audit log. It exits 1 when any check fails or when the in-process tick is not under
0.1 s at p95 (a sanity guard of this script, not a test).

Run from the repository root:

    .venv/bin/python bench/tick_bench.py [--cases 10000] [--servers 4] [--repeat 200]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.config import config as config_mod  # noqa: E402
from agent.config import playbooks  # noqa: E402
from agent.config.config import Config  # noqa: E402
from agent.config.servers import Server  # noqa: E402
from agent.engine.engine import Engine  # noqa: E402
from agent.journal.journal import Journal  # noqa: E402

GUARD_SECONDS = 0.1
HOUR = 3600
# (playbook, stage reached, how long ago the case may have started, in hours: lo, hi).
# Each range keeps the next stage at least an hour in the future: standard's stages come at
# 0h/24h/72h, mail-first's at 0h/72h/96h.
_MIX = (
    ("standard", 0, 0, 23),
    ("standard", 1, 24, 71),
    ("mail-first", 0, 0, 71),
    ("mail-first", 1, 72, 95),
)
_WEIGHTS = (45, 25, 20, 10)


@dataclass
class Timing:
    """Samples of one measurement, in seconds."""

    label: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def minimum(self) -> float:
        return min(self.samples)


class BenchFailure(Exception):
    """A check of the benchmark failed: the numbers would not mean what they claim."""


class ConnectionTrap:
    """A TCP listener on 127.0.0.1 that counts every connection made to it.

    The SSH servers of the benchmark config point here, so a tick that tried to reach a
    server would show up in `count()` instead of going anywhere.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0

    def count(self) -> int:
        """Return how many connections reached the listener so far (drains the backlog)."""
        while True:
            try:
                conn, _addr = self.sock.accept()
            except BlockingIOError:
                return self.accepted
            conn.close()
            self.accepted += 1

    def close(self) -> None:
        self.sock.close()


class RefusingConnector:
    """A connector factory for Engine that records every call and raises.

    With nothing due, `Engine.tick()` must never ask for a connection; if it does, the run
    stops with the server's name instead of measuring something else.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, server: Server) -> object:
        self.calls.append(server.name)
        raise BenchFailure(f"tick asked for a connection to {server.name} with nothing due")


def build_state(db_path: Path, cases: int, servers: list[str], now: float,
                seed: int = 1) -> dict[str, int]:
    """Create the state db with `cases` open cases, none due at `now`; return counts by mix.

    Every case goes through `Journal.new_case` and `Journal.set_stage`, and gets one `done`
    change row per step of the stages it reached and one `case.opened` event, like a real
    history. Its next stage is due at least an hour after `now`. One transaction, so the build
    is not dominated by fsyncs.
    """
    rng = random.Random(seed)
    books = {name: playbooks.load(str(ROOT / "playbooks"), name) for name, *_ in _MIX}
    journal = Journal(str(db_path))
    counts: dict[str, int] = {}
    try:
        journal.db.execute("BEGIN")
        for i in range(cases):
            server = servers[i % len(servers)]
            account = f"u{i:05d}"
            name, stage, lo, hi = rng.choices(_MIX, weights=_WEIGHTS)[0]
            pb = books[name]
            started = now - rng.uniform(lo * HOUR, hi * HOUR)
            case = journal.new_case(server, "account", account, "billing", name,
                                    f"invoice {100000 + i}", "ssh:whmcs", started)
            journal.event(started, "case.opened", server=server, kind="account", name=account,
                          case_id=case.id, hold="billing", caller="ssh:whmcs", playbook=name)
            for st in pb.stages[: stage + 1]:
                at = started + st.after
                for spec in st.steps:
                    seq = journal.intent(case, spec.name, st.index, {"bench": True}, at)
                    journal.mark(seq, "done", at + 1)
            next_due = started + pb.stages[stage + 1].after
            if next_due < now + HOUR:
                raise BenchFailure(f"case {case.id} would be due too soon")
            journal.set_stage(case.id, stage, next_due)
            key = f"{name} stage {stage}"
            counts[key] = counts.get(key, 0) + 1
        journal.db.execute("COMMIT")
    finally:
        journal.close()
    return counts


def write_config(folder: Path, servers: list[str], trap_port: int) -> Path:
    """Write a valid config for `servers` into `folder`; return its path.

    The first server is `transport: local`; the others are `transport: ssh` to the
    connection trap on 127.0.0.1, with a dummy key (mode 600) and an empty known_hosts, so
    any connection attempt is counted and could never succeed.
    """
    key = folder / "bench-key"
    key.write_text("not a key: tick must not use it when nothing is due\n")
    key.chmod(0o600)
    (folder / "known_hosts").write_text("")
    lines = [
        f"state_db: {folder / 'state.db'}",
        f"audit_log: {folder / 'audit.jsonl'}",
        "lock_wait_seconds: 5",
        f"playbooks_dir: {ROOT / 'playbooks'}",
        f"landing_pages_dir: {ROOT / 'landing_pages'}",
        "default_playbook: standard",
        "servers:",
    ]
    for i, name in enumerate(servers):
        lines += [f"  {name}:", "    panel: linux"]
        if i == 0:
            lines += ["    transport: local"]
        else:
            lines += ["    transport: ssh", "    host: 127.0.0.1", f"    port: {trap_port}",
                      f"    key_file: {key}", f"    known_hosts: {folder / 'known_hosts'}",
                      "    connect_timeout: 2"]
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def fingerprint(cfg: Config) -> tuple:
    """Return what a tick with nothing due must leave unchanged: journal rows, locks, audit."""
    db = sqlite3.connect(cfg.state_db)
    try:
        rows = tuple(db.execute(q).fetchone() for q in (
            "SELECT count(*), total(stage), total(next_due_at), max(status) FROM cases",
            "SELECT count(*), max(seq), max(updated_at) FROM changes",
            "SELECT count(*), max(seq) FROM events",
        ))
    finally:
        db.close()
    locks = Path(cfg.state_db).parent / "locks"
    audit = Path(cfg.audit_log)
    return (rows, sorted(p.name for p in locks.iterdir()) if locks.exists() else [],
            audit.stat().st_size if audit.exists() else 0)


def time_calls(fn: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    """Call `fn` `warmup` times unmeasured, then `repeat` times; return each call's seconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def bench_tick(cfg: Config, repeat: int, refuse: RefusingConnector) -> Timing:
    """Time `Engine.tick()` on one open engine; ensure every call processes nothing."""
    journal = Journal(cfg.state_db)
    engine = Engine(cfg, journal, "bench", connector=refuse)

    def once() -> None:
        outcomes = engine.tick()
        if outcomes:
            raise BenchFailure(f"tick processed {len(outcomes)} targets; nothing should be due")

    try:
        return Timing("(a) Engine.tick(), engine open", time_calls(once, repeat))
    finally:
        engine.close()
        journal.close()


def bench_fresh_engine(config_path: Path, repeat: int, refuse: RefusingConnector) -> Timing:
    """Time config load + Journal open + Engine + tick + close, all in process.

    This is the CLI's `tick` work without interpreter start-up and imports.
    """
    def once() -> None:
        cfg = config_mod.load(str(config_path))
        journal = Journal(cfg.state_db)
        engine = Engine(cfg, journal, "bench", connector=refuse)
        try:
            if engine.tick():
                raise BenchFailure("tick processed a target; nothing should be due")
        finally:
            engine.close()
            journal.close()

    return Timing("(a) load config + open journal + tick", time_calls(once, repeat))


@dataclass
class Process:
    """One whole-process measurement: the command, how to check a run, its environment."""

    label: str
    argv: list[str]
    check: Callable[[subprocess.CompletedProcess], None]
    # Variables to set in the child, or to remove with None.
    env_changes: dict[str, str | None] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Return the child's environment: ours, without a config override, with changes."""
        env = {k: v for k, v in os.environ.items() if k != "SUSPENSION_AGENT_CONFIG"}
        env["SUSPENSION_AGENT_CALLER"] = "bench"
        for key, value in self.env_changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env


def bench_processes(processes: list[Process], repeat: int) -> list[Timing]:
    """Time each process from spawn to exit, `repeat` times, interleaved round-robin.

    Interleaving exposes every variant to the same background load. One unmeasured warm-up
    run of each fills its bytecode cache first; every run is checked with its `check`.
    """
    envs = [p.env() for p in processes]
    samples: list[list[float]] = [[] for _ in processes]
    for i in range(repeat + 1):
        for proc, env, out in zip(processes, envs, samples, strict=True):
            start = time.perf_counter()
            done = subprocess.run(proc.argv, cwd=ROOT, env=env, capture_output=True,
                                  check=False)
            elapsed = time.perf_counter() - start
            proc.check(done)
            if i:
                out.append(elapsed)
    return [Timing(p.label, out) for p, out in zip(processes, samples, strict=True)]


def check_cli_tick(proc: subprocess.CompletedProcess) -> None:
    """Ensure a `--json tick` run exited 0 and processed nothing."""
    if proc.returncode != 0:
        raise BenchFailure(f"tick exited {proc.returncode}: {proc.stdout!r} {proc.stderr!r}")
    reply = json.loads(proc.stdout)
    if reply.get("ok") is not True or reply.get("processed") != []:
        raise BenchFailure(f"tick replied {reply!r}; expected ok and nothing processed")


def check_exit_zero(proc: subprocess.CompletedProcess) -> None:
    """Ensure the process exited 0."""
    if proc.returncode != 0:
        raise BenchFailure(f"{proc.args!r} exited {proc.returncode}: {proc.stderr!r}")


def naive_due(cfg: Config, now: float, cache: bool) -> int:
    """Return how many open cases have a stage due at `now`, without the next_due_at index.

    Reads every open case and computes from its playbook whether any stage after the one it
    reached has started_at + after <= now. With `cache` false the playbook is loaded for each
    case (as `Engine.report` does per case); with `cache` true once per playbook name.
    """
    db = sqlite3.connect(cfg.state_db)
    books: dict[str, playbooks.Playbook] = {}
    due = 0
    try:
        rows = db.execute(
            "SELECT playbook, stage, started_at FROM cases WHERE status='open'").fetchall()
        for name, stage, started in rows:
            if cache:
                if name not in books:
                    books[name] = playbooks.load(cfg.playbooks_dir, name)
                pb = books[name]
            else:
                pb = playbooks.load(cfg.playbooks_dir, name)
            if any(s.index > stage and started + s.after <= now for s in pb.stages):
                due += 1
    finally:
        db.close()
    return due


def bench_naive(cfg: Config, repeat: int, cache: bool) -> Timing:
    """Time the naive full scan; ensure it agrees with the index that nothing is due."""
    def once() -> None:
        due = naive_due(cfg, time.time(), cache)
        if due:
            raise BenchFailure(f"the naive scan found {due} due cases; the setup is wrong")

    label = ("(c) naive, playbooks cached, full scan" if cache
             else "(c) naive, playbook loaded per case")
    # The uncached scan takes seconds a run: no unmeasured warm-up run for it.
    return Timing(label, time_calls(once, repeat, warmup=1 if cache else 0))


def query_plan(cfg: Config) -> str:
    """Return SQLite's plan for the due-cases query of `Journal.due_cases` (informative)."""
    db = sqlite3.connect(cfg.state_db)
    try:
        rows = db.execute("EXPLAIN QUERY PLAN SELECT * FROM cases WHERE status='open' AND "
                          "next_due_at<=? ORDER BY next_due_at", (time.time(),)).fetchall()
    finally:
        db.close()
    return "; ".join(r[-1] for r in rows)


def fmt(seconds: float) -> str:
    """Return `seconds` as a short human figure in µs, ms or s."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds:.2f} s"


def table(rows: list[Timing]) -> str:
    """Return the timings as an aligned text table."""
    width = max(len(t.label) for t in rows)
    out = [f"{'measurement':<{width}}  {'runs':>5}  {'median':>10}  {'p95':>10}  {'min':>10}"]
    out += [f"{t.label:<{width}}  {len(t.samples):>5}  {fmt(t.median):>10}  {fmt(t.p95):>10}  "
            f"{fmt(t.minimum):>10}" for t in rows]
    return "\n".join(out)


def machine() -> str:
    """Return one line naming the CPU, its count and the Python version."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, nproc {os.cpu_count()}, Python {sys.version.split()[0]}, "
            f"SQLite {sqlite3.sqlite_version}")


def run(args: argparse.Namespace) -> int:
    """Build the workload, run every measurement and its checks; return the exit code."""
    servers = [f"web{i + 1}" for i in range(args.servers)]
    trap = ConnectionTrap()
    refuse = RefusingConnector()
    with tempfile.TemporaryDirectory(prefix="tick-bench-") as tmp:
        folder = Path(tmp)
        config_path = write_config(folder, servers, trap.port)
        start = time.perf_counter()
        mix = build_state(folder / "state.db", args.cases, servers, time.time())
        built = time.perf_counter() - start
        cfg = config_mod.load(str(config_path))
        before = fingerprint(cfg)
        size = Path(cfg.state_db).stat().st_size
        print(f"machine: {machine()}")
        print(f"workload: {args.cases} open cases on {len(servers)} servers "
              f"({servers[0]} local, the rest ssh to a counting listener), nothing due; "
              f"state db {size / 1e6:.1f} MB, built in {built:.1f} s")
        print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(mix.items())))
        print(f"due-cases query plan: {query_plan(cfg)}")

        rows = [bench_tick(cfg, args.repeat, refuse),
                bench_fresh_engine(config_path, args.fresh_repeat, refuse)]
        # An installed package has bytecode (pip compiles it); a checkout run with
        # PYTHONDONTWRITEBYTECODE=1 compiles agent/*.py on every start. Measure the installed
        # case with a private cache (nothing is written under agent/), and the inherited one.
        cached: dict[str, str | None] = {"PYTHONPYCACHEPREFIX": str(folder / "pycache"),
                                         "PYTHONDONTWRITEBYTECODE": None}
        agent_cmd = [sys.executable, "-m", "agent", "--config", str(config_path), "--json",
                     "tick"]
        processes = [Process("(b) python -m agent --json tick", agent_cmd, check_cli_tick,
                             cached)]
        script = Path(sys.executable).parent / "suspension-agent"
        if script.exists():
            processes.append(Process(
                "(b) suspension-agent --json tick (script)",
                [str(script), "--config", str(config_path), "--json", "tick"],
                check_cli_tick, cached))
        processes.append(Process("(b) python -m agent --json tick, env as is*", agent_cmd,
                                 check_cli_tick))
        processes.append(Process("    python -c pass (interpreter start only)",
                                 [sys.executable, "-c", "pass"], check_exit_zero, cached))
        rows += bench_processes(processes, args.cli_repeat)
        rows.append(bench_naive(cfg, args.baseline_repeat, cache=False))
        rows.append(bench_naive(cfg, args.repeat, cache=True))

        after = fingerprint(cfg)
        if after != before:
            raise BenchFailure(f"the runs changed state: before {before!r}, after {after!r}")
        connects = trap.count()
        trap.close()
        if refuse.calls or connects:
            raise BenchFailure(f"connections: factory {refuse.calls!r}, TCP {connects}")

    print()
    print(table(rows))
    tick, fresh, naive, cached = rows[0], rows[1], rows[-2], rows[-1]
    print()
    print("ratios of medians, naive baseline / indexed tick:")
    for base in (naive, cached):
        print(f"  {base.label[4:]:<32} {base.median / tick.median:>12,.0f}x the open-engine "
              f"tick, {base.median / fresh.median:>8,.1f}x config load + journal open + tick")
    print(f"* inherited environment: PYTHONDONTWRITEBYTECODE="
          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}, agent/__pycache__ "
          f"{'present' if (ROOT / 'agent' / '__pycache__').exists() else 'absent'}; the other "
          "(b) rows run with a filled bytecode cache, like an installed package")
    print("connections opened: 0 (connector factory calls 0, TCP connections to the trap 0); "
          "journal, locks and audit log unchanged")
    if tick.p95 >= GUARD_SECONDS:
        print(f"FAIL: in-process tick p95 {fmt(tick.p95)} is not under {fmt(GUARD_SECONDS)}",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse options and run the benchmark; return 0, or 1 when a check or the guard fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="open cases (default 10000)")
    parser.add_argument("--servers", type=int, default=4, help="configured servers (default 4)")
    parser.add_argument("--repeat", type=int, default=200,
                        help="runs of the in-process tick and the cached scan (default 200)")
    parser.add_argument("--fresh-repeat", type=int, default=50,
                        help="runs of config load + journal open + tick (default 50)")
    parser.add_argument("--cli-repeat", type=int, default=30,
                        help="runs of each whole process (default 30)")
    parser.add_argument("--baseline-repeat", type=int, default=5,
                        help="runs of the naive scan that loads a playbook per case (default 5)")
    args = parser.parse_args(argv)
    if args.servers < 2 or args.cases < 1:
        parser.error("need at least 2 servers and 1 case")
    try:
        return run(args)
    except BenchFailure as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
