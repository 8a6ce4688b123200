"""throttle's traffic-control parts, the same on every panel: the tc commands of the agent's
HTB tree on one interface, and that tree and the interface's prior state read back.

The tree (reference/lockouts.md §2.1, 6.2): the root qdisc `5a5a:` is HTB with default class
`5a5a:20`, shaped to the playbook's rate; class `5a5a:10` (10 Gbit/s, in effect unshaped)
takes what must stay fast: traffic from the SSH ports (the agent's own way in and the
hoster's) and to the exempt addresses, picked by u32 filters. tc shapes what the server
sends, so downloads from the server (the bulk of a hosting server's traffic) are slowed and
uploads to it are not. HTB's default per-class FIFO is the leaf: fq_codel would keep latency
lower under the cap, but not every kernel has it, and nothing here may depend on a module the
server may lack.

Only the kernel's own default root (handle `0:`: noqueue, pfifo_fast, fq_codel or mq as
net.core.default_qdisc picks) can be put back exactly, by deleting the root: an interface an
operator set up with a qdisc of their own is refused, never replaced.
"""

from __future__ import annotations

import ipaddress
import re

HANDLE = "5a5a:"
FAST = "5a5a:10"
SHAPED = "5a5a:20"
# The unshaped class: HTB needs a rate; 10 Gbit/s is above anything a dunning grade touches.
FAST_RATE = 10_000_000_000
_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
_RATE = re.compile(r"([1-9][0-9]{0,6})(kbit|mbit|gbit)")
# Bounds of a throttle a playbook may ask for: below 64 kbit/s TCP barely moves; from
# 5 Gbit/s up it is no throttle on the unshaped class's scale.
MIN_RATE, MAX_RATE = 64_000, 5_000_000_000
# A Linux interface name (IFNAMSIZ 16 with its NUL; no slash, space or colon alias).
_IFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")


def rate_bits(text: object) -> int | None:
    """Return the bits per second of a rate like `10mbit` (kbit, mbit, gbit: SI units as tc
    reads them), or None when it is not one or lies outside MIN_RATE..MAX_RATE."""
    match = _RATE.fullmatch(text.lower()) if isinstance(text, str) else None
    if not match:
        return None
    bits = int(match.group(1)) * _UNITS[match.group(2)]
    return bits if MIN_RATE <= bits <= MAX_RATE else None


def iface_ok(name: object) -> bool:
    """Return True when `name` is a usable interface name (and not loopback)."""
    return isinstance(name, str) and bool(_IFACE.fullmatch(name)) and name not in (".", "..",
                                                                                   "lo")


def commands(tc: str, iface: str, bits: int, ssh_ports: list[int],
             exempt: list[str]) -> list[list[str]]:
    """Return the argv lists that put the agent's tree on `iface` (root replaced in one
    command, then the classes and filters below it)."""
    base = [tc, "qdisc", "replace", "dev", iface, "root", "handle", HANDLE, "htb",
            "default", SHAPED.split(":")[1]]
    cls = [tc, "class", "add", "dev", iface, "parent", HANDLE, "classid"]
    # Explicit quanta: the defaults (rate / r2q) are out of HTB's bounds at both ends.
    out = [base, cls + [FAST, "htb", "rate", f"{FAST_RATE}bit", "quantum", "200000"],
           cls + [SHAPED, "htb", "rate", f"{bits}bit", "ceil", f"{bits}bit",
                  "quantum", "1514"]]
    for pref, protocol, match in filters(ssh_ports, exempt):
        out.append([tc, "filter", "add", "dev", iface, "parent", HANDLE, "protocol", protocol,
                    "prio", str(pref), "u32", *match, "flowid", FAST])
    return out


def filters(ssh_ports: list[int], exempt: list[str]) -> list[tuple[int, str, list[str]]]:
    """Return (pref, protocol, u32 match words) of each filter to the unshaped class, one
    pref per filter so that each one reads back as its own entry."""
    rules: list[tuple[str, list[str]]] = []
    for port in sorted(set(ssh_ports)):
        rules.append(("ip", ["match", "ip", "sport", str(port), "0xffff"]))
        rules.append(("ipv6", ["match", "ip6", "sport", str(port), "0xffff"]))
    for net in sorted({ipaddress.ip_network(n, strict=False) for n in exempt},
                      key=lambda n: (n.version, n)):
        if net.version == 4:
            rules.append(("ip", ["match", "ip", "dst", str(net)]))
        else:
            rules.append(("ipv6", ["match", "ip6", "dst", str(net)]))
    return [(pref, protocol, match) for pref, (protocol, match) in enumerate(rules, 1)]


def removal(tc: str, iface: str) -> list[str]:
    """Return the argv that takes the agent's tree off `iface` (the kernel's default root
    comes back by itself)."""
    return [tc, "qdisc", "del", "dev", iface, "root"]


def comparable(qdiscs: list[dict]) -> list[dict]:
    """Return `tc -j qdisc show dev IF` without what changes by itself (reference counts,
    and with -s the counters), for comparing the state before and after."""
    drop = {"refcnt", "bytes", "packets", "drops", "overlimits", "requeues", "backlog",
            "qlen", "stats", "stats64"}
    return [{k: v for k, v in q.items() if k not in drop} for q in qdiscs]


def root_of(qdiscs: list[dict]) -> dict | None:
    """Return the root qdisc of a `tc -j qdisc show dev IF` list (None: the device has none
    listed, as for a device that does not exist)."""
    return next((q for q in qdiscs if q.get("root")), None)


def is_default(qdiscs: list[dict]) -> bool:
    """Return True when the root is the kernel's own (handle 0:), which deleting the root
    brings back exactly; the children of a default mq are the kernel's too."""
    root = root_of(qdiscs)
    return root is not None and root.get("handle") == "0:"


def is_ours(qdiscs: list[dict]) -> bool:
    """Return True when the root is the agent's HTB."""
    root = root_of(qdiscs)
    return root is not None and root.get("kind") == "htb" and root.get("handle") == HANDLE


_CLASS = re.compile(r"^class htb (\S+) .*?\brate (\d+)([KMG]?)bit ceil (\d+)([KMG]?)bit",
                    re.M)
_SI = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


def classes(text: str) -> dict[str, tuple[int, int]]:
    """Return {classid: (rate, ceil) in bit/s} from `tc class show dev IF` (tc 6.1 prints no
    JSON for HTB classes; it prints exact SI units)."""
    return {m.group(1): (int(m.group(2)) * _SI[m.group(3)], int(m.group(4)) * _SI[m.group(5)])
            for m in _CLASS.finditer(text)}


def flow_filters(listing: list[dict]) -> list[tuple[str, int, str]]:
    """Return (protocol, pref, flowid) of each u32 entry that sends packets to a class, from
    `tc -j filter show dev IF parent 5a5a:` (its hash-table entries left out)."""
    out = []
    for entry in listing:
        flowid = (entry.get("options") or {}).get("flowid")
        if flowid:
            out.append((entry.get("protocol", "?"), int(entry.get("pref", 0)), flowid))
    return sorted(out)


def expected(bits: int, ssh_ports: list[int], exempt: list[str]) -> dict:
    """Return what the agent's tree on one interface reads back as (see `state`)."""
    return {"root": {"kind": "htb", "handle": HANDLE, "default": "0x20"},
            "classes": {FAST: (FAST_RATE, FAST_RATE), SHAPED: (bits, bits)},
            "filters": sorted((p, pref, FAST) for pref, p, _m in filters(ssh_ports, exempt))}


def state(qdiscs: list[dict], class_text: str, listing: list[dict]) -> dict:
    """Return the agent's tree as read back from one interface, shaped like `expected`."""
    root = root_of(qdiscs) or {}
    return {"root": {"kind": root.get("kind"), "handle": root.get("handle"),
                     "default": (root.get("options") or {}).get("default")},
            "classes": classes(class_text), "filters": flow_filters(listing)}
