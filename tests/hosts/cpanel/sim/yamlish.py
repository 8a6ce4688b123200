"""The small part of YAML the simulator writes and reads (the image has no PyYAML).

dump() renders dicts, lists and scalars (the `whmapi1` default output, A3, and the
/var/cpanel/userdata files, A12); load() reads back what dump() wrote for flat userdata:
top-level scalars, lists of scalars and one level of mappings.
"""

from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"^[A-Za-z0-9_./@*+-][A-Za-z0-9_ ./@*+:-]*$")


def _scalar(value: object) -> str:
    if value is None:
        return "~"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if text and _PLAIN.match(text) and not text.endswith(":") and ": " not in text:
        return text
    return json.dumps(text)


def dump(value: object, indent: int = 0) -> str:
    """Return `value` as YAML text starting with `---`."""
    return "---\n" + _block(value, indent)


def _block(value: object, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{key}:\n{_block(item, indent + 2)}")
            else:
                out.append(f"{pad}{key}: {_empty(item)}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _block(item, indent + 2)
                out.append(f"{pad}- {inner[indent + 2:]}")
            else:
                out.append(f"{pad}- {_empty(item)}\n")
        return "".join(out)
    return pad + _scalar(value) + "\n"


def _empty(item: object) -> str:
    if isinstance(item, dict):
        return "{}"
    if isinstance(item, list):
        return "[]"
    return _scalar(item)


def _parse_scalar(text: str) -> object:
    text = text.strip()
    if text in ("~", ""):
        return None if text == "~" else ""
    if text == "[]":
        return []
    if text == "{}":
        return {}
    if text.startswith('"'):
        return json.loads(text)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def load(text: str) -> dict:
    """Return the mapping written by dump() for a flat userdata file."""
    data: dict = {}
    current: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("---"):
            continue
        if not line.startswith(" "):
            key, _, rest = line.partition(":")
            current = key.strip()
            data[current] = _parse_scalar(rest) if rest.strip() else None
            continue
        item = line.strip()
        if current is None:
            continue
        if item.startswith("- "):
            if not isinstance(data[current], list):
                data[current] = []
            data[current].append(_parse_scalar(item[2:]))
        elif ":" in item:
            if not isinstance(data[current], dict):
                data[current] = {}
            key, _, rest = item.partition(":")
            data[current][key.strip()] = _parse_scalar(rest)
    return data
