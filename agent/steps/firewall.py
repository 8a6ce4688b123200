"""firewall_block: a whole server's mail client ports closed by one nftables table that the
agent owns (reference/lockouts.md §1, 6.1), the same on every panel.

The table `inet suspension_agent` has one base chain on the input hook at priority -10:
after conntrack, before firewalld (+10), cPanel's, iptables-nft's, CSF's and ufw's chains
(0) and fail2ban's (-1). A `reject` in any base chain is final whatever the others accept
(§1.1), so the table needs no knowledge of the server's own firewall and never touches it;
its policy stays `accept`, only explicit rules reject. Loopback stays open (webmail and the
panel's service monitors talk IMAP to localhost) and so do the addresses in the server's
`firewall_exempt:`; the rule has no `ct state` match, so an open IMAP/POP session gets a
reset at its next segment, and `doveadm kick '*'` ends the server side of them at once.

The table is written to a file of the agent's own (`<nft_dir>/active.nft`), checked with
`nft -c -f` and loaded with `nft -f`: one kernel transaction that declares the table,
deletes it and declares it again with its contents, so it replaces any copy of itself and
never needs `destroy` (nft 1.0.7 and Linux 6.3; Debian 12 has neither). The reversal loads
the same declare-and-delete pair without contents: exactly this table goes, nothing else;
a copy of it that a panel saved into /etc/nftables.conf meanwhile is taken out of that file
(`without_table`), so that it does not come back at the next boot.
"""

from __future__ import annotations

import ipaddress
import re

# The table's family and name (the only thing on the server the step changes in nftables).
TABLE = "suspension_agent"
# IMAP, POP3, their TLS ports, submission (465, 587) and ManageSieve.
MAIL_CLIENT_PORTS = (110, 143, 465, 587, 993, 995, 4190)
SMTP = 25
PRIORITY = -10
MARK = "suspension-agent"


def ports_for(params: dict, defaults: tuple[int, ...]) -> list[int]:
    """Return the sorted ports a step with `params` closes (`ports`, else `defaults`, and 25
    with close_smtp)."""
    ports = set(params.get("ports") or defaults)
    if params.get("close_smtp"):
        ports.add(SMTP)
    return sorted(ports)


def ruleset(case_id: str, ports: list[int], exempt: list[str],
            local: list[int] | None = None) -> str:
    """Return the nft file that replaces the agent's table with one closing `ports` to every
    source but loopback and `exempt` (normalised networks, config-validated), and, when
    `local` is given, those ports over loopback to every process but root's: on cPanel
    Apache proxies webmail.DOMAIN to cpsrvd on 127.0.0.1:2095 (its service subdomains,
    reference lockouts.md 1.8), as `nobody` or the site's user, never as root."""
    nets = [ipaddress.ip_network(n) for n in exempt]
    v4 = ", ".join(str(n) for n in nets if n.version == 4)
    v6 = ", ".join(str(n) for n in nets if n.version == 6)
    comment = f'comment "{MARK} case {case_id}"'
    lines = [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{",
             "\tset closed_tcp {", "\t\ttype inet_service",
             f"\t\telements = {{ {', '.join(str(p) for p in ports)} }}", "\t}",
             "\tset exempt_v4 {", "\t\ttype ipv4_addr", "\t\tflags interval",
             *([f"\t\telements = {{ {v4} }}"] if v4 else []), "\t}",
             "\tset exempt_v6 {", "\t\ttype ipv6_addr", "\t\tflags interval",
             *([f"\t\telements = {{ {v6} }}"] if v6 else []), "\t}",
             "\tchain input {",
             f"\t\ttype filter hook input priority {PRIORITY}; policy accept;",
             f'\t\tiifname "lo" accept {comment}',
             "\t\tip saddr @exempt_v4 accept",
             "\t\tip6 saddr @exempt_v6 accept",
             f"\t\ttcp dport @closed_tcp reject with tcp reset {comment}",
             "\t}"]
    if local:
        lines += ["\tset local_tcp {", "\t\ttype inet_service",
                  f"\t\telements = {{ {', '.join(str(p) for p in local)} }}", "\t}",
                  "\tchain output {",
                  f"\t\ttype filter hook output priority {PRIORITY}; policy accept;",
                  '\t\toifname "lo" tcp dport @local_tcp meta skuid != 0 '
                  f"reject with tcp reset {comment}",
                  "\t}"]
    lines.append("}")
    return "\n".join(lines) + "\n"


# Where a panel or an admin may have saved the live ruleset (cPanel's save_current_ruleset:
# lockouts.md 1.6), our table with it: it would come back at the next boot.
SAVED_RULESETS = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
_OPENING = re.compile(rf"^[ \t]*table[ \t]+inet[ \t]+{TABLE}[ \t]*\{{", re.M)


def boot_include(nft_dir: str) -> str:
    """Return the line that makes a boot firewall file (and every reload of nftables.service)
    load the agent's table while a case has it in `nft_dir` (a glob: no file, no error)."""
    return f'include "{nft_dir}/*.nft"'


def without_table(text: str) -> str | None:
    """Return `text` (an nft file) with every `table inet suspension_agent { ... }` block
    taken out, or None when it holds none. A block that does not close is left alone (None
    too, with nothing changed: the file is not one the agent can read whole)."""
    out, at, found = [], 0, False
    for m in _OPENING.finditer(text):
        if m.start() < at:
            continue
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        if depth:
            return None
        end = text.find("\n", i)
        end = len(text) if end < 0 else end + 1
        out.append(text[at:m.start()])
        at, found = end, True
    return "".join(out) + text[at:] if found else None


def removal() -> str:
    """Return the nft file that removes the agent's table, present or not (one transaction)."""
    return f"table inet {TABLE}\ndelete table inet {TABLE}\n"


# The chain's rules as table_state describes them, in order: nothing else may be there
# (an `accept` slipped in before the reject would open every port again).
RULES = [("meta iifname", "lo", "accept"), ("ip saddr", "@exempt_v4", "accept"),
         ("ip6 saddr", "@exempt_v6", "accept"), ("tcp dport", "@closed_tcp", "reject")]


def table_state(listing: dict) -> dict:
    """Return what matters of the agent's table in `nft -j list table` output: `sets`
    (name -> sorted elements as text), `hook` (hook, priority, policy of chain input),
    `rules` (each rule of chain input as (match, value, verdict), in order), `chains` and
    `chain_rules` for any other chain (its hook; each rule's matches and verdict, in
    order), and `case` (the case id its comments name). An empty dict: no table."""
    found: dict = {}
    for item in listing.get("nftables", []) if isinstance(listing, dict) else []:
        if not isinstance(item, dict):
            continue
        if "table" in item:
            found["table"] = True
        if isinstance(s := item.get("set"), dict):
            found.setdefault("sets", {})[s.get("name")] = sorted(
                _element(e) for e in s.get("elem", []))
        if isinstance(c := item.get("chain"), dict) and c.get("name") == "input":
            found["hook"] = (c.get("hook"), c.get("prio"), c.get("policy"))
        elif isinstance(c, dict):
            found.setdefault("chains", {})[c.get("name")] = (c.get("hook"), c.get("prio"),
                                                              c.get("policy"))
        if isinstance(r := item.get("rule"), dict) and r.get("chain", "input") == "input":
            found.setdefault("rules", []).append(_rule(r.get("expr") or []))
        elif isinstance(r, dict):
            found.setdefault("chain_rules", {}).setdefault(r.get("chain"), []).append(
                _matches(r.get("expr") or []))
        if isinstance(r, dict) and str(r.get("comment", "")).startswith(f"{MARK} case "):
            found["case"] = str(r["comment"])[len(MARK) + 6:]
    return found


def _rule(expr: list) -> tuple[str, str, str]:
    """Return one rule as (what it matches, against what, its verdict)."""
    what = value = verdict = ""
    for e in expr:
        if not isinstance(e, dict):
            continue
        if isinstance(m := e.get("match"), dict):
            left = m.get("left") if isinstance(m.get("left"), dict) else {}
            if "meta" in left:
                what = f"meta {left['meta'].get('key')}"
            elif "payload" in left:
                what = f"{left['payload'].get('protocol')} {left['payload'].get('field')}"
            value = str(m.get("right"))
        for v in ("accept", "drop", "reject", "jump", "goto", "return"):
            if v in e:
                verdict = v
    return what, value, verdict


def _matches(expr: list) -> list[str]:
    """Return every match of a rule and its verdict, as text (`meta skuid != 0`, ...)."""
    out = []
    for e in expr:
        if not isinstance(e, dict):
            continue
        if isinstance(m := e.get("match"), dict):
            left = m.get("left") if isinstance(m.get("left"), dict) else {}
            what = (f"meta {left['meta'].get('key')}" if "meta" in left else
                    f"{left['payload'].get('protocol')} {left['payload'].get('field')}"
                    if "payload" in left else str(left))
            out.append(f"{what} {m.get('op', '==')} {m.get('right')}")
        for v in ("accept", "drop", "reject", "jump", "goto", "return"):
            if v in e:
                out.append(v)
    return out


# The output chain's one rule as _matches gives it (ruleset with `local`).
LOCAL_RULE = ["meta oifname == lo", "tcp dport == @local_tcp", "meta skuid != 0", "reject"]


def _element(e: object) -> str:
    """Return a set element of nft's JSON as text: a port, or a network (an address alone
    is its /32 or /128)."""
    if isinstance(e, dict) and "prefix" in e:
        return str(ipaddress.ip_network(f"{e['prefix']['addr']}/{e['prefix']['len']}"))
    if isinstance(e, dict) and "range" in e:
        low, high = e["range"]
        return f"{low}-{high}"
    if isinstance(e, str) and not e.isdigit():
        return str(ipaddress.ip_network(e))
    return str(e)


def expected(case_id: str, ports: list[int], exempt: list[str],
             local: list[int] | None = None) -> dict:
    """Return the table_state of the table `ruleset(case_id, ports, exempt, local)` loads."""
    nets = [ipaddress.ip_network(n) for n in exempt]
    found = {"table": True, "case": case_id, "hook": ("input", PRIORITY, "accept"),
             "rules": list(RULES),
             "sets": {"closed_tcp": sorted(str(p) for p in ports),
                      "exempt_v4": sorted(str(n) for n in nets if n.version == 4),
                      "exempt_v6": sorted(str(n) for n in nets if n.version == 6)}}
    if local:
        found["sets"]["local_tcp"] = sorted(str(p) for p in local)
        found["chains"] = {"output": ("output", PRIORITY, "accept")}
        found["chain_rules"] = {"output": [list(LOCAL_RULE)]}
    return found
