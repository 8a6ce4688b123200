"""Journal and server records kept in step: take-over at the start of a call, sync at its end,
the `recover` verb, and what `status` reports about records the journal does not know."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent import ids
from agent.engine import records
from agent.engine.outcome import Outcome
from agent.engine.runner import RunLog, Runner
from agent.errors import AgentError, BadInput, Unreachable

if TYPE_CHECKING:
    from agent.engine.engine import Engine


def begin(engine: Engine, runner: Runner, dry_run: bool) -> str:
    """Take over the cases the server's record holds and the journal lost; say which.

    Ensures that before anything is applied or reverted on the target, the journal knows
    every case the server carries (a dry run only reports them).
    """
    record = runner.records.load()
    if dry_run:
        unknown = runner.records.unknown_cases(record)
        return (f"the server holds case(s) {', '.join(unknown)} that this journal does not "
                "know; a real run takes them over first" if unknown else "")
    taken = runner.records.take_over(record)
    for case_id in taken:
        engine.audit("case.recovered", server=runner.target[0], kind=runner.target[1],
                     name=runner.target[2], case_id=case_id, source=runner.records.path)
    return (f"case(s) {', '.join(taken)} taken over from the server's record "
            f"{runner.records.path}" if taken else "")


def settle(runner: Runner, log: RunLog, dry_run: bool) -> None:
    """Bring the server's record in step with the journal at the end of a call."""
    if dry_run:
        return
    try:
        runner.records.sync()
    except Unreachable:
        raise
    except AgentError as exc:
        log.errors.append({"step": "record", "message": str(exc)})


def settle_many(conn: Any, items: list[tuple[Runner, RunLog]], dry_run: bool) -> None:
    """Bring the server records of many targets in step with the journal at the end of a
    call, in one or two round trips (a failure is each target's `record` error)."""
    if dry_run or not items:
        return
    try:
        records.sync_many(conn, [runner.records for runner, _log in items])
    except Unreachable:
        raise
    except AgentError as exc:
        for _runner, log in items:
            log.errors.append({"step": "record", "message": str(exc)})


def recover(engine: Engine, server_name: str, account: str | None,
            dry_run: bool) -> list[Outcome]:
    """Rebuild the journal's view of SERVER (or one ACCOUNT) from the server's own records.

    Ensures every case a record names is in the journal with its changes, in the state the
    record gives, and that every record says what the journal now says (a record of a case
    the journal knows is closed is removed). Nothing on the accounts themselves changes.
    """
    server = engine.server(server_name)
    conn = engine._conn(server)
    if account is not None:
        names = [engine.account_target(server_name, account)[1][2]]
    else:
        names = [n for _kind, n in records.list_targets(conn, server.records_dir)]
    outcomes = []
    for name in names:
        target = (server.name, "account", name)
        log = RunLog()
        try:
            ids.account(name, server.panel)
        except BadInput as exc:
            log.errors.append({"step": "record", "message": f"record skipped: {exc}"})
            outcomes.append(engine.report(target, log))
            continue
        with engine._lock(target):
            runner = Runner(engine, server, conn, target)
            try:
                message = begin(engine, runner, dry_run)
            except AgentError as exc:
                if isinstance(exc, Unreachable):
                    raise
                log.errors.append({"step": "record", "message": str(exc)})
                outcomes.append(engine.report(target, log))
                continue
            settle(runner, log, dry_run)
        outcomes.append(engine.report(target, log, message or (
            "the journal already knew every case in the server's record"
            if runner.records.found else "no record of this account on the server")))
    return outcomes


def unknown_to_journal(engine: Engine, server_name: str,
                       account: str | None) -> dict[tuple, list[str]]:
    """Return, per target, the case ids the server's records hold and the journal lacks.

    Read-only (for `status`); a record that cannot be read is reported under the id "?".
    """
    server = engine.server(server_name)
    conn = engine._conn(server)
    names = ([account] if account is not None else
             [n for _k, n in records.list_targets(conn, server.records_dir)])
    targets = [(server.name, "account", n) for n in names]
    paths = {records.path_for(server.records_dir, t): t for t in targets}
    found = conn.read_many(list(paths))
    unknown: dict[tuple, list[str]] = {}
    for path, data in found.items():
        if not data.exists:
            continue
        target = paths[path]
        try:
            record = records.parse(path, data.data or b"", target)
        except AgentError:
            unknown[target] = ["?"]
            continue
        lost = sorted(c for c in record.case_ids if not engine.journal.has_case(c))
        if lost:
            unknown[target] = lost
    return unknown


def warning(server_name: str, name: str, case_ids: list[str]) -> dict:
    """Return the `errors` entry `status` shows for a record the journal does not know."""
    if case_ids == ["?"]:
        return {"step": "record", "message": "the server's case record of this account cannot "
                "be read; look at it before the next suspend or unsuspend"}
    return {"step": "record", "message": (
        f"the server holds case(s) {', '.join(case_ids)} that this journal does not know "
        f"(journal lost or restored from an old copy?): run `suspension-agent recover "
        f"{server_name} {name}`; the next suspend or unsuspend of it also takes them over")}


def resolve(engine: Engine, server_name: str, account: str | None, step: str | None,
            reason: str | None, dry_run: bool) -> Outcome:
    """Retry every stuck change of ACCOUNT now (None: of the whole server's own target, its
    firewall_block), or (with `step` and `reason`) record that an admin undid that stuck
    step by hand.

    Ensures a stuck change never needs a hand edit of the journal: either its revert runs
    again (`stuck` becomes `reverted`, or stays stuck with the new error), or it becomes
    `resolved` with who said so and why, in the audit trail; the server's record follows.
    """
    if account is None:
        server = engine.server(server_name)
        target = (server.name, "server", server.name)
    else:
        server, target = engine.account_target(server_name, account)
    if step is not None and not ids.reason(reason):
        raise BadInput("--handled needs --reason (what was done by hand)")
    with engine._lock(target):
        log = RunLog()
        runner = Runner(engine, server, engine._conn(server), target)
        stuck = [c for c in engine.journal.active_changes(*target) if c.state == "stuck"]
        if step is not None:
            mine = [c for c in stuck if c.step == step]
            if not mine:
                raise BadInput(f"no stuck {step} change on {target[2]} (stuck: "
                               f"{', '.join(c.step for c in stuck) or 'none'})")
            if not dry_run:
                for change in mine:
                    engine.journal.mark(change.seq, "resolved", engine.now(),
                                        error=f"resolved by hand: {reason}")
                    engine.audit("change.resolved", server=target[0], kind=target[1],
                                 name=target[2], case_id=change.case_id, step=step,
                                 reason=reason, outcome="resolved")
            message = f"{step} marked as undone by hand" + (" (dry run)" if dry_run else "")
        elif dry_run:
            message = f"would retry: {', '.join(c.step for c in stuck) or 'nothing is stuck'}"
        else:
            runner.recover(log)
            message = "" if stuck else "nothing is stuck"
        settle(runner, log, dry_run)
    return engine.report(target, log, message)
