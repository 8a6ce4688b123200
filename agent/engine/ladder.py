"""`plan`: the whole ladder of a playbook for one account, with exact actions; changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent import drivers
from agent.config import playbooks
from agent.config.validate import human_duration
from agent.engine.runner import Runner
from agent.errors import AgentError, AuthFailed, BadInput, Busy, HostKeyRefused

if TYPE_CHECKING:
    from agent.engine.engine import Engine


def ladder(engine: Engine, server_name: str, account: str, playbook: str | None) -> list[dict]:
    """Return every stage of the playbook with the exact actions of each step; change nothing.

    Steps the server's driver does not implement are listed as not available; server
    steps (firewall_block) are listed with `scope: server`, planned by `server_plan`.
    """
    server, target = engine.account_target(server_name, account)
    pb = engine.playbook(server, playbook) if playbook == "" else playbooks.load(
        engine.config.playbooks_dir, playbook or engine.config.default_playbook)
    engine.ensure_suspendable(server, account)
    runner = Runner(engine, server, engine._conn(server), target)
    out = []
    for stage in pb.stages:
        entries = []
        for spec in stage.steps:
            if spec.name in playbooks.SERVER_STEPS:
                entries.append({"step": spec.name, "scope": "server",
                                "available": drivers.available(server.panel, spec.name),
                                "actions": ["acts on the whole server, once: only in a "
                                            "--whole-server case (plan SERVER "
                                            "--whole-server)"]})
                continue
            if not drivers.available(server.panel, spec.name):
                entries.append({"step": spec.name, "available": False,
                                "actions": [f"not available on the {server.panel} driver yet"]})
                continue
            try:
                plan = drivers.step(server.panel, spec.name).plan(
                    runner.context("plan", spec.params))
                entries.append({"step": spec.name, "available": True,
                                "actions": plan.describe(), "facts": plan.facts})
            except AgentError as exc:
                # Not a problem of this step: bad input (2), a server to retry later (75), a
                # host key or login to fix (78) answer for the whole call.
                if isinstance(exc, BadInput | Busy | HostKeyRefused | AuthFailed):
                    raise
                entries.append({"step": spec.name, "available": True,
                                "actions": [f"cannot plan: {exc}"], "error": str(exc)})
        out.append({"stage": stage.index, "after": stage.after,
                    "delay": human_duration(stage.after), "steps": entries})
    return out


def server_plan(engine: Engine, server_name: str, playbook: str | None) -> list[dict]:
    """Return the server steps of the playbook (a whole-server case's own), each stage's
    with its exact actions, planned on the server target; change nothing."""
    server = engine.server(server_name)
    pb = playbooks.load(engine.config.playbooks_dir, playbook or engine.config.default_playbook)
    runner = Runner(engine, server, engine._conn(server), (server.name, "server", server.name))
    out = []
    from agent.engine.server_steps import part

    for stage in part(pb, server.panel).stages:
        for spec in stage.steps:
            entry = {"stage": stage.index, "delay": human_duration(stage.after),
                     "step": spec.name}
            try:
                plan = drivers.step(server.panel, spec.name).plan(
                    runner.context("plan", spec.params))
                entry |= {"actions": plan.describe(), "facts": plan.facts}
            except AgentError as exc:
                if isinstance(exc, BadInput | Busy | HostKeyRefused | AuthFailed):
                    raise
                entry |= {"actions": [f"cannot plan: {exc}"], "error": str(exc)}
            out.append(entry)
    for stage in pb.stages:
        for spec in stage.steps:
            implied = playbooks.IMPLIED_SERVER_STEPS.get(spec.name)
            if implied and not drivers.available(server.panel, implied):
                out.append({"stage": stage.index, "delay": human_duration(stage.after),
                            "step": implied, "available": False, "actions": [
                                f"not available on the {server.panel} driver yet: the "
                                "server's bare addresses stay as they are"]})
    return out
