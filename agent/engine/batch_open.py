"""The children of a batch opened and closed together: each child's account lock held from
its opening to its close, its server record read (all children's in one round trip) and
taken over, what an earlier run left finished, and its case found or opened under the tree's
case; at the end every record brought in step in one round trip, then the locks released.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from agent.config.playbooks import Playbook
from agent.engine import batch_stage, records, recovery, wave
from agent.engine.runner import RunLog, Runner
from agent.errors import Busy
from agent.journal.journal import Case

if TYPE_CHECKING:
    from agent.drivers.tree import Tree
    from agent.engine.batch import Batch


def role_of(name: str, tree: Tree) -> str:
    """Return what the child `name` is for: `login`, `account` or `login+account`."""
    return "+".join(r for r, names in (("login", tree.logins), ("account", tree.accounts))
                    if name in names)


class opened:  # noqa: N801 - used as a context manager, reads as a clause
    """Open the children `names` side by side (see _child); yield their members (those whose
    case could be found or opened); close them all side by side at the end."""

    def __init__(self, batch: Batch, rcase: Case, pb: Playbook, names: list[str],
                 tree: Tree, label: str) -> None:
        self.batch, self.label = batch, label
        self.children = [_child(batch, rcase, pb, n, role_of(n, tree)) for n in names]
        self.opened: list[_child] = []
        self._guard = threading.Lock()

    def _open(self, child: _child) -> None:
        child.__enter__()
        with self._guard:
            self.opened.append(child)

    def __enter__(self) -> list[wave.Member]:
        # Every child's lock first, then every child's server record in one round trip
        # (each would read its own): read under the lock, so no other run changes it between.
        held = []
        for child in self.children:
            try:
                child.hold_lock()
            except Busy as exc:
                self.batch._note(child.name, exc, unreachable=True)
                continue
            held.append(child)
        self.children = held
        if held:
            self.batch.start_pool()
            rdir = self.batch.server.records_dir
            paths = [records.path_for(rdir, c.target) for c in held]
            try:
                found = self.batch.conn.read_many(paths + [f"{rdir}/.created"])
            except BaseException:
                for child in held:
                    child.release_lock()
                raise
            for child in held:
                child.prefetched = found
        self.batch.each(self.children, self._open, lambda c: c.name, self.label)
        members = [wave.Member(c.runner, c.case, c.log) for c in self.opened
                   if c.case is not None]
        return sorted(members, key=lambda m: m.name)

    def __exit__(self, *exc: object) -> None:
        # Every child's server record in step with the journal in one round trip (or two),
        # then every lock released.
        try:
            batch_stage.settle(self.batch, [(c.runner, c.log, c.name) for c in self.opened])
        finally:
            for c in self.opened:
                c.release_lock()


class _child:  # noqa: N801 - used as a context manager, reads as a clause
    """Hold a child's account lock, take over its server record, finish what an earlier
    run left, and find or open its case under `rcase`; settle its record at the end."""

    def __init__(self, batch: Batch, rcase: Case, pb: Playbook, name: str, role: str) -> None:
        self.b, self.rcase, self.pb, self.name, self.role = batch, rcase, pb, name, role
        self.target = (batch.server.name, "account", name)
        self._lock: Any = None
        self.prefetched: dict | None = None  # the batch's one read of every child's record

    def hold_lock(self) -> None:
        """Take the account's lock now (Busy when another run keeps it)."""
        self._lock = self.b.engine._lock(self.target)
        self._lock.__enter__()

    def release_lock(self) -> None:
        self._lock.__exit__(None, None, None)
        self._lock = None

    def __enter__(self) -> tuple[Runner, Case | None, RunLog]:
        e, b = self.b.engine, self.b
        if self._lock is None:
            self.hold_lock()
        self.log = b.log(self.name)
        self.runner = Runner(e, b.server, b.conn, self.target)
        self.runner.records.prefetched = self.prefetched
        self.runner.memo = b.shared
        self.case: Case | None = None
        try:
            taken = recovery.begin(e, self.runner, b.dry_run)
            if taken:
                b.messages[self.name] = taken
            if not b.dry_run and not self.runner.recover(self.log):
                self.log.errors.append({"step": None, "message": "a change could not be "
                                        "undone earlier and still cannot; nothing new was "
                                        "applied to this account"})
                return self.runner, None, self.log
            self.case = self._case()
            return self.runner, self.case, self.log
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _case(self) -> Case:
        e, b, journal = self.b.engine, self.b, self.b.engine.journal
        cases = journal.open_cases(*self.target)
        case = next((c for c in cases if c.parent == self.rcase.id), None)
        if case is not None:
            if case.role != self.role and self.role and not b.dry_run:
                journal.set_role(case.id, self.role)
                case = journal.case(case.id)
            return case
        prior = {"cases": [{"id": c.id, "hold": c.hold, "parent": c.parent} for c in cases]}
        if b.dry_run:
            return Case("dry-run", *self.target, self.rcase.hold, self.pb.name,
                        self.rcase.reason, e.caller, self.rcase.started_at, -1, None, "open",
                        parent=self.rcase.id, role=self.role, prior=prior)
        case = journal.new_case(*self.target, self.rcase.hold, self.pb.name, self.rcase.reason,
                                e.caller, e.now(), parent=self.rcase, role=self.role,
                                prior=prior)
        e.audit("case.opened", server=self.target[0], kind="account", name=self.name,
                case_id=case.id, hold=case.hold, playbook=self.pb.name, parent=self.rcase.id,
                role=self.role, already=[c["hold"] for c in prior["cases"]])
        return case

    def __exit__(self, *exc: object) -> None:
        try:
            recovery.settle(self.runner, self.log, self.b.dry_run)
        finally:
            self.release_lock()
