"""Archive verification, shared by every panel's backup: an archive counts only when it is
there, lists cleanly to its end, holds what it must and has the checksum recorded for it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from agent.config.validate import duration
from agent.connector import Connector
from agent.errors import AgentError, StepError
from agent.steps.actions import carry_out

# One round trip for the whole check: size, listing to its end, checksum, the archiver's
# warnings, in sections between lines of a marker the caller draws at random (a member name
# is customer data and could imitate any fixed marker). Paths arrive as operands.
_VERIFY = (
    'a=$1; tar=$2; sum=$3; m=$4; n=$(stat -c %s -- "$a") || exit 3; '
    'printf "%s SIZE %s\\n" "$m" "$n"; h=$("$sum" -- "$a") || exit 5; '
    'printf "%s SHA %s\\n" "$m" "${h%% *}"; printf "%s LIST\\n" "$m"; '
    '"$tar" --list --gzip --file="$a" || exit 4; printf "%s WARN\\n" "$m"; '
    'cat -- "$a.warnings" 2>/dev/null; exit 0'
)


def verify_archive(conn: Connector, archive: str, must_hold: dict[str, str], tar: str,
                   sha256sum: str, known_sha256: str | None = None) -> dict[str, Any]:
    """Ensure `archive` (a .tar.gz on the server) is complete; return its facts.

    `must_hold` maps what must be in it (shown in errors) to the member path prefix that
    proves it. Raises StepError when the archive is missing or empty, does not list to the
    end, lacks any of them, or no longer has `known_sha256`. The facts are its SHA-256,
    size, number of entries and the warnings the archiver left beside it.
    """
    marker = "SA-" + secrets.token_hex(8)
    result = conn.run(["sh", "-c", _VERIFY, "sh", archive, tar, sha256sum, marker],
                      timeout=3600, ok_codes=(0, 3, 4, 5))
    if result.rc == 3:
        raise StepError(f"backup archive {archive} is missing or empty")
    if result.rc in (4, 5):
        raise StepError(f"backup archive {archive} does not "
                        f"{'list to its end' if result.rc == 4 else 'read'}: "
                        f"{result.err.strip()[-300:]}")
    sections: dict[str, list[str]] = {}
    facts: dict[str, str] = {}
    at = None
    for line in result.text.split("\n"):
        if line.startswith(marker + " "):
            word, _, value = line[len(marker) + 1:].partition(" ")
            facts[word] = value
            at = word
            sections.setdefault(word, [])
        elif at is not None:
            sections[at].append(line)
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
    limit = duration(ctx.params.get("reuse_if_newer_than"))
    if not limit or ctx.journal is None:
        return None
    found = ctx.journal.latest_backup(ctx.server.name, ctx.account, ctx.now - limit)
    if found is None or not is_ours(found):
        return None
    try:
        check(ctx, found)
    except AgentError:
        return None  # gone or altered since: take a fresh one
    return found


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
