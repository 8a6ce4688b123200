"""Server steps of a whole-server case (firewall_block, throttle, and server_landing, which
a stage's landing_page implies): changes of the case's own target
(server, "server", SERVER), journaled, recorded and reverted like an account's, by the
tree target's runner.

Order: in each due stage they come after the accounts' steps of that stage, and only once
every account of the tree has reached it, as a restrictive step comes only after a backup
(a child whose backup failed must not have its mail ports closed before it is saved). A
stage held back that way, or whose server step failed (and was rolled back), is the case's
error: `tick` retries it with the usual pause. On unsuspend they are reverted after every
account came back, once no case is left on the server target. Each `tick` checks those
in effect and puts back what something undid meanwhile (`repair`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent import drivers
from agent.config.playbooks import Playbook
from agent.engine import drift
from agent.journal.journal import Case

if TYPE_CHECKING:
    from agent.drivers.tree import Tree
    from agent.engine.batch import Batch
    from agent.engine.runner import Runner


def apply_due(batch: Batch, own: Runner, rcase: Case, pb: Playbook, tree: Tree) -> None:
    """Ensure the server steps of every due stage are in effect (stopping at the first
    stage that is held back or fails; its error goes to the tree's own log)."""
    engine = batch.engine
    now = engine.now()
    kids = {c.name: c for c in engine.journal.children(rcase.id)} if rcase.id != "dry-run" \
        else {}
    for stage in part(pb, batch.server.panel).stages:
        if not stage.steps or rcase.started_at + stage.after > now:
            continue
        behind = [n for n in tree.accounts if n not in kids or kids[n].stage < stage.index]
        if behind and not batch.dry_run:
            batch.own.errors.append({"step": stage.steps[0].name, "message": (
                f"stage {stage.index}'s server steps wait until every account reached it; "
                f"behind: {', '.join(behind[:10])}" + (" ..." if len(behind) > 10 else ""))})
            return
        if not own.apply_stage(rcase, stage, batch.own, batch.dry_run):
            return


def part(pb: Playbook, panel: str) -> Playbook:
    """Return the server steps of each stage of a whole-server case on a `panel` server:
    the playbook's own and those its account steps imply (server_landing)."""
    return pb.whole_server_part(lambda name: drivers.available(panel, name))


# What visitors see of the server itself comes back with the websites, before any
# account's other changes: the page on its bare addresses (and on every name, `__all__`).
WEB_FIRST = ("server_landing",)


def revert_web(batch: Batch, own: Runner) -> None:
    """Undo the server steps visitors see (WEB_FIRST), before the accounts come back: while
    `__all__` stays, every site of the server still answers the landing page."""
    if not batch.dry_run:
        own.recover(batch.own, retry_stuck=False)
    for change in reversed(batch.engine.journal.active_changes(*own.target)):
        if change.step in WEB_FIRST:
            own.revert_one(change.seq, change.step, change.case_id, change.undo, batch.own,
                           batch.dry_run, change.driver)


def revert_all(batch: Batch, own: Runner) -> None:
    """Undo every server step still in effect on the tree target (none open any more)."""
    if not batch.dry_run:
        own.recover(batch.own, retry_stuck=False)  # revert_all retries the stuck ones
    own.revert_all(batch.own, batch.dry_run)


def repair(batch: Batch, own: Runner, rcase: Case) -> list[str]:
    """Ensure every server step in effect is still in effect on the server: one that
    something undid behind the agent's back (a firewall table flushed) is carried out again
    from its journaled undo data, verified and audited (agent/engine/drift.py). Returns the
    steps put back; a step that cannot be put back is the tree's error (and `tick` exits
    non-zero)."""
    return drift.repair(batch.engine, own, rcase.hold, batch.own, batch.dry_run)

