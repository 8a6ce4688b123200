"""Playbooks: ordered stages, each with a delay from the start of the case and its steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent import ids
from agent.config.config import read_admin_file
from agent.config.validate import Problems, duration, join, mapping, size
from agent.errors import BadInput, ConfigError
from agent.steps import tc

# Every step the schema knows, with its parameters and how to check each one. The step
# registry (agent.steps) must cover exactly these names; a test keeps the two in step.
_DUR = "duration"
_SIZE = "size like 500M or 20G"
_PORTS = "a list of TCP ports (1-65535)"
_RATE = "a rate like 10mbit (kbit, mbit, gbit; 64kbit to 5gbit)"
_IFACES = "a list of interface names like eth0"
STEP_PARAMS: dict[str, dict[str, Any]] = {
    "backup": {"reuse_if_newer_than": _DUR, "databases": bool, "max_size": _SIZE,
               "max_time": _DUR},
    "landing_page": {"language": ("en", "es", "pt", "nl", "de", "fr")},
    # outgoing: what happens to the account's outgoing mail; `hold` (queue it, cPanel's
    # hold_outgoing_email) only where the driver offers it, `suspend` (reject) everywhere.
    "mail_block": {"incoming": ("accept", "reject", "defer"), "outgoing": ("suspend", "hold")},
    "ftp_lock": {},
    "db_lock": {},
    "panel_lock": {"kill_processes": bool},
    # ports: the TCP ports closed (default: the driver's mail client ports); close_smtp
    # also closes 25 (by default it stays open, so mail for the domains still arrives).
    "firewall_block": {"close_smtp": bool, "ports": _PORTS},
    "panel_suspend": {},
    # rate: what the server's public interfaces may send (SSH and exempt addresses are not
    # shaped); interfaces: which ones (default: the default routes' and the agent's own).
    "throttle": {"rate": _RATE, "interfaces": _IFACES},
}
# Parameters a step cannot do without.
REQUIRED_PARAMS = {"throttle": ("rate",)}
NON_RESTRICTIVE = {"backup"}
# Steps that act on the server itself, once per whole-server case (its own changes, not a
# child's): a playbook holding one is for `--whole-server` targets only.
SERVER_STEPS = frozenset({"firewall_block", "throttle"})
# Internal server steps a whole-server case adds to a stage because an account step is in
# it (playbooks never name them): the web stage's page on the server's bare addresses.
IMPLIED_SERVER_STEPS = {"landing_page": "server_landing"}


@dataclass(frozen=True)
class StepSpec:
    """One step of a stage and its parameters."""

    name: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """Steps applied together once `after` seconds have passed since the case started."""

    index: int
    after: int
    steps: tuple[StepSpec, ...]


@dataclass(frozen=True)
class Playbook:
    """A validated playbook."""

    name: str
    path: str
    description: str
    stages: tuple[Stage, ...]

    def step_names(self) -> list[str]:
        return [s.name for st in self.stages for s in st.steps]

    def server_steps(self) -> list[str]:
        """Return the names of the steps that act on the server itself (SERVER_STEPS)."""
        return [n for n in self.step_names() if n in SERVER_STEPS]

    def whole_server_part(self, available: Callable[[str], bool]) -> Playbook:
        """Return the server steps of each stage of a whole-server case: the playbook's
        own, then those its account steps imply (IMPLIED_SERVER_STEPS, with their params)
        where `available(name)` says the driver has them."""
        def part(stage: Stage) -> Stage:
            own = [s for s in stage.steps if s.name in SERVER_STEPS]
            implied = [StepSpec(IMPLIED_SERVER_STEPS[s.name], s.params) for s in stage.steps
                       if s.name in IMPLIED_SERVER_STEPS
                       and available(IMPLIED_SERVER_STEPS[s.name])]
            return replace(stage, steps=tuple(own + implied))

        return replace(self, stages=tuple(part(st) for st in self.stages))

    def split(self, server: bool) -> Playbook:
        """Return this playbook with only its server steps (`server`) or only its account
        steps in each stage (a stage left empty stays, so indexes and delays hold)."""
        return replace(self, stages=tuple(
            replace(st, steps=tuple(s for s in st.steps if (s.name in SERVER_STEPS) == server))
            for st in self.stages))


def _param_ok(kind: Any, value: Any) -> bool:
    if kind == _DUR:
        return duration(value) is not None
    if kind == _SIZE:
        return size(value) is not None
    if kind is bool:
        return isinstance(value, bool)
    if kind == _PORTS:
        return isinstance(value, list) and bool(value) and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536 for v in value)
    if kind == _RATE:
        return tc.rate_bits(value) is not None
    if kind == _IFACES:
        return isinstance(value, list) and bool(value) and all(tc.iface_ok(v) for v in value)
    return value in kind


def _step(entry: Any, path: str, problems: Problems) -> StepSpec | None:
    if isinstance(entry, str):
        name, params = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        name, params = next(iter(entry.items()))
        params = params if params is not None else {}
    else:
        problems.add(path, "a step is a name or a one-key mapping {name: {parameters}}")
        return None
    if name not in STEP_PARAMS:
        problems.add(path, f"unknown step {name!r} (known: {', '.join(STEP_PARAMS)})")
        return None
    if not isinstance(params, dict):
        problems.add(join(path, name), "parameters must be a mapping")
        return None
    spec = STEP_PARAMS[name]
    for key, value in params.items():
        if key not in spec:
            problems.add(join(join(path, name), key), f"unknown parameter of {name}")
        elif not _param_ok(spec[key], value):
            want = spec[key] if isinstance(spec[key], str) else (
                "true/false" if spec[key] is bool else " | ".join(spec[key]))
            problems.add(join(join(path, name), key), f"must be {want}")
    for key in REQUIRED_PARAMS.get(name, ()):
        if key not in params:
            problems.add(join(join(path, name), key), f"{name} needs it ({spec[key]})")
    return StepSpec(name, dict(params))


def parse(doc: Any, name: str, source: str) -> Playbook:
    """Return a Playbook from parsed YAML; raise ConfigError listing every problem."""
    problems = Problems()
    d = mapping(doc, "", problems, {"description", "stages"})
    raw = d.get("stages")
    stages: list[Stage] = []
    if not isinstance(raw, list) or not raw:
        problems.add("stages", "must be a non-empty list")
        raw = []
    previous = -1
    for i, sdoc in enumerate(raw):
        path = join("stages", i)
        s = mapping(sdoc, path, problems, {"after", "steps"})
        after = duration(s.get("after", "0s"))
        if after is None:
            problems.add(join(path, "after"), "must be a non-negative delay like 0s, 90s, 24h, 3d")
            after = previous if previous >= 0 else 0
        elif after <= previous:
            problems.add(join(path, "after"), "stages must be in strictly increasing delay order")
        previous = max(previous, after)
        steps_raw = s.get("steps")
        if not isinstance(steps_raw, list) or not steps_raw:
            problems.add(join(path, "steps"), "must be a non-empty list")
            steps_raw = []
        steps = [_step(e, join(join(path, "steps"), j), problems) for j, e in enumerate(steps_raw)]
        stages.append(Stage(i, after, tuple(x for x in steps if x is not None)))
    _check_backup_first(stages, problems)
    seen: set[str] = set()
    for st in stages:
        for spec in st.steps:
            if spec.name in seen:
                problems.add(join("stages", st.index), f"step {spec.name!r} appears twice")
            seen.add(spec.name)
    if problems:
        raise ConfigError(source, problems.items)
    description = d.get("description") if isinstance(d.get("description"), str) else ""
    return Playbook(name, source, description, tuple(stages))


def _check_backup_first(stages: list[Stage], problems: Problems) -> None:
    """Ensure nothing restrictive comes before (or without) a backup."""
    for st in stages:
        for j, spec in enumerate(st.steps):
            if spec.name == "backup":
                return
            if spec.name not in NON_RESTRICTIVE:
                problems.add(
                    join(join("stages", st.index), f"steps[{j}]"),
                    f"{spec.name!r} restricts the account before any backup step; "
                    "put backup first",
                )
                return


def load(directory: str, name: str) -> Playbook:
    """Load playbook `name` from `directory`; BadInput if unknown, ConfigError if invalid."""
    ids.playbook_name(name)
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(directory).glob("*.yaml"))
        raise BadInput(f"unknown playbook {name!r} (known: {', '.join(known) or 'none'})")
    return parse(read_admin_file(str(path), "playbook"), name, str(path))
