"""A small validator that collects every problem with its path (no jsonschema dependency)."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")


class Problems:
    """Collects `path: message` strings while a document is checked."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def __bool__(self) -> bool:
        return bool(self.items)


def join(path: str, key: object) -> str:
    """Return the dotted/indexed path of `key` under `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def mapping(doc: Any, path: str, problems: Problems, allowed: set[str]) -> dict:
    """Return `doc` as a dict, recording a problem for a non-mapping or an unknown key."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        problems.add(path, "must be a mapping")
        return {}
    for key in doc:
        if key not in allowed:
            # A file that is not a config at all (say /etc/shadow) must not be echoed back.
            shown = key if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else "<a key>"
            problems.add(join(path, shown),
                         f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return doc


def string(doc: dict, key: str, path: str, problems: Problems, default: str | None = None,
           required: bool = False, choices: tuple[str, ...] | None = None) -> str | None:
    """Return doc[key] as a non-empty string, or `default`; record a problem otherwise."""
    where = join(path, key)
    if key not in doc or doc[key] is None:
        if required:
            problems.add(where, "is required")
        return default
    value = doc[key]
    if not isinstance(value, str) or not value.strip():
        problems.add(where, "must be a non-empty string")
        return default
    if choices and value not in choices:
        problems.add(where, f"must be one of {', '.join(choices)}")
        return default
    return value


def integer(doc: dict, key: str, path: str, problems: Problems, default: int,
            low: int, high: int) -> int:
    """Return doc[key] as an int within [low, high], or `default`; record a problem otherwise."""
    if key not in doc or doc[key] is None:
        return default
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.add(join(path, key), f"must be an integer {low}-{high}")
        return default
    return value


def boolean(doc: dict, key: str, path: str, problems: Problems, default: bool) -> bool:
    """Return doc[key] as a bool, or `default`; record a problem otherwise."""
    if key not in doc or doc[key] is None:
        return default
    if not isinstance(doc[key], bool):
        problems.add(join(path, key), "must be true or false")
        return default
    return doc[key]


def string_list(doc: dict, key: str, path: str, problems: Problems) -> list[str]:
    """Return doc[key] as a list of non-empty strings; record a problem otherwise."""
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.add(join(path, key), "must be a list of strings")
        return []
    return list(value)


_SIZE = re.compile(r"^(\d+)\s*([KMGT]?)$")
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size(value: Any) -> int | None:
    """Return bytes for '500M', '20G', '1T' (binary units) or a bare int of bytes, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str):
        match = _SIZE.match(value.strip().upper())
        if match and int(match.group(1)) > 0:
            return int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    return None


def duration(value: Any) -> int | None:
    """Return seconds for '0s', '90s', '15m', '24h', '3d' (or a bare int of seconds), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return int(match.group(1)) * _UNITS[match.group(2)]
    return None


def human_duration(seconds: float) -> str:
    """Return `seconds` as the playbook would write it: 0s, 90s, 15m, 24h, 3d, 1d12h."""
    left = int(seconds)
    if left == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)
