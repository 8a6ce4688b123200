"""Shared fixtures: a real test host (session-wide) and helpers to call the agent's CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from agent import PROJECT_ROOT
from agent.cli import TEST_NOW_ENV
from tests.hosts.provision import provision, write_config
from tests.hosts.restore import Baseline
from tests.hosts.testhost import TestHost

T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def host_index(offset: int = 0) -> int:
    """Return this test process's host index (namespace, addresses, tree).

    SA_TESTHOST_INDEX lets two runs on one machine (a CI clone beside a working copy) keep
    apart; each pytest-xdist worker (gw0, gw1, ...) gets its own host 50 indexes further on.
    `offset` picks a further host of the same process (a second host layout).
    """
    base = int(os.environ.get("SA_TESTHOST_INDEX", "41"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = base + 50 * int(worker.removeprefix("gw") or 0) + offset
    if not 1 <= index <= 254:
        raise RuntimeError(f"test host index {index} out of 1-254 (SA_TESTHOST_INDEX={base}, "
                           f"worker {worker})")
    return index


def start(host: TestHost, prepare: Callable[[TestHost], T], what: str = "test host") -> T:
    """Bring `host` up and return what `prepare(host)` returns. When either fails, the host
    is taken down again and the test fails under CI=true or as root (skips only elsewhere:
    a machine without root or debootstrap)."""
    try:
        host.up()
        return prepare(host)
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported the same way
        host.down()
        if IN_CI or os.geteuid() == 0:
            pytest.fail(f"{what} could not start: {exc}")
        pytest.skip(f"{what} needs root and debootstrap: {exc}")


@pytest.fixture(scope="session")
def host():
    """A running test host with accounts alice and bob; fails (never skips) under CI=true."""
    index = host_index()
    h = TestHost("t1" if index == 41 else f"t{index}", index)
    start(h, provision)
    h.baseline = Baseline.take(h)
    yield h
    h.down()


@pytest.fixture(scope="module")
def mapped(host):
    """The host map installed on the shared host for its accounts, as docs/linux-host.md
    says (removed again, and the baseline as it was, at the end of the module)."""
    from agent.config.config import Branding
    from tests.hosts import hostmap_prep
    from tests.hosts.provision import ACCOUNTS

    # The branding of tests/hosts/provision.write_config, which the agent renders with.
    branding = Branding(company="Example Hosting",
                        contact_url="https://billing.example.invalid/",
                        contact_email="billing@example.invalid", language="en",
                        retry_after=1800)
    made = hostmap_prep.install(host, branding, list(ACCOUNTS))
    original, host.baseline = host.baseline, type(host.baseline).take(host)
    yield host
    hostmap_prep.remove(host, made)
    host.baseline = original


@pytest.fixture
def agent_env(host, tmp_path):
    """A fresh agent config (own state db) reaching the host; playbooks copied beside it."""
    books = tmp_path / "playbooks"
    shutil.copytree(PROJECT_ROOT / "playbooks", books)
    (books / "web-now.yaml").write_text(
        "description: backup and landing page at once\n"
        "stages:\n  - after: 0s\n    steps: [backup, landing_page]\n")
    cfg = write_config(host, tmp_path / "agent", playbooks_dir=str(books))
    agent = Agent(cfg, host)
    yield agent
    # One failure stays one failure: lift whatever the test left suspended, then put back
    # anything still different from the provisioned host (a stuck revert, a killed run).
    try:
        _rc, reply, _out = agent("status", timeout=60)
        targets = (reply or {}).get("targets", [])
        # Trees first (their children's cases close with them), then the accounts.
        for target in sorted(targets, key=lambda t: t["target"]["kind"] == "account"):
            kind, name = target["target"]["kind"], target["target"]["name"]
            which = {"server": ["--whole-server"], "reseller": ["--reseller", name]}.get(
                kind, [name])
            for hold in target["holds"] or ["billing"]:
                agent("unsuspend", host.name, *which, "--hold", hold, timeout=60)
    except subprocess.TimeoutExpired:
        pass
    leftovers = host.baseline.restore(host)
    if leftovers:
        print(f"teardown restored the test host: {leftovers[:10]}")


class Agent:
    """Runs `python -m agent` as a separate process, as the billing system or an admin would."""

    def __init__(self, config: Path, host: TestHost) -> None:
        self.config = config
        self.host = host
        # The agent's clock (epoch seconds) for delays, injected through the CLI's test hook;
        # None: the wall clock.
        self.now: float | None = None

    def _env(self, extra: dict | None = None) -> dict:
        env = {**os.environ, "SUSPENSION_AGENT_CONFIG": str(self.config)}
        if self.now is not None:
            env[TEST_NOW_ENV] = repr(self.now)
        return {**env, **(extra or {})}

    def spawn(self, *args: str) -> subprocess.Popen:
        """Start the CLI in the background (stdout/stderr piped, text) and return at once."""
        full_env = self._env()
        return subprocess.Popen([sys.executable, "-m", "agent", "--json", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=full_env, cwd=PROJECT_ROOT)

    def text(self, *args: str, timeout: float = 120) -> tuple[int, None, str]:
        """Run the CLI as an admin would read it (no --json); return (rc, None, stdout)."""
        proc = subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                              text=True, env=self._env(), timeout=timeout, cwd=PROJECT_ROOT,
                              check=False)
        return proc.returncode, None, proc.stdout

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 120
                 ) -> tuple[int, dict | None, str]:
        full_env = self._env(env)
        proc = subprocess.run([sys.executable, "-m", "agent", "--json", *args],
                              capture_output=True, text=True, env=full_env, timeout=timeout,
                              cwd=PROJECT_ROOT, check=False)
        try:
            reply = json.loads(proc.stdout) if proc.stdout.strip() else None
        except json.JSONDecodeError:
            reply = None
        return proc.returncode, reply, proc.stdout + proc.stderr


def tree_state(host: TestHost, *folders: str) -> dict[str, tuple]:
    """Return every file and folder under `folders` with content hash, mode and owner."""
    state: dict[str, tuple] = {}
    for folder in folders:
        base = host.path(folder)
        if not base.exists():
            state[folder] = ("absent",)
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                digest = (hashlib.sha256(p.read_bytes()).hexdigest()
                          if p.is_file() and not p.is_symlink() else os.readlink(p)
                          if p.is_symlink() else "dir")
                state[str(p.relative_to(host.root))] = (digest, st.st_mode, st.st_uid, st.st_gid)
    return state


WATCHED = ("/etc/apache2", "/var/lib/suspension-agent", "/var/lib/suspension-agent-cases",
           "/home/alice", "/home/bob")


RECORDS = "var/lib/suspension-agent-cases"


def no_records(state: dict[str, tuple]) -> dict[str, tuple]:
    """Return a tree_state/snapshot without the server's case records (present, rightly,
    while a case is open or a change is stuck)."""
    return {k: v for k, v in state.items() if not k.lstrip("/").startswith(RECORDS)}
