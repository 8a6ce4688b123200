"""Benchmark: a reseller's whole tree in one call (issue 15), cPanel half: the simulator's
WHM and scripts on a test host with the real Apache (tests/hosts/cpanel).

Workload, as bench/reseller_bench.py has it on linux: reseller rsl0 owning the sub-resellers
rsl1-rsl3 (on cPanel each reseller is an account with a site of its own), 88 user accounts
(22 under each reseller), 104 user sites (16 accounts with an addon domain), each with its
`www.` alias: 208 user names, and the 8 names of the resellers' own sites. SSH (and with it
whmapi1, transport cli) goes through the delay proxy (25 ms each way, 2 ms jitter); the
watcher asks every name over HTTP (and the first over HTTPS) from outside. In one run:

  agent     `suspend --reseller rsl0` (the resellers' logins, then backup reused + landing
            page for all 92 accounts) and `unsuspend`;
  agent-ms2 the same with sshd's MaxSessions 2;
  naive     a shell script's way: per account one SSH connection for each command: write
            the std and the ssl include, rebuildhttpdconf, restartsrv_httpd (and back);
  floor     the least the mechanism needs: one connection, one command writing (removing)
            all 184 include files, one rebuildhttpdconf, one restartsrv_httpd.

Counted besides the linux columns: rebuildhttpdconf and restartsrv_httpd runs (the
simulator's script log) and Apache reloads (its error log; cPanel's own suspendacct of the
four reseller accounts restarts Apache too, A7 step 11). Run from the repository root as root:

    .venv/bin/python bench/reseller_cpanel.py [--repeat 3] [--skip-naive]
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import reseller_bench as rb  # noqa: E402

from tests.hosts.cpanel import calls  # noqa: E402
from tests.hosts.cpanel.agent import make_agent  # noqa: E402
from tests.hosts.cpanel.layout import Account  # noqa: E402
from tests.hosts.cpanel.resellers import add_accounts  # noqa: E402
from tests.hosts.delayproxy import DelayProxy  # noqa: E402
from tests.hosts.testhost import TestHost  # noqa: E402

RESELLERS = ("rsl0", "rsl1", "rsl2", "rsl3")
ACCOUNTS = tuple(f"u{i:03d}" for i in range(1, 89))
ADDONS = ACCOUNTS[:16]
USERDATA = "/etc/apache2/conf.d/userdata"
SCRIPTS = "/usr/local/cpanel/scripts"
COUNTED = ("rebuildhttpdconf", "restartsrv_httpd")
# The linux bench's files and cPanel's own (the simulator's script log left out).
_WHERE = ("/etc/apache2 /etc/ssh /etc/passwd /etc/shadow /etc/group /etc/trueuserowners "
          "/etc/userdomains /home /var/cpanel /var/lib/suspension-agent-cases -xdev "
          "-path /var/cpanel/sim -prune -o")
SNAPSHOT = (f"find {_WHERE} -printf '%p %y %m %U:%G\\n' 2>/dev/null | sort; "
            f"find {_WHERE} -type f -print0 | sort -z | xargs -0 sha256sum")


def workload() -> list[Account]:
    """The tree's accounts: the resellers first (rsl0 owns itself), then the users."""
    out = [Account(r, "rsl0", f"{r}-pass-1", f"{r}.test", {}, {}, [], reseller=True)
           for r in RESELLERS]
    for i, user in enumerate(ACCOUNTS):
        addons = ({f"{user}-addon.test": (f"{user}-addon.{user}.test", f"{user}-addon.test")}
                  if user in ADDONS else {})
        out.append(Account(user, RESELLERS[i // 22], f"{user}-pass-1", f"{user}.test",
                           addons, {}, []))
    return out


def names() -> list[str]:
    """Every name the watcher asks: each user site and addon with www., then the resellers'."""
    users = [d for a in workload()[len(RESELLERS):]
             for site in (a.main, *a.addons) for d in (site, f"www.{site}")]
    return users + [d for r in RESELLERS for d in (f"{r}.test", f"www.{r}.test")]


def include_paths() -> list[str]:
    """The naive script's and the floor's include files: std and ssl of every account."""
    return [f"{USERDATA}/{kind}/2_4/{a.user}/zz-bench.conf"
            for a in workload() for kind in ("std", "ssl")]


CONF = ("RewriteEngine On\nRewriteRule ^ - [R=503,L]\nHeader always set Retry-After 60\n"
        "Header always set Cache-Control no-store\nHeader always set X-Robots-Tag noindex\n")
# One command for everything (the floor): paths on stdin, the include written to each (or
# each removed), then one rebuild and one restart.
FLOOR_CMD = ('side=$1; shift; while IFS= read -r p; do if [ "$side" = suspend ]; then '
             'mkdir -p "${p%/*}" && printf %s "$CONF" > "$p" || exit 1; else rm -f "$p"; '
             'rmdir "${p%/*}" 2>/dev/null; fi; done; '
             f'{SCRIPTS}/rebuildhttpdconf >/dev/null && {SCRIPTS}/restartsrv_httpd >/dev/null')
NAIVE = rb.NAIVE.split("conf = (")[0] + f"""conf = {CONF!r}
n = 0
for a in accounts:
    for kind in ("std", "ssl"):
        folder = f"{USERDATA}/{{kind}}/2_4/{{a}}"
        if side == "suspend":
            one(f"mkdir -p {{folder}} && cat > {{folder}}/zz-bench.conf", conf.encode())
        else:
            one(f"rm -f {{folder}}/zz-bench.conf && rmdir {{folder}}")
        n += 1
    one("{SCRIPTS}/rebuildhttpdconf"); one("{SCRIPTS}/restartsrv_httpd"); n += 2
print("SA-COUNTS " + json.dumps({{"channels": n, "commands": n, "rss_kib":
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}), file=sys.stderr)
"""
FLOOR = rb.FLOOR.replace('exec_command(f"cat > {path}.new && mv -f {path}.new {path}")',
                         "exec_command(path)")


def counters(host: TestHost) -> dict[str, int]:
    runs = calls.script_runs(host)
    return {name: runs.get(name, 0) for name in COUNTED}


def run(host: TestHost, token: str, work: Path, repeat: int, naive: bool) -> dict:
    proxy = DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.002)
    agent_cfg = make_agent(host, work, "cli", token, proxy_port=proxy.port)
    (work / "playbooks" / "bench.yaml").write_text(rb.PLAYBOOK)
    cfg = agent_cfg.config
    cfg.write_text(cfg.read_text().replace("lock_wait_seconds: 2", "lock_wait_seconds: 30"))
    agent = [sys.executable, "-c", rb.COUNTED, "--json", "--config", str(cfg)]
    ssh = ["127.0.0.1", str(proxy.port), str(work / "agent" / "id_ed25519"),
           str(work / "agent" / "known_hosts")]
    watched = names()
    results: dict[str, list[dict]] = {}

    def add(key: str, value: dict) -> None:
        results.setdefault(key, []).append(value)

    def timed(argv: list[str], suspended: bool, stdin: bytes = b"",
              names: list[str] | None = None, audit: Path | None = None) -> dict:
        # The agent's runs: the resellers' own sites are watched too, reported apart (they
        # are cPanel's suspendreseller's, lifted with the reseller logins, last).
        return rb.timed(host, argv, suspended, proxy, stdin, audit=audit,
                        names=watched if names is None else names, counters=counters,
                        apart=frozenset(watched[-2 * len(RESELLERS):]) if names is None
                        else frozenset())

    suspend = [*agent, "suspend", host.name, "--reseller", "rsl0", "--playbook", "bench"]
    unsuspend = [*agent, "unsuspend", host.name, "--reseller", "rsl0"]
    try:
        t0 = time.monotonic()
        first = subprocess.run(suspend, cwd=ROOT, env=rb.ENV, capture_output=True,
                                  timeout=3600, check=False)
        if first.returncode != 0:
            raise RuntimeError((first.stdout + first.stderr).decode()[-3000:])
        add("backups (first suspend, 92 archives)", {"total": time.monotonic() - t0})
        timed(unsuspend, False)
        for _ in range(repeat):
            for who, sessions in (("agent", None), ("agent-ms2", 2)):
                rb.set_max_sessions(host, sessions)
                before = rb.snapshot(host, SNAPSHOT)
                add(f"{who} suspend", timed(suspend, True,
                                            audit=work / "agent" / "audit.jsonl"))
                add(f"{who} unsuspend", timed(unsuspend, False))
                diff = rb.same_files(before, rb.snapshot(host, SNAPSHOT))
                add(f"{who} byte-identical after the round trip", {"ok": diff is None})
                if diff is not None:
                    raise RuntimeError(f"{who}: files differ after the round trip: {diff}")
            rb.set_max_sessions(host, None)
            # The floor covers the users' sites only: the resellers' own are cPanel's to
            # suspend (suspendreseller), which no floor of the web stage can skip.
            paths = "\n".join(include_paths()).encode() + b"\n"
            floor = [sys.executable, "-c", FLOOR, *ssh,
                     f"CONF={shlex.quote(CONF)} sh -c {shlex.quote(FLOOR_CMD)} sh "]
            add("floor suspend", timed([*floor[:-1], floor[-1] + "suspend"], True, paths,
                                       names=watched[:-2 * len(RESELLERS)]))
            add("floor unsuspend", timed([*floor[:-1], floor[-1] + "unsuspend"], False, paths,
                                         names=watched[:-2 * len(RESELLERS)]))
        accounts = json.dumps([a.user for a in workload()]).encode()
        for side, suspended in (("suspend", True), ("unsuspend", False)) if naive else ():
            add(f"naive {side}", timed([sys.executable, "-c", NAIVE, *ssh, side], suspended,
                                       accounts, names=watched[:-2 * len(RESELLERS)]))
    finally:
        rb.set_max_sessions(host, None)
        proxy.stop()
    return results


def main() -> int:
    args = rb.arguments(__doc__)
    from tests.hosts.cpanel.provision import provision_cpanel

    host = TestHost("cbench", int(os.environ.get("SA_TESTHOST_INDEX", "38")))
    work = Path(tempfile.mkdtemp(prefix="sa-reseller-cpanel-bench-"))
    try:
        host.up()
        cpanel = provision_cpanel(host)
        add_accounts(host, workload())
        results = run(host, cpanel.root_token, work, args.repeat, not args.skip_naive)
        print(rb.table(results, extra=COUNTED, apart="resellers' own sites"))
    finally:
        host.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
