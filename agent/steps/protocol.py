"""The step protocol: a Step plans, applies, reverts and verifies one kind of reversible
change; its Plan holds the exact actions (agent/steps/actions.py) and the facts found; its
Context is everything it needs for one target, passed explicitly; a batch of accounts
shares facts read once through a Memo."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.config.config import Branding, Config
from agent.config.servers import Server
from agent.connector import Connector
from agent.steps.actions import Action


@dataclass
class Plan:
    """The exact actions a step will take, and facts it found; empty means nothing to do."""

    step: str
    actions: list[Action] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    undo: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    # A server-wide lock the runner holds while carrying the plan out (shared files).
    lock: str | None = None
    # Carried out by the runner after `apply` (or after the revert's actions), before the
    # probe: what every account of the server needs once, such as Apache's configtest and
    # graceful. A batch of accounts carries out equal finish actions once for all of them
    # (`merge_finish`). A plan with a `lock` has none (its apply does everything itself).
    finish: list[Action] = field(default_factory=list)
    # A server-wide lock held while the finish runs (a shared file it edits: the host map).
    finish_lock: str | None = None

    def describe(self) -> list[str]:
        lines = [line for action in self.actions + self.finish for line in action.describe()]
        return lines or [f"nothing to do: {self.note}" if self.note else "nothing to do"]


@dataclass
class Context:
    """Everything a step needs for one target; passed explicitly, never global."""

    config: Config
    server: Server
    conn: Connector
    account: str
    case_id: str
    now: float
    journal: Any = None  # agent.journal.journal.Journal; typed loosely to keep steps import-light
    params: dict[str, Any] = field(default_factory=dict)
    # The hold of the case being applied (billing, abuse, manual); None when reverting.
    hold: str | None = None
    # Facts a batch of accounts shares for the length of one call (the server's vhost
    # files, say), read once for all of them: see `memo`. None for a single account.
    shared: Memo | None = None

    @property
    def branding(self) -> Branding:
        return self.config.branding


class Memo:
    """Facts read once per batch of accounts and shared by them (thread-safe)."""

    def __init__(self) -> None:
        self._values: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        # Its own lock: a value being computed under the lock above may keep files here.
        self._files: dict[str, Any] = {}
        self._files_lock = threading.Lock()
        self._read: dict[str, Any] = {}
        self._held: dict[tuple, Any] = {}

    def saw(self, found: dict[str, Any]) -> None:
        """Keep files just read (path -> FileData) for the next shared finish."""
        with self._files_lock:
            self._files.update(found)

    def take_files(self) -> dict[str, Any]:
        """Return the files kept since the last call, and forget them (each is used once:
        the finish that uses one may change it)."""
        with self._files_lock:
            files, self._files = self._files, {}
            return files

    def preload(self, found: dict[str, Any]) -> None:
        """Hold files the batch just read for all its accounts (path -> FileData), in place
        of any held before: what each account's revert plan or probe would read next."""
        with self._files_lock:
            self._read = dict(found)

    def preloaded(self, paths: list[str]) -> dict[str, Any] | None:
        """Return the held files for `paths` when every one of them is held, else None."""
        with self._files_lock:
            held = self._read
            return {p: held[p] for p in paths} if all(p in held for p in paths) else None

    def keep(self, key: tuple, value: Any) -> None:
        """Hold `value` for one later `take` of `key` (a check run for many accounts)."""
        with self._files_lock:
            self._held[key] = value

    def take(self, key: tuple) -> Any:
        """Return the value held for `key` and forget it (None when none is held)."""
        with self._files_lock:
            return self._held.pop(key, None)

    def get(self, key: tuple, compute: Any) -> Any:
        """Return the value of `key`, computing it once (under the lock) when missing."""
        with self._lock:
            if key not in self._values:
                self._values[key] = compute()
            return self._values[key]


def read(ctx: Context, paths: list[str]) -> dict[str, Any]:
    """Return the files at `paths` (FileData) as the batch read them a moment ago for all
    its accounts (Memo.preload), or as read now."""
    held = ctx.shared.preloaded(paths) if ctx.shared is not None else None
    return held if held is not None else ctx.conn.read_many(paths)


def memo(shared: Memo | None, key: tuple, compute: Any) -> Any:
    """Return compute(), read once per batch when the context shares facts."""
    return compute() if shared is None else shared.get(key, compute)


class Step(Protocol):
    """One kind of reversible action."""

    name: str

    def plan(self, ctx: Context) -> Plan:
        """Read facts and return the exact actions that suspend (nothing is changed)."""

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        """Carry out `plan`; return the undo data (also what `verify` checks)."""

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        """Return the exact actions that undo an applied change, from its undo data."""

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Probe from outside; raise VerifyFailed when the effect is not what it should be."""

    # Optional, for batches (agent/engine/batch_stage.py, agent/engine/wave.py):
    # - `plan_reads(ctx)`, `revert_reads(undo)` and `verify_reads(undo)` name the files
    #   `plan`, `revert_plan` and `verify` read through `read(ctx, ...)`, so that a batch
    #   reads those of all its accounts in one round trip just before;
    # - `before_plans(ctxs, workers)` does at once what every account's plan would do on
    #   its own (the reused backups' checks), holding the results in the shared Memo;
    # - `together = True`: `apply` and the revert carry out exactly the plan's actions, on
    #   each account's own files, so a batch carries out all accounts' plans as one
    #   (agent/steps/together.py).
