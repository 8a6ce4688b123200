"""Batch targets: a reseller's whole tree, or a whole server, as one case, with a child
case per account.

The tree's case lives on the target (server, "reseller", NAME) or (server, "server",
SERVER); each account of the tree gets a child case on its own account target (parent =
the tree's case), so every change is journaled, recorded on the server and recovered per
account exactly as for a single account, and an account's own cases (another hold, an
admin's) stay beside it: an account comes back only when no case of any kind is left on it.

Order: the logins of the reseller and its sub-resellers (of a whole server: its admins and
every reseller) are locked first (the driver's `login_step`), then the playbook's due stages
run for every account side by side over the server's one connection, with as many workers as
sshd lets that connection run sessions (`Connector.channels`). One failing child is rolled
back on its own and named in the reply; the others go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from agent import drivers
from agent.config.playbooks import Playbook, Stage, StepSpec
from agent.config.resellers import where as config_where
from agent.engine import batch_lift, batch_stage, server_steps
from agent.engine.batch_open import opened
from agent.engine.outcome import Outcome
from agent.engine.runner import RunLog, Runner
from agent.errors import (
    AgentError,
    AuthFailed,
    BadInput,
    Busy,
    ConfigError,
    HostKeyRefused,
    Unreachable,
)
from agent.journal.journal import Case
from agent.steps.protocol import Memo

if TYPE_CHECKING:
    from agent.config.servers import Server
    from agent.drivers.tree import Tree
    from agent.engine.engine import Engine


class NoProgress:
    """What a batch reports progress to when nobody watches (JSON, cron, a pipe)."""

    def start(self, total: int, label: str) -> None:
        return None

    def advance(self, name: str) -> None:
        return None

    def finish(self) -> None:
        return None


class Batch:
    """One call's work on one tree: the server, its connection, the worker pool, the logs."""

    def __init__(self, engine: Engine, server: Server, dry_run: bool,
                 target: tuple | None = None) -> None:
        self.engine = engine
        self.target = target
        self.server = server
        self.dry_run = dry_run
        self.conn: Any = _Lazy(engine, server)
        self.logs: dict[str, RunLog] = {}
        self.messages: dict[str, str] = {}  # per child: cases taken over from its record
        self.own = RunLog()  # the tree target's own errors (its record, a lost link)
        self.shared = Memo()  # facts every account of this call reads once (vhost files)
        self._logs_lock = threading.Lock()
        self.workers = 0  # until start_pool has asked the connection
        # Children locked and read before the lift (agent/engine/batch_lift.py lock_ahead).
        self.ahead: tuple | None = None
        # Files read with the children's records for the first wave's revert plans (path
        # -> FileData): used by that wave alone, when they cover every plan's reads.
        self.first_reads: dict = {}

    def log(self, name: str) -> RunLog:
        with self._logs_lock:
            return self.logs.setdefault(name, RunLog())

    def start_pool(self) -> None:
        """Size the pool to what the server's sshd allows this connection (read once)."""
        self.conn = self.engine._conn(self.server)
        workers = self.conn.channels(self.server.linux.sshd)
        if workers != self.workers and self.target is not None:
            self.engine.audit("batch.workers", server=self.target[0], kind=self.target[1],
                              name=self.target[2], workers=workers,
                              max_sessions=getattr(self.conn, "max_sessions", None))
        self.workers = workers

    def each(self, items: Iterable[Any], work: Callable[[Any], None],
             name: Callable[[Any], str], label: str) -> None:
        """Run `work` on every item side by side; an item's failure is its child's error
        and never stops the others (a lost link is recorded as such on each child)."""
        items = list(items)
        progress = self.engine.progress
        progress.start(len(items), label)

        def one(item: Any) -> None:
            child = name(item)
            try:
                work(item)
            except Unreachable as exc:
                self._note(child, exc, unreachable=True)
            except (AuthFailed, HostKeyRefused) as exc:
                self._note(child, exc, refused=True)
            except Busy as exc:
                self._note(child, exc, unreachable=True)
            except AgentError as exc:
                self._note(child, exc)
            finally:
                progress.advance(child)

        try:
            if self.workers <= 1 or len(items) <= 1:
                for item in items:
                    one(item)
            else:
                with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
                    list(pool.map(one, items))
        finally:
            progress.finish()

    def _note(self, child: str, exc: AgentError, unreachable: bool = False,
              refused: bool = False) -> None:
        log = self.log(child)
        log.errors.append({"step": None, "message": str(exc)})
        log.unreachable = log.unreachable or unreachable
        log.refused = log.refused or refused


class _Lazy:
    """The server's connection, opened on first use: a tree declared in config is read
    without one, so a tick with nothing new to do never connects."""

    def __init__(self, engine: Engine, server: Server) -> None:
        self._open = lambda: engine._conn(server)
        self._conn: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._conn is None:
            self._conn = self._open()
        return getattr(self._conn, name)


def find_tree(engine: Engine, server: Server, target: tuple) -> Tree:
    """Return the target's tree as the driver finds it now (nothing is checked yet): a
    reseller's, or the whole server's (its protected accounts left out)."""
    if target[1] == "server":
        protected = set(engine.config.protected_accounts) | set(server.protected_accounts)
        return drivers.server_tree(server, _Lazy(engine, server), engine.config.min_uid,
                                   protected)
    return drivers.reseller_tree(server, _Lazy(engine, server), target[2])


def tree_of(engine: Engine, server: Server, target: tuple, tree: Tree | None = None,
            names: Iterable[str] | None = None) -> Tree:
    """Return the target's tree, refusing (before any case opens) protected accounts,
    and accounts the server lacks or keeps for the system: exit 78 naming the config entry
    when the tree comes from config, else exit 2. `names` limits the check to those."""
    tree = tree or find_tree(engine, server, target)
    what = ("the whole server" if target[1] == "server"
            else f"the tree of reseller {target[2]!r}")
    conn = _Lazy(engine, server)
    protected = set(engine.config.protected_accounts) | set(server.protected_accounts)
    if bad := [n for n in tree.children if n in protected]:
        raise BadInput(f"{what} holds protected account(s) {', '.join(bad)}, which may "
                       "never be suspended; nothing was changed")
    wanted = list(tree.children) if names is None else [n for n in tree.children if n in names]
    problems = drivers.check_accounts(server, conn, wanted, engine.config.min_uid)
    if problems:
        prefix = f"servers.{server.name}"
        if server.resellers or server.admins:
            raise ConfigError(engine.config.path, [
                f"{_config_where(server, n, prefix)}: {why}" for n, why in problems.items()])
        raise BadInput("; ".join(problems.values()) + "; nothing was changed")
    return tree


def _config_where(server: Server, name: str, prefix: str) -> str:
    """Return the config path that puts `name` in a tree (an admin, a reseller entry)."""
    if name in server.admins:
        return f"{prefix}.admins[{server.admins.index(name)}]"
    return config_where(server.resellers, name, f"{prefix}.resellers")


def login_stage(panel: str) -> Stage:
    """The stage every login child gets first: the driver's login lock, nothing else."""
    return Stage(0, 0, (StepSpec(drivers.login_step(panel)),))


def run_tree(batch: Batch, rcase: Case, pb: Playbook, tree: Tree,
             only: set[str] | None = None, own: Runner | None = None) -> None:
    """Ensure every child of `tree` (or just those in `only`) has its case under `rcase`,
    its login locked when it is a login, and the due stages of `pb` applied; then, with
    `own` (the tree target's runner), the server steps of the due stages that every
    account has reached (agent/engine/server_steps.py)."""
    engine = batch.engine
    logins = [n for n in tree.logins if only is None or n in only]
    accounts = [n for n in tree.accounts if only is None or n in only]
    lock_stage = login_stage(batch.server.panel)
    batch.start_pool()

    # Logins first: the reseller must not move or undo anything while its tree goes down.
    # Then every account at once. Both go step by step across their accounts
    # (agent/engine/batch_stage.py), so what they all need once (sshd's reload, Apache's) is done
    # once; each account's lock is held from its opening to its close.
    with opened(batch, rcase, pb, logins, tree, "reading reseller logins") as members:
        batch_stage.apply_stage(batch, members, lock_stage)
        for m in members:
            if not m.failed and not m.lost and "account" not in (m.case.role or "") \
                    and not batch.dry_run:
                # A login-only child has nothing further: no stage of the playbook is its.
                engine.journal.set_stage(m.case.id, pb.stages[-1].index, None)
    with opened(batch, rcase, pb, accounts, tree, "reading accounts") as members:
        batch_stage.advance(batch, members, pb.split(server=False))
    if own is not None and only is None and own.target[1] == "server" and any(
            st.steps for st in server_steps.part(pb, batch.server.panel).stages):
        server_steps.apply_due(batch, own, rcase, pb, tree)


def lift(batch: Batch, rcases: list[Case], status: str, left: Sequence[Case] = ()
         ) -> None:
    """Close every open child of `rcases` with `status`, undoing each account's changes
    when no other case is left on it (web first across the tree, then the rest); the
    closed children in `left` (journal.left_over) have their unfinished reverts retried."""
    batch.start_pool()
    batch_lift.lift_children(batch, [ch for rc in rcases
                                     for ch in batch.engine.journal.children(rc.id)]
                             + list(left), status)


def report(engine: Engine, target: tuple, batch: Batch | None, message: str) -> Outcome:
    """Return the tree case's state with one entry per child (see agent.engine.batch_report)."""
    from agent.engine import batch_report

    return batch_report.build(engine, target, batch.logs if batch else {}, message,
                              batch.messages if batch else {},
                              batch.own if batch else None)
