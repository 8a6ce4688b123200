"""Archive verification, shared by every panel's backup: an archive counts only when it is
there, lists cleanly to its end, holds what it must and has the checksum recorded for it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent.config.validate import duration
from agent.connector import Connector
from agent.errors import AgentError, StepError
from agent.steps.actions import carry_out
from agent.steps.protocol import Memo

# One round trip for the whole check: size, listing to its end, checksum, the archiver's
# warnings, in sections between lines of a marker the caller draws at random (a member name
# is customer data and could imitate any fixed marker). Paths arrive as operands.
_CHECK = (
    'n=$(stat -c %s -- "$a") || exit 3; '
    'printf "%s SIZE %s\\n" "$m" "$n"; h=$("$sum" -- "$a") || exit 5; '
    'printf "%s SHA %s\\n" "$m" "${h%% *}"; printf "%s LIST\\n" "$m"; '
    '"$tar" --list --gzip --file="$a" || exit 4; printf "%s WARN\\n" "$m"; '
    'cat -- "$a.warnings" 2>/dev/null; exit 0'
)
_VERIFY = 'a=$1; tar=$2; sum=$3; m=$4; ' + _CHECK
# The same check for several archives in one command, each in a subshell (its `exit` ends
# only its own check), each between an ITEM line and an RC line with its exit status.
_VERIFY_MANY = ('tar=$1; sum=$2; m=$3; shift 3; i=0; for a in "$@"; do '
                'printf "%s ITEM %s\\n" "$m" "$i"; (' + _CHECK + '); '
                'printf "%s RC %s\\n" "$m" "$?"; i=$((i+1)); done')
# The fewest archives `check_many` puts in one command while it has workers to spare.
PER_COMMAND = 8
# A check held for a plan (Memo.keep) under this key with the archive's path.
HELD = "archive-check"


def verify_archive(conn: Connector, archive: str, must_hold: dict[str, str], tar: str,
                   sha256sum: str, known_sha256: str | None = None,
                   shared: Memo | None = None) -> dict[str, Any]:
    """Ensure `archive` (a .tar.gz on the server) is complete; return its facts.

    `must_hold` maps what must be in it (shown in errors) to the member path prefix that
    proves it. Raises StepError when the archive is missing or empty, does not list to the
    end, lacks any of them, or no longer has `known_sha256`. The facts are its SHA-256,
    size, number of entries and the warnings the archiver left beside it. A check that
    `check_many` ran for it moments ago in the same batch (held in `shared`) is used once
    in place of running it again.
    """
    held = shared.take((HELD, archive)) if shared is not None else None
    if held is None:
        marker = "SA-" + secrets.token_hex(8)
        result = conn.run(["sh", "-c", _VERIFY, "sh", archive, tar, sha256sum, marker],
                          timeout=3600, ok_codes=(0, 3, 4, 5))
        held = (result.rc, result.err, *_sections(result.text, marker))
    rc, err, facts, sections = held
    return _judge(archive, rc, err, facts, sections, must_hold, known_sha256)


def check_many(conn: Connector, archives: list[str], tar: str, sha256sum: str,
               shared: Memo, workers: int = 1) -> None:
    """Run the whole check of every archive, in at most `workers` commands side by side,
    and hold each archive's outcome in `shared` for its `verify_archive`. An archive whose
    check did not pass is not held: its own call runs it again and reports its own error.
    """
    archives = list(dict.fromkeys(archives))
    if not archives:
        return
    # Side by side for the server's CPU (hashing and unpacking big archives is its work),
    # but a few archives per command: each command costs a round trip of its own.
    commands = max(1, min(workers, -(-len(archives) // PER_COMMAND)))
    size = -(-len(archives) // commands)
    chunks = [archives[i:i + size] for i in range(0, len(archives), size)]

    def one(chunk: list[str]) -> None:
        marker = "SA-" + secrets.token_hex(8)
        result = conn.run(["sh", "-c", _VERIFY_MANY, "sh", tar, sha256sum, marker, *chunk],
                          timeout=3600)
        for index, (rc, text) in _items(result.text, marker).items():
            if rc == 0 and 0 <= index < len(chunk):
                shared.keep((HELD, chunk[index]), (0, "", *_sections(text, marker)))

    if len(chunks) == 1:
        one(chunks[0])
    else:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            list(pool.map(one, chunks))


def _items(text: str, marker: str) -> dict[int, tuple[int, str]]:
    """Split `_VERIFY_MANY` output into index -> (exit status, that archive's output);
    an item cut short (no RC line) is left out."""
    found: dict[int, tuple[int, str]] = {}
    index, lines = None, []
    for line in text.split("\n"):
        if line.startswith(marker + " ITEM "):
            index, lines = int(line.rsplit(" ", 1)[1]), []
        elif line.startswith(marker + " RC ") and index is not None:
            found[index] = (int(line.rsplit(" ", 1)[1]), "\n".join(lines))
            index = None
        elif index is not None:
            lines.append(line)
    return found


def _sections(text: str, marker: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Return the marker lines' words with their values, and the lines under each."""
    sections: dict[str, list[str]] = {}
    facts: dict[str, str] = {}
    at = None
    for line in text.split("\n"):
        if line.startswith(marker + " "):
            word, _, value = line[len(marker) + 1:].partition(" ")
            facts[word] = value
            at = word
            sections.setdefault(word, [])
        elif at is not None:
            sections[at].append(line)
    return facts, sections


def _judge(archive: str, rc: int, err: str, facts: dict[str, str],
           sections: dict[str, list[str]], must_hold: dict[str, str],
           known_sha256: str | None) -> dict[str, Any]:
    """Return the archive's facts from its check's output, or raise StepError saying why
    it does not count."""
    if rc == 3:
        raise StepError(f"backup archive {archive} is missing or empty")
    if rc in (4, 5):
        raise StepError(f"backup archive {archive} does not "
                        f"{'list to its end' if rc == 4 else 'read'}: {err.strip()[-300:]}")
    listing = [line for line in sections.get("LIST", []) if line]
    size = int(facts.get("SIZE") or 0)
    if "WARN" not in facts or size == 0:
        raise StepError(f"backup archive {archive} is missing or empty")
    for what, prefix in must_hold.items():
        if not any(line.startswith(prefix) for line in listing):
            raise StepError(f"backup archive {archive} does not hold {what}")
    digest = facts["SHA"]
    if known_sha256 and known_sha256 != digest:
        raise StepError(f"backup archive {archive} changed since it was taken")
    warnings = [line for line in sections.get("WARN", []) if line][:20]
    return {"sha256": digest, "size": size, "entries": len(listing), "warnings": warnings}


def reusable(ctx: Any, check: Callable[[Any, dict[str, Any]], dict[str, Any]],
             is_ours: Callable[[dict[str, Any]], bool] = lambda _found: True
             ) -> dict[str, Any] | None:
    """Return the undo data of the account's newest backup when the playbook's
    `reuse_if_newer_than` allows it and `check` still finds it whole; else None.

    `ctx` is a step Context; `is_ours` tells a driver's own archives from another's.
    """
    found = _candidate(ctx, is_ours)
    if found is None:
        return None
    try:
        check(ctx, found)
    except AgentError:
        return None  # gone or altered since: take a fresh one
    return found


def check_reusable(ctxs: list[Any], tar: str, sha256sum: str, workers: int,
                   is_ours: Callable[[dict[str, Any]], bool] = lambda _found: True) -> None:
    """Check at once (`check_many`) every archive that the plans of `ctxs` (one batch's
    step Contexts, sharing one Memo) may reuse, so that each plan finds its check held."""
    found = [c for c in (_candidate(ctx, is_ours) for ctx in ctxs) if c is not None]
    if len(found) > 1 and ctxs[0].shared is not None:
        check_many(ctxs[0].conn, [f["archive"] for f in found], tar, sha256sum,
                   ctxs[0].shared, workers)


def _candidate(ctx: Any, is_ours: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """Return the journal's newest backup of the account that the playbook lets it reuse."""
    limit = duration(ctx.params.get("reuse_if_newer_than"))
    if not limit or ctx.journal is None:
        return None
    found = ctx.journal.latest_backup(ctx.server.name, ctx.account, ctx.now - limit)
    return found if found is not None and is_ours(found) else None


def take(ctx: Any, actions: list[Any], undo: dict[str, Any],
         check: Callable[[Any, dict[str, Any]], dict[str, Any]],
         clean: Callable[[Any, dict[str, Any]], None]) -> dict[str, Any]:
    """Carry out a backup's actions and verify the archive; return the undo data with the
    archive's facts. On any failure `clean` removes what was left and StepError says that
    nothing else was changed."""
    if not actions:
        return undo
    undo = dict(undo)
    try:
        carry_out(ctx.conn, actions)
        undo.update(check(ctx, undo))
    except AgentError as exc:
        clean(ctx, undo)
        raise StepError(f"backup failed, nothing else was changed: {exc}") from exc
    return undo
