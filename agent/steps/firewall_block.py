"""The firewall_block step (server scope): the agent's nftables table (agent/steps/firewall.py)
loaded, verified in the kernel and from outside, and removed again exactly.

Provenance: a table of that name already loaded that no case of this server's journal put
there (or another case did) is refused, never replaced: the agent cannot know what it did.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

from agent.errors import StepError, VerifyFailed
from agent.steps import firewall
from agent.steps.actions import FileState, Run, Write, file_state, with_parents
from agent.steps.landing_include import RemoveDirs
from agent.steps.protocol import Context, Plan

_PROBE_TIMEOUT = 3.0


def _listing(ctx: Context) -> dict:
    """Return the agent's table as nft lists it (JSON), or {} when it is not loaded."""
    result = ctx.conn.run([ctx.server.linux.nft, "-j", "list", "table", "inet", firewall.TABLE],
                          ok_codes=(0, 1))
    if result.rc == 1:
        return {}
    try:
        return firewall.table_state(json.loads(result.text))
    except json.JSONDecodeError as exc:
        raise StepError(f"nft -j list table printed no JSON ({exc})") from None


class FirewallBlock:
    """Closes the server's mail client ports (or the playbook's `ports`) with one table."""

    name = "firewall_block"

    def __init__(self, default_ports: tuple[int, ...] = firewall.MAIL_CLIENT_PORTS,
                 doveadm: Callable[[Any], str] = lambda server: server.linux.doveadm,
                 auth: Any = None, local: Any = None) -> None:
        # The driver's defaults: its mail client ports (cPanel adds webmail's), where its
        # settings say doveadm is, how it withdraws SMTP AUTH while 25 stays open (None: it
        # cannot yet, and the plan says so), and which closed ports the server's own web
        # server proxies to over loopback (`local`: .ports, .plan(ctx, ports) -> note and
        # probe data, .problems(ctx, data) -> what the probe from outside saw; None: none).
        self.default_ports = default_ports
        self.doveadm = doveadm
        self.auth = auth
        self.local = local

    def plan(self, ctx: Context) -> Plan:
        paths = ctx.server.linux
        ports = firewall.ports_for(ctx.params, self.default_ports)
        # The agent's own way in is never closed: the port it connects to (a proxy or a
        # forward may make that other than sshd's) and sshd's usual 22.
        ssh = {ctx.server.port, 22} if ctx.server.transport == "ssh" else set()
        if own := sorted(ssh & set(ports)):
            raise StepError(f"port {own[0]} is the agent's own way in (SSH) on "
                            f"{ctx.server.name}; it is never closed")
        exempt = list(ctx.server.firewall_exempt)
        path = f"{paths.nft_dir}/active.nft"
        folders = with_parents([paths.nft_dir])
        found = ctx.conn.read_many([*folders, path, *firewall.SAVED_RULESETS])
        loaded = _listing(ctx)
        if loaded and loaded.get("case") != ctx.case_id:
            owner = (f"case {loaded['case']}" if loaded.get("case") else
                     "something other than the agent")
            raise StepError(f"table inet {firewall.TABLE} is already loaded on "
                            f"{ctx.server.name}, put there by {owner}; remove it (nft delete "
                            f"table inet {firewall.TABLE}) or finish that case first")
        before = file_state(found[path], ctx.server.name)
        local = [p for p in self.local.ports if p in ports] if self.local else []
        local_note, local_probe = self.local.plan(ctx, local) if self.local else ("", None)
        text = firewall.ruleset(ctx.case_id, ports, exempt, local).encode()
        made = [d for d in folders if not found[d].exists]
        actions: list = _make_dirs(made, paths.nft_dir)
        actions += [Write(before, FileState(path, True, text, 0o600, "0:0")),
                    Run([paths.nft, "-c", "-f", path]), Run([paths.nft, "-f", path])]
        undo = {"case": ctx.case_id, "file": path, "before": before.to_dict(),
                "created_dirs": made, "ports": ports, "exempt": exempt, "auth": None,
                "local": local, "local_probe": local_probe}
        if firewall.SMTP in ports:
            smtp = "25 is closed too: no mail arrives"
        elif self.auth is None:
            smtp = ("25 stays open (mail still arrives); SMTP AUTH on 25 is not withdrawn "
                    f"on the {ctx.server.panel} driver yet")
        else:
            # Before the table: once the table is in, only 25 is left to authenticate on.
            more, undo["auth"], said = self.auth.plan(ctx)
            actions = more + actions
            smtp = f"25 stays open (mail still arrives); {said}"
        actions += self._kick(ctx)
        boot = [p for p in firewall.SAVED_RULESETS if found[p].exists and firewall.boot_include(
            paths.nft_dir) in found[p].data.decode("utf-8", "replace")]
        kept = (f"kept across reloads and reboots ({', '.join(boot)} includes it)" if boot else
                "lost at a reload of nftables.service or a reboot until the next tick")
        return Plan(self.name, actions,
                    facts={"ports": ports, "exempt": exempt, "table": f"inet {firewall.TABLE}",
                           "boot": boot},
                    undo=undo, note=f"closes TCP {', '.join(map(str, ports))}; {smtp}; "
                    f"{local_note + '; ' if local_note else ''}{kept}")

    def _kick(self, ctx: Context) -> list[Run]:
        """Open IMAP/POP sessions end now (their next segment would get a reset anyway);
        nothing when the server has no doveadm."""
        doveadm = self.doveadm(ctx.server)
        return [Run([doveadm, "kick", "*"], ok_codes=(0, 68))] \
            if ctx.conn.stat(doveadm).exists else []

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        from agent.steps.actions import carry_out

        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        before = FileState.from_dict(undo["before"])
        found = ctx.conn.read_many([before.path, *undo["created_dirs"],
                                    *firewall.SAVED_RULESETS])
        current = file_state(found[before.path], ctx.server.name)
        nft = ctx.server.linux.nft
        # The table goes first (one transaction, present or not), then the agent's file.
        actions: list = [Run([nft, "-f", "-"], stdin=firewall.removal().encode())]
        if current != before:
            actions.append(Write(current, before))
        actions += _unsaved(found, ctx.server.name)
        if undo.get("auth") and self.auth is not None:
            actions += self.auth.revert(ctx, undo["auth"])
        gone = RemoveDirs(tuple(d for d in undo["created_dirs"] if found[d].exists))
        return Plan(self.name, actions + ([gone] if gone.paths else []), undo=undo)

    def repair_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan | None:
        """Return the actions that load the table again, as it was planned, when something
        removed or changed it while the case is open (a `flush ruleset`, a reload of
        nftables.service); None when it is loaded as planned. A table of that name that
        another case or something else loaded is refused, never replaced."""
        loaded = _listing(ctx)
        flag = self.auth.repair(ctx, undo["auth"]) if undo.get("auth") and self.auth else []
        if loaded == firewall.expected(undo["case"], undo["ports"], undo["exempt"],
                                       undo.get("local")):
            return Plan(self.name, flag, undo=undo, note="SMTP AUTH flag was gone") if flag \
                else None
        if loaded and loaded.get("case") != undo["case"]:
            raise StepError(f"table inet {firewall.TABLE} on {ctx.server.name} was replaced "
                            "by one this case did not load; it is left as it is")
        paths = ctx.server.linux
        path = undo["file"]
        wanted = FileState(path, True,
                           firewall.ruleset(undo["case"], undo["ports"], undo["exempt"],
                                            undo.get("local")).encode(), 0o600, "0:0")
        folders = with_parents([paths.nft_dir])
        found = ctx.conn.read_many([*folders, path])
        actions: list = _make_dirs([d for d in folders if not found[d].exists], paths.nft_dir)
        current = file_state(found[path], ctx.server.name)
        if current != wanted:
            actions.append(Write(current, wanted))
        actions += flag + [Run([paths.nft, "-c", "-f", path]), Run([paths.nft, "-f", path])]
        actions += self._kick(ctx)
        return Plan(self.name, actions, undo=undo,
                    note=f"table inet {firewall.TABLE} was {'changed' if loaded else 'gone'}")

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Suspended: the kernel holds exactly the agent's table as planned, and each
        closed port refuses a connection from the agent (unless its address is exempt,
        where the kernel's table is the whole proof). Back: no such table is loaded."""
        loaded = _listing(ctx)
        if not suspended:
            if loaded:
                raise VerifyFailed(f"table inet {firewall.TABLE} is still loaded")
            saved = ctx.conn.read_many(list(firewall.SAVED_RULESETS))
            if kept := [p for p, f in saved.items() if f.exists and firewall.without_table(
                    f.data.decode("utf-8", "replace")) is not None]:
                raise VerifyFailed(f"{', '.join(kept)} still hold(s) table inet "
                                   f"{firewall.TABLE}: it would come back at the next boot")
            return
        want = firewall.expected(undo["case"], undo["ports"], undo["exempt"], undo.get("local"))
        if loaded != want:
            raise VerifyFailed(f"table inet {firewall.TABLE} is not as planned: loaded "
                               f"{loaded or 'nothing'}, planned {want}")
        if undo.get("local_probe") and self.local and (seen := self.local.problems(
                ctx, undo["local_probe"])):
            raise VerifyFailed(seen)
        address = ctx.server.address
        if undo.get("auth") and _offers_auth(address):
            raise VerifyFailed(f"{address}:25 still offers SMTP AUTH")
        for port in undo["ports"]:
            if _answers(address, port):
                if _exempt(ctx, undo["exempt"]):
                    return  # the agent's own address is exempt: it cannot see the grade
                raise VerifyFailed(f"{address}:{port} still accepts connections")


def _make_dirs(missing: list[str], nft_dir: str) -> list[Run]:
    """Return the `install -d` of each missing folder, parents first. Only the table's own
    folder is private: a parent made here (/var/lib/suspension-agent) is shared with the
    landing pages, which Apache must be able to read."""
    return [Run(["install", "-d", "-m", "700" if d == nft_dir else "755", d]) for d in missing]


def _unsaved(found: dict, server: str) -> list:
    """Return the edits that take the agent's table out of a saved ruleset (a panel that
    saved the live ruleset while the grade was on), the rest of each file as it is."""
    edits = []
    for path in firewall.SAVED_RULESETS:
        if not found[path].exists:
            continue
        current = file_state(found[path], server)
        kept = firewall.without_table(current.data.decode("utf-8", "surrogateescape"))
        if kept is not None:
            edits.append(Write(current, FileState(path, True,
                                                  kept.encode("utf-8", "surrogateescape"),
                                                  current.mode, current.owner)))
    return edits


def _offers_auth(address: str) -> bool:
    """Return True when the SMTP server on address:25 lists AUTH in its EHLO reply; False
    when it does not, or nothing listens there. VerifyFailed when it cannot be asked (a
    probe that cannot see the effect is no proof of it)."""
    import smtplib

    try:
        with smtplib.SMTP(address, firewall.SMTP, timeout=_PROBE_TIMEOUT) as smtp:
            smtp.ehlo("suspension-agent-probe")
            return smtp.has_extn("auth")
    except ConnectionRefusedError:
        return False
    except (OSError, smtplib.SMTPException) as exc:
        raise VerifyFailed(f"{address}:25 could not be asked whether it offers SMTP AUTH: "
                           f"{exc.__class__.__name__}: {exc}") from None


def _answers(address: str, port: int) -> bool:
    """Return True when a TCP connection to address:port is accepted."""
    try:
        with socket.create_connection((address, port), timeout=_PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def _exempt(ctx: Context, exempt: list[str]) -> bool:
    """Return True when the address the server sees the agent come from is exempt."""
    import ipaddress

    seen = ctx.conn.run(["sh", "-c", 'printf %s "${SSH_CONNECTION%% *}"']).text.strip()
    try:
        me = ipaddress.ip_address(seen)
    except ValueError:
        return False
    return any(me in ipaddress.ip_network(n) for n in exempt)
