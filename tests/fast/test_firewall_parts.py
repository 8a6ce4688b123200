"""firewall_block's parts without a server: the nft file the table is loaded from, its JSON
read back (nft 1.0.6's output shape), and the Exim flag that withdraws SMTP AUTH, refused
on an Exim that would go on offering AUTH whatever the flag says."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from agent.config.servers import LinuxPaths
from agent.errors import StepError
from agent.steps import firewall
from agent.steps.protocol import Context
from agent.steps.smtp_auth import EximAuth, option_line
from tests.fast.fakes import FakeConnector, Result

# `nft -j list table inet suspension_agent` on Debian 12 after loading ruleset() below.
LISTED = {"nftables": [
    {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
    {"table": {"family": "inet", "name": "suspension_agent", "handle": 4}},
    {"set": {"name": "closed_tcp", "type": "inet_service", "elem": [110, 143]}},
    {"set": {"name": "exempt_v4", "type": "ipv4_addr", "flags": ["interval"],
             "elem": [{"prefix": {"addr": "192.0.2.0", "len": 24}}, "198.51.100.7"]}},
    {"set": {"name": "exempt_v6", "type": "ipv6_addr", "flags": ["interval"]}},
    {"chain": {"name": "input", "type": "filter", "hook": "input", "prio": -10,
               "policy": "accept"}},
    {"rule": {"comment": "suspension-agent case C1", "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}},
        {"accept": None}]}},
    {"rule": {"expr": [{"match": {"op": "==", "left": {"payload": {
        "protocol": "ip", "field": "saddr"}}, "right": "@exempt_v4"}}, {"accept": None}]}},
    {"rule": {"expr": [{"match": {"op": "==", "left": {"payload": {
        "protocol": "ip6", "field": "saddr"}}, "right": "@exempt_v6"}}, {"accept": None}]}},
    {"rule": {"comment": "suspension-agent case C1", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": "@closed_tcp"}}, {"reject": {"type": "tcp reset"}}]}},
]}
EXEMPT = ["192.0.2.0/24", "198.51.100.7/32"]


def test_the_listed_table_is_exactly_the_planned_one() -> None:
    assert firewall.table_state(LISTED) == firewall.expected("C1", [110, 143], EXEMPT)
    text = firewall.ruleset("C1", [110, 143], EXEMPT)
    assert text.startswith("table inet suspension_agent\ndelete table inet suspension_agent\n")
    assert "tcp dport @closed_tcp reject with tcp reset" in text and "flush" not in text


@pytest.mark.parametrize("change", ["extra accept", "other case", "other port", "no table"])
def test_anything_else_is_not_the_planned_table(change: str) -> None:
    import copy

    listed = copy.deepcopy(LISTED)
    items = listed["nftables"]
    if change == "extra accept":  # an accept before the reject opens every port again
        items.insert(-1, {"rule": {"expr": [{"accept": None}]}})
    elif change == "other case":
        items[-1]["rule"]["comment"] = "suspension-agent case C2"
    elif change == "other port":
        items[2]["set"]["elem"] = [110]
    else:
        listed = {"nftables": items[:1]}
    assert firewall.table_state(listed) != firewall.expected("C1", [110, 143], EXEMPT)


class Exim(FakeConnector):
    def __init__(self, shown: str) -> None:
        super().__init__()
        self.shown = shown
        self.put("/usr/sbin/exim4", b"")

    def _command(self, argv, stdin):  # noqa: ANN001, ANN202
        if argv[:2] == ["/usr/sbin/exim4", "-bP"]:
            return Result(0, f"auth_advertise_hosts = {self.shown}\n".encode(), b"")
        return super()._command(argv, stdin)


def ctx_for(conn: FakeConnector) -> Context:
    server = SimpleNamespace(name="web1", panel="linux", linux=LinuxPaths())
    return Context(None, server, conn, "web1", "C1", 0.0)  # type: ignore[arg-type]


def test_an_exim_that_offers_auth_whatever_the_flag_says_is_refused_naming_the_line() -> None:
    with pytest.raises(StepError, match="auth_advertise_hosts = \\$\\{if exists"):
        EximAuth().plan(ctx_for(Exim("*")))


def test_a_prepared_exim_gets_the_flag_and_it_goes_back_as_it_was() -> None:
    conn = Exim(option_line(LinuxPaths()).split(" = ", 1)[1])
    ctx = ctx_for(conn)
    actions, undo, note = EximAuth().plan(ctx)
    assert "withdrawn" in note and len(actions) == 1
    actions[0].carry_out(conn)
    assert conn.files["/etc/exim4/suspension-agent/server.no-auth"].data == (
        b"suspension-agent case C1\n")
    assert EximAuth().repair(ctx, undo) == []
    for action in EximAuth().revert(ctx, undo):
        action.carry_out(conn)
    assert "/etc/exim4/suspension-agent/server.no-auth" not in conn.files
    assert len(EximAuth().repair(ctx, undo)) == 1  # gone while the case is open: put back


@pytest.mark.parametrize("ports", [[22, 143], [2222]])
def test_the_agents_own_ssh_port_is_never_closed(ports: list[int]) -> None:
    from agent.steps.firewall_block import FirewallBlock

    server = SimpleNamespace(name="web1", panel="linux", linux=LinuxPaths(), transport="ssh",
                             port=2222, firewall_exempt=())
    ctx = Context(None, server, FakeConnector(), "web1", "C1", 0.0,  # type: ignore[arg-type]
                  params={"ports": ports})
    with pytest.raises(StepError, match="agent's own way in"):
        FirewallBlock().plan(ctx)


SAVED = """#!/usr/sbin/nft -f
flush ruleset
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
	}
}
table inet suspension_agent {
	set closed_tcp {
		type inet_service
		elements = { 110, 143 }
	}
	chain input {
		type filter hook input priority -10; policy accept;
		tcp dport @closed_tcp reject with tcp reset comment "suspension-agent case C1"
	}
}
table ip nat {
}
"""


def test_a_saved_copy_of_the_table_is_taken_out_and_nothing_else() -> None:
    kept = firewall.without_table(SAVED)
    assert kept is not None and "suspension_agent" not in kept
    assert kept == SAVED.replace(SAVED[SAVED.index("table inet suspension_agent"):
                                       SAVED.index("table ip nat")], "")
    assert firewall.without_table(kept) is None  # nothing of ours: no edit
    assert firewall.without_table(SAVED.replace("}\ntable ip nat", "table ip nat")) is None


def test_the_loopback_part_closes_the_proxied_ports_to_all_but_root() -> None:
    """On cPanel the web server proxies webmail.DOMAIN to cpsrvd over loopback (issue 17):
    the table's output chain refuses loopback connections to those ports from every
    process but root's, and the listing must show exactly that rule."""
    text = firewall.ruleset("C1", [110, 2095], EXEMPT, [2095])
    assert "\tchain output {\n\t\ttype filter hook output priority -10; policy accept;\n" \
        in text
    assert 'oifname "lo" tcp dport @local_tcp meta skuid != 0 reject with tcp reset' in text
    assert "elements = { 2095 }" in text
    base = copy.deepcopy(LISTED["nftables"])
    listed = {"nftables": [*base[:5], *[
        {"set": {"name": "local_tcp", "type": "inet_service", "elem": [2095]}},
        {"chain": {"name": "output", "type": "filter", "hook": "output", "prio": -10,
                   "policy": "accept"}},
        {"rule": {"chain": "output", "comment": "suspension-agent case C1", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "lo"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp",
                                                        "field": "dport"}},
                       "right": "@local_tcp"}},
            {"match": {"op": "!=", "left": {"meta": {"key": "skuid"}}, "right": 0}},
            {"reject": {"type": "tcp reset"}}]}}], *base[5:]]}
    listed["nftables"][2]["set"]["elem"] = [110, 2095]
    assert firewall.table_state(listed) == firewall.expected("C1", [110, 2095], EXEMPT, [2095])
    # The same rule without its uid match would shut root out too: not the planned table.
    listed["nftables"][7]["rule"]["expr"].pop(2)
    assert firewall.table_state(listed) != firewall.expected("C1", [110, 2095], EXEMPT, [2095])
