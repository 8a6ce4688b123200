"""The SSH forced command: what the billing key may ask, read from SSH_ORIGINAL_COMMAND.

The key's `command="suspension-agent serve-ssh --caller NAME"` runs the agent whatever the
client sends; the client's words are parsed here (never by a shell) into one of the verbs
of SSH_VERBS (agent/config/callers.py), always with JSON replies. Anything else is bad
input (exit 2) and changes nothing.
"""

from __future__ import annotations

import shlex

from agent.config.callers import SSH_VERBS
from agent.errors import BadInput


def forced_args(raw: str, config_path: str | None, dry_run: bool) -> list[str]:
    """Return the CLI arguments for the client's command `raw`; raise BadInput otherwise."""
    try:
        words = shlex.split(raw)
    except ValueError as exc:
        raise BadInput(f"cannot parse the SSH command: {exc}") from exc
    if words[:1] == ["suspension-agent"]:
        words = words[1:]
    # A billing system may ask for a dry run (its "test connection" button): the one global
    # option it may choose, before the verb.
    if words[:1] == ["--dry-run"]:
        dry_run, words = True, words[1:]
    if not words or words[0] not in SSH_VERBS:
        raise BadInput(f"allowed verbs over SSH: {', '.join(SSH_VERBS)}")
    if any(w.startswith("--config") for w in words):
        raise BadInput("--config cannot be chosen over SSH")
    return ((["--config", config_path] if config_path else []) + ["--json"]
            + (["--dry-run"] if dry_run else []) + words)
