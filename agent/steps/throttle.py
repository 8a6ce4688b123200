"""The throttle step (server scope, a grade before the cut): what the server sends on its
public interfaces shaped to the playbook's `rate`, SSH and the exempt addresses left at full
speed (the HTB tree of agent/steps/tc.py), and each interface's root put back exactly.

Interfaces: the playbook's `interfaces`, else those of the server's default routes (IPv4 and
IPv6) and the one the agent's own connection arrives on. Each must have the kernel's own
root qdisc now: the journal records it, the reversal deletes the agent's root (the kernel
brings its default back) and verifies the interface reads back exactly as recorded. A root
that is neither the recorded one nor the agent's is never touched: the revert stops there
and the change is left stuck for a human.

The proof of the grade is the kernel's own shaping state, read back in full (root, both
classes with their rates, every filter to the unshaped class); the agent's connection is
one of the unshaped flows, so it cannot time the cap itself (tests/test_throttle_linux.py
measures it from outside). tc's state is lost at a reboot or when the interface is made
again: `tick` puts it back (`repair_plan`).
"""

from __future__ import annotations

import json
from typing import Any

from agent.errors import StepError, VerifyFailed
from agent.steps import tc
from agent.steps.actions import Run, carry_out
from agent.steps.protocol import Context, Plan

# The routes out: default routes (v4, v6) and the one back to the agent (SSH_CONNECTION);
# $1 is ip. One JSON list per line; an empty line where a family has none.
_ROUTES = ('ip=$1; "$ip" -j route show default 2>/dev/null; echo; '
           '"$ip" -6 -j route show default 2>/dev/null; echo; c=${SSH_CONNECTION%% *}; '
           'if [ -n "$c" ]; then "$ip" -j route get "$c" 2>/dev/null; fi; echo')
# Each interface's qdiscs (JSON, or "missing"), classes (text) and the agent's filters
# (JSON), separated by \036 per interface and \037 per part; $1 is tc, then the interfaces.
_DUMP = ('t=$1; shift; for i in "$@"; do printf "\\036%s\\037" "$i"; '
         '"$t" -j qdisc show dev "$i" 2>/dev/null || printf missing; printf "\\037"; '
         '"$t" class show dev "$i" 2>/dev/null; printf "\\037"; '
         f'"$t" -j filter show dev "$i" parent {tc.HANDLE} 2>/dev/null; done')


def _json(text: str) -> list:
    text = text.strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepError(f"tc or ip printed no JSON ({exc}): {text[:120]!r}") from None
    return value if isinstance(value, list) else []


def read_state(conn: Any, tc_path: str, interfaces: list[str]) -> dict[str, dict | None]:
    """Return, per interface, its qdiscs, class text and filters (None: no such device)."""
    out = conn.run(["sh", "-c", _DUMP, "sh", tc_path, *interfaces]).text
    found: dict[str, dict | None] = {}
    for record in out.split("\036")[1:]:
        name, qdiscs, class_text, filters = (record.split("\037") + ["", "", ""])[:4]
        found[name] = None if qdiscs.strip() == "missing" else {
            "qdiscs": _json(qdiscs), "classes": class_text, "filters": _json(filters)}
    return found


def public_interfaces(conn: Any, paths: Any, wanted: list[str] | None = None) -> list[str]:
    """Return `wanted` (the playbook's), else the default routes' and the agent's own
    (`paths`: the server's LinuxPaths)."""
    if wanted:
        return list(dict.fromkeys(wanted))
    out = conn.run(["sh", "-c", _ROUTES, "sh", paths.ip]).text
    names = [r.get("dev") for line in out.splitlines() for r in _json(line)]
    found = [n for n in dict.fromkeys(names) if tc.iface_ok(n)]
    if not found:
        raise StepError(f"{conn.name} has no default route and the agent's own route "
                        "could not be read: name the interfaces in the playbook "
                        "(throttle: {rate: ..., interfaces: [eth0]})")
    return found


def check_line(conn: Any, paths: Any) -> str:
    """Return `check`'s line: which interfaces a throttle would shape, and for each whether
    its root can be put back exactly (only the kernel's own can)."""
    if not conn.stat(paths.tc).exists:
        return f"throttle (whole-server playbooks): {paths.tc} missing (iproute2)"
    try:
        names = public_interfaces(conn, paths)
    except StepError as exc:
        return f"throttle (whole-server playbooks): {exc}"
    found = read_state(conn, paths.tc, names)
    said = []
    for name in names:
        now = found.get(name)
        if now is None:
            said.append(f"{name} (no such interface)")
        elif tc.is_default(now["qdiscs"]):
            said.append(f"{name} (the kernel's own root: put back exactly)")
        else:
            root = tc.root_of(now["qdiscs"]) or {}
            said.append(f"{name} (a root of its own, {root.get('kind')} {root.get('handle')} -"
                        " refused, nothing would change)")
    return "throttle (whole-server playbooks) would shape: " + ", ".join(said)


class Throttle:
    """Shapes the server's outgoing traffic to a rate, SSH and exempt addresses excepted."""

    name = "throttle"

    def plan(self, ctx: Context) -> Plan:
        bits = tc.rate_bits(ctx.params.get("rate"))
        if bits is None:
            raise StepError("throttle needs `rate` like 10mbit (kbit, mbit, gbit; 64kbit to "
                            "5gbit) in the playbook")
        interfaces = public_interfaces(ctx.conn, ctx.server.linux, ctx.params.get("interfaces"))
        ssh = sorted({22} | ({ctx.server.port} if ctx.server.transport == "ssh" else set()))
        exempt = list(ctx.server.firewall_exempt)
        found = read_state(ctx.conn, ctx.server.linux.tc, interfaces)
        before = {}
        for iface in interfaces:
            now = found.get(iface)
            if now is None:
                raise StepError(f"{ctx.server.name} has no interface {iface!r}")
            if tc.is_ours(now["qdiscs"]):
                raise StepError(f"{iface} on {ctx.server.name} already has the agent's "
                                f"throttle ({tc.HANDLE}) that no open change of this journal "
                                f"holds; remove it (tc qdisc del dev {iface} root) first")
            if not tc.is_default(now["qdiscs"]):
                root = tc.root_of(now["qdiscs"]) or {}
                raise StepError(f"{iface} on {ctx.server.name} has a root qdisc of its own "
                                f"({root.get('kind')} {root.get('handle')}); the throttle "
                                "would replace it and could not put it back exactly: leave "
                                "the throttle out of the playbook, or remove that qdisc first")
            before[iface] = tc.comparable(now["qdiscs"])
        actions = [Run(argv) for iface in interfaces
                   for argv in tc.commands(ctx.server.linux.tc, iface, bits, ssh, exempt)]
        undo = {"interfaces": before, "bits": bits, "rate": ctx.params["rate"],
                "ssh_ports": ssh, "exempt": exempt}
        spared = ", ".join([f"SSH (source port {', '.join(map(str, ssh))})", *exempt])
        return Plan(self.name, actions,
                    facts={"interfaces": interfaces, "rate": ctx.params["rate"],
                           "unshaped": spared},
                    undo=undo,
                    note=f"shapes what {', '.join(interfaces)} send(s) to {ctx.params['rate']}; "
                         f"{spared} at full speed; uploads to the server are not shaped; "
                         "lost at a reboot until the next tick")

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        found = read_state(ctx.conn, ctx.server.linux.tc, list(undo["interfaces"]))
        actions = []
        for iface, before in undo["interfaces"].items():
            now = found.get(iface)
            if now is None or tc.comparable(now["qdiscs"]) == before:
                continue  # gone (verify says so) or already back
            if not tc.is_ours(now["qdiscs"]):
                root = tc.root_of(now["qdiscs"]) or {}
                raise StepError(f"{iface} on {ctx.server.name} has a root qdisc the agent did "
                                f"not put there ({root.get('kind')} {root.get('handle')}); "
                                "it is left as it is")
            actions.append(Run(tc.removal(ctx.server.linux.tc, iface)))
        return Plan(self.name, actions, undo=undo)

    def repair_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan | None:
        """Return the actions that put the tree back on each interface that lost it (a
        reboot, the interface made again), or that something changed; None when every
        interface shows it as planned. A root of someone else's is refused, never replaced."""
        found = read_state(ctx.conn, ctx.server.linux.tc, list(undo["interfaces"]))
        want = tc.expected(undo["bits"], undo["ssh_ports"], undo["exempt"])
        actions: list = []
        changed = []
        for iface, before in undo["interfaces"].items():
            now = found.get(iface)
            if now is None:
                raise StepError(f"{ctx.server.name} has no interface {iface!r} any more")
            if _same(tc.state(now["qdiscs"], now["classes"], now["filters"]), want):
                continue
            if tc.is_ours(now["qdiscs"]):
                actions.append(Run(tc.removal(ctx.server.linux.tc, iface)))
            elif tc.comparable(now["qdiscs"]) != before:
                raise StepError(f"{iface} on {ctx.server.name} now has a root qdisc the agent "
                                "did not put there; the throttle is not put back over it")
            changed.append(iface)
            actions += [Run(argv) for argv in tc.commands(
                ctx.server.linux.tc, iface, undo["bits"], undo["ssh_ports"], undo["exempt"])]
        if not actions:
            return None
        return Plan(self.name, actions, undo=undo,
                    note=f"the throttle was gone or changed on {', '.join(changed)}")

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Suspended: every interface holds exactly the planned tree. Back: every interface
        reads back exactly as recorded before the throttle."""
        found = read_state(ctx.conn, ctx.server.linux.tc, list(undo["interfaces"]))
        want = tc.expected(undo["bits"], undo["ssh_ports"], undo["exempt"])
        for iface, before in undo["interfaces"].items():
            now = found.get(iface)
            if now is None:
                raise VerifyFailed(f"interface {iface} is gone from {ctx.server.name}")
            if suspended:
                got = tc.state(now["qdiscs"], now["classes"], now["filters"])
                if not _same(got, want):
                    raise VerifyFailed(f"{iface}: the throttle is not as planned: read "
                                       f"{got}, planned {want}")
            elif tc.comparable(now["qdiscs"]) != before:
                raise VerifyFailed(f"{iface}: qdiscs are {tc.comparable(now['qdiscs'])}, "
                                   f"not {before} as before the throttle")


def _same(got: dict, want: dict) -> bool:
    """Compare read-back and planned trees (JSON round trips turn tuples into lists)."""
    return json.loads(json.dumps(got)) == json.loads(json.dumps(want))
