"""Load and validate the agent config (its servers: agent/config/servers.py): every problem
reported at once, with its path."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from agent import PROJECT_ROOT, ids
from agent.config import callers, servers, webhooks
from agent.config.callers import CallerPolicy
from agent.config.servers import Server
from agent.config.validate import (
    Problems,
    duration,
    integer,
    join,
    mapping,
    string,
    string_list,
)
from agent.config.webhooks import Endpoint
from agent.errors import BadInput, ConfigError

DEFAULT_PATH = "/etc/suspension-agent/config.yaml"
LANGUAGES = ("en", "es", "pt", "nl", "de", "fr")


@dataclass(frozen=True)
class Branding:
    """What the landing page shows."""

    company: str = "Your hosting provider"
    contact_url: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    language: str = "en"
    retry_after: int = 3600


@dataclass(frozen=True)
class Config:
    """The whole validated config."""

    path: str
    state_db: str
    audit_log: str
    lock_wait_seconds: int
    playbooks_dir: str
    landing_pages_dir: str
    default_playbook: str
    branding: Branding
    protected_accounts: tuple[str, ...]
    servers: dict[str, Server]
    # Accounts below this uid (and `nobody`) are system accounts: never suspended.
    min_uid: int = 1000
    callers: dict[str, CallerPolicy] = field(default_factory=dict)
    # How long the reply of a call made with --idempotency-key is kept for its retries.
    idempotency_retention: int = 35 * 86400
    # Webhook endpoints billing listens on (agent/config/webhooks.py).
    webhooks: dict[str, Endpoint] = field(default_factory=dict)
    # The Ed25519 key that signs the audit chain's checkpoints, and how often (seconds).
    audit_checkpoint_key: str | None = None
    audit_checkpoint_every: int = 3600
    # Where `case export` without --out (the only form over SSH) writes dossiers.
    dossier_dir: str = "/var/lib/suspension-agent/dossiers"


_TOP = {"state_db", "audit_log", "lock_wait_seconds", "playbooks_dir", "landing_pages_dir",
        "default_playbook", "branding", "protected_accounts", "servers", "min_uid", "callers",
        "idempotency_retention", "webhooks", "audit_checkpoint_key", "audit_checkpoint_every",
        "dossier_dir"}
_BRANDING = {f.name for f in fields(Branding)}


def _branding(doc: object, problems: Problems) -> Branding:
    d = mapping(doc, "branding", problems, _BRANDING)
    kw = {k: string(d, k, "branding", problems) for k in
          ("company", "contact_url", "contact_email", "contact_phone") if k in d}
    kw = {k: v for k, v in kw.items() if v is not None}
    language = string(d, "language", "branding", problems, default="en", choices=LANGUAGES)
    retry = integer(d, "retry_after", "branding", problems, 3600, 1, 30 * 86400)
    return Branding(**kw, language=language or "en", retry_after=retry)


def parse(doc: object, source: str, base: Path) -> Config:
    """Return a Config from a parsed YAML document; raise ConfigError listing every problem."""
    problems = Problems()
    d = mapping(doc, "", problems, _TOP)
    found: dict[str, Server] = {}
    raw_servers = d.get("servers")
    if not isinstance(raw_servers, dict) or not raw_servers:
        problems.add("servers", "must be a mapping with at least one server")
    else:
        for name, sdoc in raw_servers.items():
            try:
                ids.server_name(name if isinstance(name, str) else "")
            except BadInput as exc:
                problems.add(join("servers", str(name)), str(exc))
                continue
            server = servers.parse(name, sdoc, problems, base)
            if server is not None:
                found[name] = server

    def where(key: str, default: str) -> str:
        value = string(d, key, "", problems, default=default) or default
        return str(base / value) if not os.path.isabs(value) else value

    config = Config(
        path=source,
        state_db=where("state_db", "/var/lib/suspension-agent/state.db"),
        audit_log=where("audit_log", "/var/log/suspension-agent/audit.jsonl"),
        lock_wait_seconds=integer(d, "lock_wait_seconds", "", problems, 5, 0, 600),
        playbooks_dir=where("playbooks_dir", str(PROJECT_ROOT / "playbooks")),
        landing_pages_dir=where("landing_pages_dir", str(PROJECT_ROOT / "landing_pages")),
        default_playbook=string(d, "default_playbook", "", problems, default="standard") or "",
        branding=_branding(d.get("branding"), problems),
        protected_accounts=tuple(string_list(d, "protected_accounts", "", problems)),
        servers=found,
        min_uid=integer(d, "min_uid", "", problems, 1000, 0, 1 << 31),
        callers=callers.parse(d.get("callers"), problems),
        idempotency_retention=_delay(d, "idempotency_retention", problems, "35d", 3600,
                                     "1h, like 35d"),
        webhooks=webhooks.parse(d.get("webhooks"), problems),
        audit_checkpoint_key=(where("audit_checkpoint_key", "")
                              if d.get("audit_checkpoint_key") else None),
        audit_checkpoint_every=_delay(d, "audit_checkpoint_every", problems, "1h", 60,
                                      "1m, like 1h"),
        dossier_dir=where("dossier_dir", "/var/lib/suspension-agent/dossiers"),
    )
    if problems:
        raise ConfigError(source, problems.items)
    return config


def _delay(d: dict, key: str, problems: Problems, default: str, least: int,
           example: str) -> int:
    """Return the delay under `key` in seconds (a string like 35d, at least `least`)."""
    raw = d.get(key, default)
    seconds = duration(raw) if isinstance(raw, str) else None
    if seconds is None or seconds < least:
        problems.add(key, f"must be a delay of at least {example}")
        return int(duration(default) or 0)
    return seconds


MAX_FILE = 1 << 20  # a config or playbook is a few KiB; anything past 1 MiB is not one


def read_admin_file(path: str, what: str) -> object:
    """Return the YAML document of an admin's file (config, playbook).

    Ensures it is a regular file (never blocks on a FIFO, never reads a device), at most
    MAX_FILE bytes, not writable by others, UTF-8; a parse error names the line and column
    but never echoes the file's content (it may not be a config at all: /etc/shadow).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(path, [f"cannot read {what}: {exc.strerror}"]) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(path, [f"the {what} is not a regular file"])
        if st.st_mode & 0o002:
            raise ConfigError(path, [f"the {what} is writable by others (mode "
                                     f"{st.st_mode & 0o777:o}); chmod o-w it"])
        data = os.read(fd, MAX_FILE + 1)
        while len(data) <= MAX_FILE and (more := os.read(fd, MAX_FILE + 1 - len(data))):
            data += more
    finally:
        os.close(fd)
    if len(data) > MAX_FILE:
        raise ConfigError(path, [f"the {what} is larger than {MAX_FILE} bytes"])
    try:
        return yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"the {what} is not UTF-8 text"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(path, [f"malformed YAML: {problem}{where}"]) from exc


def load(path: str | None) -> Config:
    """Read and validate the config file; raise ConfigError (exit 78) on any problem."""
    path = path or os.environ.get("SUSPENSION_AGENT_CONFIG") or DEFAULT_PATH
    doc = read_admin_file(path, "config")
    return parse(doc, path, Path(path).resolve().parent)
