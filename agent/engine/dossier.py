"""`case export CASE --out DIR`: the dossier of one case for a dispute (issue 19 item 5;
reference/billing-evidence.md 5.4): what was done, when, by whom, on whose authority, what
was backed up, when it was reversed, and the proof that the record was not edited since.

Files written (and nothing of any other target):
- `case.json`: the case (target, hold, playbook, reason, caller, invoices, grace date,
  status, who closed it) and, for a tree's case, its children;
- `events.jsonl`: every audit event of the case and of its children, in order, each with
  its chain links (`prev_hash`, `hash`) and the SHA-256 of its detail as stored: anyone can
  recompute each hash (agent/journal/chain.py, `row_hash` with that digest) and compare the
  last with `chain.json`. The detail itself is shown without the contents of files (the
  diff lines of a step's actions, which can show password hashes or a shared file's other
  lines): what was done to which file stays;
- `changes.json`: every change made for the case (step, stage, state, times, error) without
  its undo data (prior password hashes stay in the journal), but with what a backup was:
  its archive, size and SHA-256;
- `chain.json`: the chain's verdict at export time and its head, and the last signed
  checkpoint (its signature and public key: an event at or before its `covers_seq` is
  proven against a head billing was sent);
- `visitors.warc`: what visitors were shown at each stage: each reply the landing page's
  verify got from outside (status line, the headers it checks, the first 4 KiB of the body,
  `WARC-Truncated: length` when cut), as WARC/1.0 response records dated when the step was
  applied;
- `timeline.txt`: the same, one line per event, for a person;
- `manifest.json`: the SHA-256 of each file above.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from agent import __version__
from agent.engine.outcome import iso
from agent.errors import BadInput
from agent.journal import chain, checkpoint

_BACKUP_KEYS = ("archive", "sha256", "size", "taken_at", "reused")
FILES = ("case.json", "events.jsonl", "changes.json", "chain.json", "timeline.txt",
         "visitors.warc")


def export(engine: Any, case_id: str, out: str) -> dict[str, Any]:
    """Write the dossier of `case_id` into the new or empty folder `out`; return the
    manifest. BadInput for an unknown case or a folder that holds anything."""
    journal = engine.journal
    if not journal.has_case(case_id):
        raise BadInput(f"no case {case_id!r} in the journal")
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BadInput(f"{out} exists and is not an empty folder: a dossier is never written "
                       "over anything")
    case = journal.case(case_id)
    children = journal.children(case_id, status=None)
    ids = [case_id, *[c.id for c in children]]
    events = journal.case_rows("events", ids)
    rows = journal.case_rows("changes", ids)
    verdict = chain.verify(journal.db)
    # The last signed head, which the case's events are proven against.
    signed, bad_mark, last_mark = checkpoint.verify_all(journal.db, None)
    texts = {
        "case.json": _dump(_case(case) | {"children": [_case(c) for c in children]}),
        "events.jsonl": "".join(json.dumps(_event(e), sort_keys=True) + "\n" for e in events),
        "changes.json": _dump([_change(r) for r in rows]),
        "chain.json": _dump({"intact": verdict.bad_seq is None, "checked": verdict.checked,
                             "head": verdict.head, "head_seq": verdict.head_seq,
                             "first_bad_seq": verdict.bad_seq, "problem": verdict.problem,
                             "checkpoints": signed, "checkpoint_problem": bad_mark,
                             "last_checkpoint": last_mark}),
        "timeline.txt": "".join(_line(e) for e in events),
    }
    blobs = {name: text.encode() for name, text in texts.items()}
    blobs["visitors.warc"] = _warc(events)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, data in blobs.items():
        _write(folder / name, data)
    manifest = {"case_id": case_id, "exported_at": iso(engine.now()),
                "exported_by": engine.caller, "agent_version": __version__,
                "files": {n: hashlib.sha256(d).hexdigest() for n, d in blobs.items()}}
    _write(folder / "manifest.json", _dump(manifest).encode())
    engine.audit("case.exported", server=case.server, kind=case.kind, name=case.name,
                 case_id=case_id, outcome="done", manifest_sha256=hashlib.sha256(
                     _dump(manifest).encode()).hexdigest())
    return manifest


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _warc(events: list[dict[str, Any]]) -> bytes:
    """Return the WARC records of every reply a step's verify kept (`seen`)."""
    import base64
    import io
    from http import HTTPStatus

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from agent.steps.visitor import HEAD_BYTES

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=False)
    for e in events:
        detail = json.loads(e["detail"]) if e.get("detail") else {}
        for reply in detail.get("seen") or []:
            body = base64.b64decode(detail["bodies"][reply["body_sha256"]])
            try:
                phrase = HTTPStatus(reply["status"]).phrase
            except ValueError:
                phrase = "Unknown"
            http = StatusAndHeaders(f"{reply['status']} {phrase}",
                                    list(reply["headers"].items()), protocol="HTTP/1.1")
            # The audit event that holds this reply (an extension field: no WARC- prefix).
            extra = {"WARC-Date": iso(e["at"]), "Suspension-Agent-Audit-Seq": str(e["seq"])}
            if len(body) >= HEAD_BYTES:
                extra["WARC-Truncated"] = "length"
            writer.write_record(writer.create_warc_record(
                reply["url"], "response", payload=io.BytesIO(body), http_headers=http,
                warc_headers_dict=extra))
    return out.getvalue()


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"


def _case(c: Any) -> dict[str, Any]:
    return {"id": c.id, "server": c.server, "kind": c.kind, "name": c.name, "hold": c.hold,
            "playbook": c.playbook, "reason": c.reason, "caller": c.caller,
            "started": iso(c.started_at), "stage": c.stage, "status": c.status,
            "invoices": list(c.invoices),
            "grace_until": iso(c.grace_until) if c.grace_until else None,
            "parent": c.parent, "role": c.role}


def _event(e: dict[str, Any]) -> dict[str, Any]:
    return {k: e.get(k) for k in ("seq", "at", "event", "server", "kind", "name", "case_id",
                                  "hold", "step", "caller", "outcome", "prev_hash", "hash")
            } | {"time": iso(e["at"]), "detail_sha256": chain.detail_digest(e.get("detail")),
                 "detail": _shown(json.loads(e["detail"]) if e.get("detail") else {})}


def _shown(detail: dict[str, Any]) -> dict[str, Any]:
    """Return an event's detail without file contents: of its actions, the first line of
    each (the command, the file written) and none of the diff lines below it."""
    if isinstance(detail.get("actions"), list):
        detail = detail | {"actions": [a for a in detail["actions"]
                                       if isinstance(a, str) and not a.startswith(" ")]}
    return detail


def _change(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: r[k] for k in ("seq", "case_id", "name", "step", "stage", "state", "error",
                             "driver")} | {"at": iso(r["at"]), "updated": iso(r["updated_at"])}
    if r["step"] == "backup":
        undo = json.loads(r["undo"])
        out["backup"] = {k: undo[k] for k in _BACKUP_KEYS if k in undo}
    return out


def _line(e: dict[str, Any]) -> str:
    detail = _shown(json.loads(e["detail"]) if e.get("detail") else {})
    said = ", ".join(f"{k}={v}" for k, v in sorted(detail.items()) if k != "caller")
    who = e.get("caller") or "?"
    what = " ".join(x for x in (e.get("kind"), e.get("name"), e.get("step")) if x)
    return (f"{iso(e['at'])}  {e['event']:<18} {what}  by {who}"
            + (f"  [{e['outcome']}]" if e.get("outcome") else "") + (f"  {said}" if said
                                                                       else "") + "\n")
