"""Turn outcomes into the JSON contract or readable text for an admin."""

from __future__ import annotations

import json
import time
from typing import Any

from agent.engine.outcome import Outcome
from agent.ids import printable


def outcome_dict(o: Outcome) -> dict[str, Any]:
    """Return the contract's JSON object for one outcome (extra keys are additive only)."""
    d = {"ok": o.ok, "target": o.target, "state": o.state, "holds": o.holds, "stage": o.stage,
         "applied": o.applied, "pending": o.pending, "errors": o.errors}
    if o.message:
        d["message"] = o.message
    if o.plans:
        d["plan"] = o.plans
    if o.reverted:
        d["reverted"] = o.reverted
    if o.cases:
        d["cases"] = o.cases
    if o.warnings:
        d["warnings"] = o.warnings
    if o.children is not None:
        d["children"] = o.children
    if o.invoices:
        d["invoices"] = o.invoices
    if o.not_lifted is not None:
        d["not_lifted"] = o.not_lifted
    return d


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=None, sort_keys=False, default=str)


def outcome_text(o: Outcome, dry_run: bool = False) -> str:
    t = o.target
    lines = [f"{t['server']} {t['kind']} {t['name']}: {o.state}"
             + (f" (holds: {', '.join(o.holds)})" if o.holds else "")
             + (f", stage {o.stage}" if o.stage is not None and o.stage >= 0 else "")]
    if o.message:
        lines.append(f"  note: {printable(o.message)}")
    if o.not_lifted is not None:
        left = o.not_lifted
        lines.append("  NOT LIFTED: still held by " + ", ".join(left["holds"])
                     + (f"; invoices overdue: {', '.join(left['invoices'])}"
                        if left["invoices"] else ""))
    for p in o.plans:
        lines.append(f"  {'revert ' if p.get('revert') else ''}{p['step']}"
                     + (f" (stage {p['stage']})" if "stage" in p else "")
                     + (" would:" if dry_run else ":"))
        lines += [f"    {a}" for a in p["actions"]]
    for c in o.cases:
        if "stuck" in c:
            lines.append(f"  STUCK    {c['stuck']}: still applied, revert failed: "
                         f"{printable(str(c['error']))}")
            continue
        lines.append(f"  case     {c['id']} hold {c['hold']}, playbook {c['playbook']}, "
                     f"stage {c['stage']} reached, next due "
                     f"{c['next_due'] or 'never (last stage reached)'}")
        if c.get("failures"):
            lines.append(f"  RETRY    the next stage failed {c['failures']} time(s), tried again "
                         f"at {c['next_due']}: {printable(str(c['last_error']))}")
    for a in o.applied:
        lines.append(f"  applied  {a['step']:<14} stage {a['stage']}  since {a['at']}"
                     + ("  (changed now)" if a["changed"] else ""))
    for r in o.reverted:
        lines.append(f"  reverted {r['step']}")
    for p in o.pending:
        lines.append(f"  pending  {p['step']:<14} due {p['due']} ({p['hold']})")
    for e in o.errors:
        if "account" in e:
            continue  # a child's error: shown under that child below
        where = f"{e['step']}: " if e.get("step") else ""
        lines.append(f"  ERROR    {where}{printable(str(e['message']))}")
    lines += [f"  WARNING  {w}" for w in o.warnings]
    lines += children_text(o.children or [])
    return "\n".join(lines)


def children_text(children: list[dict]) -> list[str]:
    """Return the per-child summary of a tree target: one line per account."""
    lines = [f"  {len(children)} account(s):"] if children else []
    for c in children:
        extra = f", stage {c['stage']}" if c.get("stage") is not None and c["stage"] >= 0 else ""
        holds = f" (holds: {', '.join(c['holds'])})" if c.get("holds") else ""
        role = f" [{c['role']}]" if c.get("role") and c["role"] != "account" else ""
        lines.append(f"    {c['account']:<16} {c['state']}{holds}{extra}{role}")
        if c.get("message"):
            lines.append(f"      note: {printable(c['message'])}")
        lines += [f"      ERROR {e['step'] + ': ' if e.get('step') else ''}"
                  f"{printable(str(e['message']))}" for e in c["errors"]]
        lines += [f"      STUCK {s['step']}: still applied, revert failed: "
                  f"{printable(str(s['error']))}" for s in c.get("stuck", [])]
    return lines


def ladder_text(stages: list[dict]) -> str:
    lines = []
    for st in stages:
        lines.append(f"stage {st['stage']} (after {st['delay']}):")
        for entry in st["steps"]:
            lines.append(f"  {entry['step']}:")
            lines += [f"    {a}" for a in entry["actions"]]
    return "\n".join(lines)


def tree_plan_text(found: dict) -> str:
    """Return `plan --reseller` / `--whole-server` for a person: the tree, the login
    locks, each ladder."""
    tree = found["tree"]
    head = (f"whole server {tree['server']}" if "server" in tree
            else f"reseller {tree['reseller']}")
    lines = [f"{head}: resellers {', '.join(tree['resellers']) or 'none'}; logins "
             f"{', '.join(tree['logins']) or 'none'}; {len(tree['accounts'])} account(s)"]
    lines += [f"  note: {n}" for n in tree["notes"]]
    for entry in found.get("server_steps", []):
        lines.append(f"server step {entry['step']} (stage {entry['stage']}, after "
                     f"{entry['delay']}, once the accounts reached it):")
        lines += [f"    {a}" for a in entry["actions"]]
    lines.append("first, the logins:")
    for entry in found["logins"]:
        lines.append(f"  {entry['account']} {entry['step']}:")
        lines += [f"    {a}" for a in entry["actions"]]
    for child in found["children"]:
        lines.append(f"account {child['account']}:")
        lines += ["  " + line for line in ladder_text(child["stages"]).splitlines()]
    return "\n".join(lines)


def history_text(events: list[dict]) -> str:
    lines = []
    for e in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"]))
        # The commands carried out are in --json; the table says how many.
        # What visitors were shown (kept for the dossier) is counted, not printed.
        extra = " ".join(f"{k}={len(v)} lines" if k == "actions" else
                         f"{k}={len(v)} replies" if k == "seen" else f"{k}={v}"
                         for k, v in e["detail"].items() if k != "bodies")
        # Stored text (a caller's --reason, an error from the server) may hold escape
        # sequences or newlines: shown escaped, it can neither drive the terminal nor forge
        # a line of this table.
        lines.append(printable(f"{when}Z  {e['event']:<18} {e['step'] or '-':<13} "
                               f"{e['outcome'] or '-':<9} {e['hold'] or '-':<8} "
                               f"{e['caller'] or '-'} {extra}"))
    return "\n".join(lines) or "no history"

