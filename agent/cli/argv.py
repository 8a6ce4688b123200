"""The command line's words before click reads them: the global options may also come after
the verb (`status --json`, `suspend web1 alice --dry-run`), as users expect; they are moved in
front of it. A word that is the value of one of the verb's own options (`--reason --json`)
stays where it is: only the verb's options are read to tell the two apart."""

from __future__ import annotations

from collections.abc import Mapping

import click

FLAGS = frozenset({"--json", "--dry-run", "-v", "--verbose", "-q", "--quiet"})
VALUED = frozenset({"--config"})


def _takes_value(command: click.Command) -> set[str]:
    """Return the option words of `command` that are followed by a value."""
    out: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_flag and not param.count:
            out.update(param.opts)
    return out


def hoist(args: list[str], commands: Mapping[str, click.Command]) -> list[str]:
    """Return `args` with every global option found after the verb moved before it."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in VALUED else 1
    if i >= len(args) or args[i] not in commands:
        return list(args)
    valued = _takes_value(commands[args[i]])
    moved: list[str] = []
    rest: list[str] = []
    j = i + 1
    while j < len(args):
        word = args[j]
        if word == "--":
            rest += args[j:]
            break
        if word in valued:
            rest += args[j:j + 2]
            j += 2
        elif word in FLAGS or word.startswith("--config="):
            moved.append(word)
            j += 1
        elif word in VALUED:
            moved += args[j:j + 2]
            j += 2
        else:
            rest.append(word)
            j += 1
    return moved + args[:i + 1] + rest
