"""Lifting a tree case: every child's account put back, what visitors see first.

Each child's account lock is held from the first wave to the last, so nothing else
touches the account in between. The waves run side by side over the one connection:
1. every child's landing page (and the panel's own suspension, whose lifting also lifts
   locks that the later reverts must then put back: reference/panels.md A8), so all sites
   of the tree serve again before any login lock is touched;
2. every account child's other changes, newest first;
3. the reseller logins last (the driver's login step of every login child, an account of
   the tree or not), so the reseller gets its panel back only once its tree is.
A child whose account still carries another case (its own abuse hold, a case under
another reseller case) keeps every change: only its child case is closed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent import drivers
from agent.engine import batch_stage, records, recovery, wave
from agent.engine.outcome import hold_label
from agent.engine.runner import RunLog, Runner, revert_order
from agent.errors import Busy
from agent.journal.journal import Case, Change

if TYPE_CHECKING:
    from agent.engine.batch import Batch

@dataclass
class _Work:
    """One child being lifted: its case, runner, log and the changes to undo."""

    case: Case
    runner: Runner
    log: RunLog
    lock: Any
    first: list[Change] = field(default_factory=list)
    rest: list[Change] = field(default_factory=list)
    login: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.member = wave.Member(self.runner, self.case, self.log)

    @property
    def name(self) -> str:
        return self.case.name


def lift_children(batch: Batch, children: list[Case], status: str) -> None:
    """Close each child case with `status` (`lifted`, `failed`), undoing its account's
    changes when no other case is left on it; a child whose link was lost stays open for
    the next call, which verifies and finishes it."""
    engine, journal = batch.engine, batch.engine.journal
    works: list[_Work] = []
    guard = threading.Lock()

    children, locks, found = _held(batch, children)

    def prepare(case: Case) -> None:
        target = (batch.server.name, "account", case.name)
        lock = locks[case.name]
        try:
            runner = Runner(engine, batch.server, batch.conn, target)
            runner.records.prefetched = found
            runner.memo = batch.shared
            log = batch.log(case.name)
            taken = recovery.begin(engine, runner, batch.dry_run)
            if taken:
                batch.messages[case.name] = taken
            if not batch.dry_run:
                runner.recover(log, retry_stuck=False)  # the waves retry the stuck ones
            work = _Work(case, runner, log, lock)
            others = [c for c in journal.open_cases(*target) if c.id != case.id]
            if others:
                holds = ", ".join(sorted({hold_label(journal, c, "another")
                                          for c in others}))
                batch.messages[case.name] = (f"still held by {holds}; this account stays "
                                             "suspended")
            else:
                first, rest, last = revert_order(list(reversed(
                    journal.active_changes(*target))))
                # A reseller's own login lock comes back after every account of the tree
                # (wave 3), also when the reseller is an account of the tree itself.
                login = drivers.login_step(batch.server.panel) \
                    if "login" in (case.role or "") else None
                work.first = first
                work.rest = [c for c in rest + last if c.step != login]
                work.login = [c for c in rest + last if c.step == login]
        except BaseException:
            lock.__exit__(None, None, None)
            raise
        with guard:
            works.append(work)

    batch.each(children, prepare, lambda c: c.name, "reading the tree")
    works.sort(key=lambda w: w.name)
    try:
        for items in ([(w.member, w.first) for w in works],
                     [(w.member, w.rest) for w in works],
                     [(w.member, w.login) for w in works]):
            batch_stage.revert_together(batch, items)
        batch.each(works, lambda w: _close(batch, w, status), _name, "closing")
        # Every record in step in one round trip (or two): most of them are removed.
        batch_stage.settle(batch, [(w.runner, w.log, w.name) for w in works
                                   if not w.member.lost])
    finally:
        for work in works:
            work.lock.__exit__(None, None, None)


def _held(batch: Batch, children: list[Case]
          ) -> tuple[list[Case], dict[str, Any], dict | None]:
    """Return the children whose locks are held, their locks, and their records as read:
    what `lock_ahead` took for them, and for any child it did not try, taken and read now."""
    early, batch.ahead = batch.ahead, None
    if early is None:
        return _lock_and_read(batch, children)
    tried, locks, found = early
    mine = {c.name for c in children}
    for name in [n for n in locks if n not in mine]:  # taken over since: not lifted here
        locks.pop(name).__exit__(None, None, None)
    _late, late_locks, late_found = _lock_and_read(
        batch, [c for c in children if c.name not in tried])
    locks.update(late_locks)
    return ([c for c in children if c.name in locks], locks,
            {**(found or {}), **(late_found or {})})


def lock_ahead(batch: Batch, children: list[Case], also: list[str]) -> dict | None:
    """Take the children's locks and read their records now, with `also` (the tree target's
    own record) in the same round trip; the lift that follows uses them (`release_ahead`
    lets them go when it does not come)."""
    _held_now, locks, found = _lock_and_read(batch, children, also)
    batch.ahead = ({c.name for c in children}, locks, found)
    return found


def release_ahead(batch: Batch) -> None:
    """Release the locks `lock_ahead` took that no lift used."""
    early, batch.ahead = batch.ahead, None
    if early is not None:
        for lock in early[1].values():
            lock.__exit__(None, None, None)


def _lock_and_read(batch: Batch, children: list[Case], also: list[str] | None = None
                   ) -> tuple[list[Case], dict[str, Any], dict | None]:
    """Take every child's lock (a busy one is noted and left out), then read every child's
    server record in one round trip, under the locks (each child would read its own)."""
    engine = batch.engine
    locks: dict[str, Any] = {}
    for case in children:
        lock = engine._lock((batch.server.name, "account", case.name))
        try:
            lock.__enter__()
        except Busy as exc:
            batch._note(case.name, exc, unreachable=True)
            continue
        locks[case.name] = lock
    children = [c for c in children if c.name in locks]
    if not children and not also:
        return children, locks, None
    rdir = batch.server.records_dir
    # With them, the files the driver's shared finish will start from (the host map), and
    # the files the first wave's revert plans will read (the landing pages').
    extra = drivers.batch_files(batch.server)
    first = [] if batch.dry_run else _first_reads(batch, children)
    try:
        found = batch.conn.read_many(list(dict.fromkeys(
            [records.path_for(rdir, (batch.server.name, "account", c.name)) for c in children]
            + [f"{rdir}/.created", *extra, *(also or []), *first])))
    except BaseException:
        for lock in locks.values():
            lock.__exit__(None, None, None)
        raise
    batch.shared.saw({path: found[path] for path in extra})
    batch.first_reads.update({path: found[path] for path in first})
    return children, locks, found


def _first_reads(batch: Batch, children: list[Case]) -> list[str]:
    """Return the files the first wave's revert plans of `children` will read, for the
    children whose every active change is simply in effect: for them nothing runs on the
    server between this read (under their locks) and those plans. A child with a change
    left half-done is finished by `recover` first, which may change its files: its plans
    read for themselves (batch_stage.revert_together reads whatever is not held)."""
    journal = batch.engine.journal
    paths: list[str] = []
    for case in children:
        target = (batch.server.name, "account", case.name)
        changes = journal.active_changes(*target)
        if any(c.state != "done" for c in changes) or any(
                c.id != case.id for c in journal.open_cases(*target)):
            continue  # half-done (recover runs first), or kept for another case
        first, _rest, _last = revert_order(list(reversed(changes)))
        for change in first:
            step = drivers.step(change.driver or batch.server.panel, change.step)
            reads = getattr(step, "revert_reads", None)
            paths += reads(change.undo) if reads is not None else []
    return paths


def _name(work: _Work) -> str:
    return work.name


def _close(batch: Batch, work: _Work, status: str) -> None:
    engine = batch.engine
    # A child closed by an earlier lift (its revert was retried here) keeps that status.
    if not batch.dry_run and not work.member.lost and work.case.status == "open":
        engine.journal.close_case(work.case.id, status, engine.caller, engine.now())
        engine.audit("case.lifted" if status == "lifted" else "case.failed",
                     server=batch.server.name, kind="account", name=work.name,
                     case_id=work.case.id, hold=work.case.hold, parent=work.case.parent)
