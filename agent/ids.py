"""Identifier rules. Every name that reaches a server passes through here first."""

from __future__ import annotations

import re
import unicodedata

from agent.errors import BadInput

# linux: Debian's adduser NAME_REGEX, 32 characters (the utmp limit).
# cpanel: the lenient rule for existing (possibly transferred) accounts, reference/panels.md A13.
# directadmin: lower-case alphanumerics starting with a letter, reference/panels.md B11.
_ACCOUNT_RULES = {
    "linux": (re.compile(r"^[a-z_][a-z0-9_-]*$"), 32),
    "cpanel": (re.compile(r"^[a-z0-9][-._a-z0-9]*$"), 16),
    "directadmin": (re.compile(r"^[a-z][a-z0-9]*$"), 16),
}
_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PLAYBOOK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# RFC 1123 host names, at most 253 characters, labels up to 63.
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}$")


REASON_MAX = 500
# Why an account is held; each hold is lifted on its own (billing pays, abuse is cleared).
HOLDS = ("billing", "abuse", "manual")
# Target kinds whose case has child cases (one per account): a reseller's tree, a whole
# server (agent/engine/batch.py). The name of a "server" target is the server's own.
TREE_KINDS = ("reseller", "server")


def _show(value: str) -> str:
    shown = value if len(value) <= 40 else value[:37] + "..."
    return repr(shown)


def printable(text: str) -> str:
    """Return `text` with every control or format character shown as an escape (\\x1b ...),
    so that nothing a caller stored can drive an admin's terminal or forge a line."""
    return "".join(c if c == " " or (c.isprintable() and unicodedata.category(c) != "Cf")
                   else c.encode("unicode_escape").decode("ascii") for c in text)


def reason(text: str | None) -> str | None:
    """Return `text` when it is a usable --reason: printable, one line, at most REASON_MAX."""
    if text is None:
        return None
    if not text.strip():
        raise BadInput("--reason is empty (leave it out, or say why)")
    if len(text) > REASON_MAX:
        raise BadInput(f"--reason is {len(text)} characters; at most {REASON_MAX}")
    if printable(text) != text:
        raise BadInput(f"--reason holds control characters: {printable(text)[:60]!r}")
    return text


def account(name: str, panel: str = "linux") -> str:
    """Return `name` when it is a valid account name for `panel`; raise BadInput otherwise."""
    pattern, limit = _ACCOUNT_RULES.get(panel, _ACCOUNT_RULES["linux"])
    if not name:
        raise BadInput("account name is empty")
    if len(name) > limit:
        raise BadInput(f"account name {_show(name)} is longer than {limit} characters ({panel})")
    if not pattern.fullmatch(name):
        raise BadInput(
            f"account name {_show(name)} is not valid on {panel}: use lower-case letters, "
            "digits, '_' or '-' (and the panel's own rules)"
        )
    return name


def server_name(name: str) -> str:
    """Return `name` when it is a valid server name as used in the config."""
    if not _SERVER_NAME.fullmatch(name or ""):
        raise BadInput(f"server name {_show(name)} is not valid")
    return name


def playbook_name(name: str) -> str:
    """Return `name` when it is a valid playbook name (a file stem in playbooks/)."""
    if not _PLAYBOOK_NAME.fullmatch(name or ""):
        raise BadInput(f"playbook name {_show(name)} is not valid")
    return name


def domain(name: str) -> str:
    """Return the lower-cased domain when it is a valid host name; raise BadInput otherwise."""
    lowered = (name or "").lower().rstrip(".")
    if not _DOMAIN.fullmatch(lowered):
        raise BadInput(f"domain {_show(name)} is not a valid host name")
    return lowered


def database(name: str) -> str:
    """Return `name` when MariaDB allows it as a database name (its own rules: 1-64
    characters, none of '/', '\\', '.', no control characters, no trailing space). It only
    ever travels as one argv entry or a backquoted identifier, so '-' or ' ' are fine."""
    if (not name or len(name) > 64 or name != name.rstrip(" ")
            or any(c in "/\\." for c in name) or not name.isprintable()):
        raise BadInput(f"database name {_show(name or '')} is not valid in MariaDB")
    return name


# A case id as the journal makes it (agent/journal/journal.py new_case): date, dash, 8 hex.
_CASE_ID = re.compile(r"^[0-9]{8}-[0-9a-f]{8}$")


def case_id(value: str) -> str:
    """Return `value` when it has the shape of a case id; BadInput otherwise."""
    if not _CASE_ID.fullmatch(value):
        raise BadInput(f"case id {_show(value)} is not one (YYYYMMDD-8 hex digits)")
    return value
