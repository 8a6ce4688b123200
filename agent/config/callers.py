"""What each forced-command caller may do (`callers:` in the config).

A billing system's SSH key runs `serve-ssh --caller NAME`; its words are checked here after
parsing. A caller named in `callers:` gets exactly the verbs and holds listed; any other
forced-command caller may use the verbs of SSH_VERBS and place or lift only the
`billing` hold, never on a whole server. An admin at the shell is not limited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.config.validate import Problems, boolean, join, mapping, string_list
from agent.errors import BadInput
from agent.ids import HOLDS

# Verbs a forced-command caller (the billing system) may run through serve-ssh, and what a
# caller not named in `callers:` gets (agent/cli/forced.py parses its words).
SSH_VERBS = ("suspend", "unsuspend", "reconcile", "status", "plan", "history", "check",
             "case")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# The verbs that take a --hold (and default to billing without one).
_HOLD_VERBS = ("suspend", "unsuspend", "reconcile")


# A caller not named in `callers:` (or named without `verbs:`) gets these: every SSH verb
# but `case` (a dossier written on the agent's host), which a caller must be given.
DEFAULT_VERBS = tuple(v for v in SSH_VERBS if v != "case")


@dataclass(frozen=True)
class CallerPolicy:
    """The rights of one forced-command caller."""

    verbs: tuple[str, ...] = DEFAULT_VERBS
    holds: tuple[str, ...] = ("billing",)
    whole_server: bool = False


DEFAULT = CallerPolicy()


def parse(doc: object, problems: Problems) -> dict[str, CallerPolicy]:
    """Return the policies under `callers:`, recording every problem."""
    out: dict[str, CallerPolicy] = {}
    names = set(doc) if isinstance(doc, dict) else set()
    for name, entry in mapping(doc, "callers", problems, names).items():
        path = join("callers", name)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.add("callers", "caller names are letters, digits, '_', '.' or '-'")
            continue
        d = mapping(entry, path, problems, {"verbs", "holds", "whole_server"})
        verbs = tuple(string_list(d, "verbs", path, problems)) or DEFAULT_VERBS
        holds = tuple(string_list(d, "holds", path, problems)) or ("billing",)
        for verb in verbs:
            if verb not in SSH_VERBS:
                problems.add(join(path, "verbs"), f"{verb!r} is not a forced-command verb "
                             f"({', '.join(SSH_VERBS)})")
        for hold in holds:
            if hold not in HOLDS:
                problems.add(join(path, "holds"), f"unknown hold {hold!r}")
        out[str(name)] = CallerPolicy(verbs, holds,
                                      boolean(d, "whole_server", path, problems, False))
    return out


def check(caller: str, policy: CallerPolicy, words: list[str]) -> None:
    """Raise BadInput unless `policy` allows the forced command `words` (verb first)."""
    verb = words[0]
    if verb not in policy.verbs:
        raise BadInput(f"caller {caller!r} may not run {verb!r} (allowed: "
                       f"{', '.join(policy.verbs)})")
    if verb == "case" and (words[1:2] != ["export"] or any(
            w == "--out" or w.startswith("--out=") for w in words)):
        # A dossier over SSH goes where the agent's config says, never where a caller says.
        raise BadInput(f"caller {caller!r} may only run `case export CASE` (into dossier_dir)")
    if "--whole-server" in words and not policy.whole_server:
        raise BadInput(f"caller {caller!r} may not act on a whole server")
    if verb in _HOLD_VERBS:
        holds = [w.split("=", 1)[1] for w in words if w.startswith("--hold=")]
        holds += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--hold"]
        for hold in holds or ["billing"]:
            if hold not in policy.holds:
                raise BadInput(f"caller {caller!r} may not place or lift the {hold!r} hold "
                               f"(allowed: {', '.join(policy.holds)}); nothing was changed")
