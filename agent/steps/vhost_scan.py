"""Reading a vhost's text for the host map (agent/steps/hostmap.py): which mod_rewrite and
access directives at vhost level keep the map's server rules from running first
(`uncovered`), and whether a vhost's own rules lie dormant (`dormant_rules`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

_CONTAINER = re.compile(r"^<\s*(/)?\s*([A-Za-z]+)\b(.*?)>?\s*$")
_AUTH = re.compile(r"^(require|auth[a-z]*|deny|allow|order|satisfy)$")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append((start, line))
    return lines


_NEUTRAL = ("ifmodule", "ifdefine", "ifversion")


def _vhost_lines(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """Yield (line number, line, enclosing sections) of each directive; a `<VirtualHost>`
    opening or closing is yielded too (sections ["virtualhost"] / ["/virtualhost"])."""
    stack: list[str] = []
    for number, line in _logical_lines(text):
        container = _CONTAINER.match(line) if line.startswith("<") else None
        if not container:
            yield number, line, [s for s in stack if s not in _NEUTRAL]
            continue
        closing, name = container.group(1), container.group(2).lower()
        if name == "virtualhost":
            yield number, line, ["/virtualhost" if closing else "virtualhost"]
        elif closing:
            if stack and stack[-1] == name:
                stack.pop()
        else:
            stack.append(name)


def uncovered(vhost_text: str) -> list[str]:
    """Return the directives of vhost config text that keep the host map from covering it.

    `vhost_text` is a vhost file with its Include lines expanded (the vhost hook included).
    Each entry names the directive and its line. Checked at vhost level (not inside
    `<Directory>` or `<Files>`, whose rewrite state never applies to the server rules), plus
    `ErrorDocument 503` in a vhost `<If>` and access control in a vhost `<Location>`.
    """
    found: list[str] = []
    opened, rewrite = 0, True
    for number, line, sections in _vhost_lines(vhost_text):
        if sections == ["virtualhost"]:
            opened, rewrite = number, False
            continue
        if sections == ["/virtualhost"]:
            if not rewrite:
                found.append(f"line {opened}: <VirtualHost> without a mod_rewrite directive "
                             "(the server rules never run here; add the host map's hook)")
            rewrite = True
            continue
        words = line.split()
        directive, args = words[0].lower(), [w.lower() for w in words[1:]]
        if not sections:
            rewrite |= directive.startswith("rewrite")
            if directive == "rewriteengine" and args[:1] == ["off"]:
                found.append(f"line {number}: RewriteEngine Off (no server rule runs here)")
            elif directive == "rewriteoptions" and "ignoreinherit" in args:
                found.append(f"line {number}: RewriteOptions IgnoreInherit "
                             "(the server rules are not inherited)")
            elif directive == "rewriteoptions" and "inherit" in args:
                found.append(f"line {number}: RewriteOptions Inherit (the vhost's own rules "
                             "run first; a matching one answers instead of the 503)")
        elif sections[0] in ("if", "elseif", "else") and directive == "errordocument" \
                and args[:1] == ["503"]:
            found.append(f"line {number}: ErrorDocument 503 inside <{sections[0]}> "
                         "(merged after ours: its body is served)")
        elif sections[0] in ("location", "locationmatch") and _AUTH.match(directive):
            found.append(f"line {number}: {words[0]} inside <{sections[0]}> "
                         "(answers 401/403 before the 503)")
    return found


def dormant_rules(vhost_text: str) -> bool:
    """Return True when a vhost, as it is before the install, has RewriteRule lines but no
    RewriteEngine line at vhost level: its rules were inert, and the vhost hook's
    `RewriteEngine On` makes them live."""
    rules = engine = False
    for _number, line, sections in _vhost_lines(vhost_text):
        if not sections:
            directive = line.split()[0].lower()
            rules |= directive == "rewriterule"
            engine |= directive == "rewriteengine"
    return rules and not engine
