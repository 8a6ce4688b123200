"""throttle's parts without a server: rates, the tc commands, tc 6.1's output read back, and
the step's plan, verify, revert and repair against a model of one interface's tc state
(the real kernel: tests/test_throttle_linux.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.config.servers import LinuxPaths
from agent.errors import StepError, VerifyFailed
from agent.steps import tc
from agent.steps.actions import carry_out
from agent.steps.protocol import Context
from agent.steps.throttle import _DUMP, _ROUTES, Throttle
from tests.fast.fakes import FakeConnector, Result

# `tc class show dev X` (iproute2 6.1) after tc.commands(..., 8_000_000, ...).
CLASS_TEXT = ("class htb 5a5a:10 root prio 0 rate 10Gbit ceil 10Gbit burst 12501250b "
              "cburst 12501250b \nclass htb 5a5a:20 root prio 0 rate 8Mbit ceil 8Mbit "
              "burst 11600b cburst 11600b \n")
DEFAULT = [{"kind": "noqueue", "handle": "0:", "root": True, "refcnt": 2, "options": {}}]


def test_rates_are_si_bit_units_within_bounds() -> None:
    assert tc.rate_bits("10mbit") == 10_000_000
    assert tc.rate_bits("10Mbit") == 10_000_000
    assert tc.rate_bits("64kbit") == 64_000 and tc.rate_bits("5gbit") == 5_000_000_000
    for bad in ("10mbps", "10 mbit", "63kbit", "6gbit", "0mbit", "1.5mbit", 10, None, ""):
        assert tc.rate_bits(bad) is None, bad


def test_interface_names_are_checked() -> None:
    assert tc.iface_ok("eth0") and tc.iface_ok("enp3s0f1.100") and tc.iface_ok("br-lan")
    for bad in ("lo", "eth0:1", "a/b", "x" * 16, "", "..", "eth 0", None):
        assert not tc.iface_ok(bad), bad


def test_the_commands_and_what_they_read_back_as() -> None:
    argvs = tc.commands("/usr/sbin/tc", "eth0", 8_000_000, [22, 2222],
                        ["192.0.2.0/24", "2001:db8::/32"])
    assert argvs[0] == ["/usr/sbin/tc", "qdisc", "replace", "dev", "eth0", "root", "handle",
                        "5a5a:", "htb", "default", "20"]
    assert "8000000bit" in argvs[2] and argvs[2][8] == "5a5a:20"
    matches = [a[a.index("u32") + 1:a.index("flowid")] for a in argvs[3:]]
    assert matches == [["match", "ip", "sport", "22", "0xffff"],
                       ["match", "ip6", "sport", "22", "0xffff"],
                       ["match", "ip", "sport", "2222", "0xffff"],
                       ["match", "ip6", "sport", "2222", "0xffff"],
                       ["match", "ip", "dst", "192.0.2.0/24"],
                       ["match", "ip6", "dst", "2001:db8::/32"]]
    assert [a[a.index("prio") + 1] for a in argvs[3:]] == ["1", "2", "3", "4", "5", "6"]
    assert tc.classes(CLASS_TEXT) == {"5a5a:10": (10**10, 10**10),
                                      "5a5a:20": (8_000_000, 8_000_000)}


class Kernel(FakeConnector):
    """The tc state of a server's interfaces, changed by the tc commands the step runs."""

    def __init__(self) -> None:
        super().__init__()
        self.ifaces = {"eth0": {"qdiscs": list(DEFAULT), "classes": [], "filters": []}}

    def reset(self, iface: str) -> None:
        self.ifaces[iface] = {"qdiscs": list(DEFAULT), "classes": [], "filters": []}

    def _command(self, argv, stdin):  # noqa: ANN001, ANN202, C901
        import json

        if argv[:3] == ["sh", "-c", _ROUTES]:
            return Result(0, b'[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"}]\n\n\n',
                          b"")
        if argv[:3] == ["sh", "-c", _DUMP]:
            out = ""
            for name in argv[5:]:
                st = self.ifaces.get(name)
                if st is None:
                    out += f"\036{name}\037missing\037\037"
                    continue
                out += (f"\036{name}\037{json.dumps(st['qdiscs'])}\037" +
                        "".join(st["classes"]) + "\037" + json.dumps(st["filters"]))
            return Result(0, out.encode(), b"")
        if argv[0] == "/usr/sbin/tc":
            st = self.ifaces[argv[4]]
            if argv[1:3] == ["qdisc", "replace"]:
                st.update(qdiscs=[{"kind": "htb", "handle": "5a5a:", "root": True,
                                   "refcnt": 3, "options": {"r2q": 10, "default": "0x20"}}],
                          classes=[], filters=[])
            elif argv[1:3] == ["qdisc", "del"]:
                if st["qdiscs"][0]["handle"] == "0:":
                    return Result(2, b"", b"Error: Cannot delete qdisc with handle of zero.")
                self.reset(argv[4])
            elif argv[1:3] == ["class", "add"]:
                rate = int(argv[argv.index("rate") + 1].removesuffix("bit"))
                shown = f"{rate // 10**9}Gbit" if rate >= 10**9 else f"{rate // 10**6}Mbit"
                st["classes"].append(f"class htb {argv[8]} root prio 0 rate {shown} ceil "
                                     f"{shown} burst 1600b cburst 1600b \n")
            elif argv[1:3] == ["filter", "add"]:
                st["filters"] += [{"protocol": argv[8], "pref": int(argv[10]), "kind": "u32"},
                                  {"protocol": argv[8], "pref": int(argv[10]), "kind": "u32",
                                   "options": {"fh": "800::800",
                                               "flowid": argv[argv.index("flowid") + 1]}}]
            return Result(0, b"", b"")
        return super()._command(argv, stdin)


def ctx_for(conn: FakeConnector, **params: object) -> Context:
    server = SimpleNamespace(name="web1", panel="linux", linux=LinuxPaths(), transport="ssh",
                             port=22, firewall_exempt=("192.0.2.0/24",))
    return Context(None, server, conn, "web1", "C1", 0.0,  # type: ignore[arg-type]
                   params={"rate": "8mbit", **params})


def test_a_throttle_goes_on_and_comes_off_exactly() -> None:
    kernel, step = Kernel(), Throttle()
    ctx = ctx_for(kernel)
    plan = step.plan(ctx)
    assert plan.facts["interfaces"] == ["eth0"] and "8mbit" in plan.note
    assert any("qdisc replace dev eth0 root handle 5a5a: htb" in line
               for line in plan.describe())
    undo = step.apply(ctx, plan)
    step.verify(ctx, undo, True)
    with pytest.raises(VerifyFailed, match="as before the throttle"):
        step.verify(ctx, undo, False)
    with pytest.raises(StepError, match="already has the agent's throttle"):
        step.plan(ctx)  # applied twice: never over itself
    assert step.repair_plan(ctx, undo) is None
    carry_out(kernel, step.revert_plan(ctx, undo).actions)
    step.verify(ctx, undo, False)
    assert kernel.ifaces["eth0"]["qdiscs"] == DEFAULT
    assert step.revert_plan(ctx, undo).actions == []  # reverted twice: nothing to do
    with pytest.raises(VerifyFailed, match="not as planned"):
        step.verify(ctx, undo, True)


def test_an_interface_with_a_root_qdisc_of_its_own_is_refused_and_never_replaced() -> None:
    kernel = Kernel()
    kernel.ifaces["eth0"]["qdiscs"] = [{"kind": "fq", "handle": "8001:", "root": True,
                                        "options": {}}]
    with pytest.raises(StepError, match="root qdisc of its own \\(fq 8001:\\)"):
        Throttle().plan(ctx_for(kernel))
    with pytest.raises(StepError, match="no interface 'eth9'"):
        Throttle().plan(ctx_for(kernel, interfaces=["eth9"]))


def test_a_lost_throttle_is_put_back_and_a_foreign_root_is_left_alone() -> None:
    kernel, step = Kernel(), Throttle()
    ctx = ctx_for(kernel)
    undo = step.apply(ctx, step.plan(ctx))
    kernel.reset("eth0")  # a reboot, the interface made again
    repair = step.repair_plan(ctx, undo)
    assert repair is not None and "gone or changed on eth0" in repair.note
    carry_out(kernel, repair.actions)
    step.verify(ctx, undo, True)
    kernel.ifaces["eth0"]["classes"].pop()  # the shaped class removed by hand
    carry_out(kernel, step.repair_plan(ctx, undo).actions)
    step.verify(ctx, undo, True)
    kernel.ifaces["eth0"]["qdiscs"] = [{"kind": "prio", "handle": "1:", "root": True}]
    with pytest.raises(StepError, match="did not put there"):
        step.repair_plan(ctx, undo)
    with pytest.raises(StepError, match="left as it is"):
        step.revert_plan(ctx, undo)


def test_check_names_the_interfaces_and_whether_each_comes_back_exactly() -> None:
    from agent.steps.throttle import check_line

    kernel = Kernel()
    kernel.put("/usr/sbin/tc", b"")
    assert check_line(kernel, LinuxPaths()) == (
        "throttle (whole-server playbooks) would shape: eth0 (the kernel's own root: put "
        "back exactly)")
    kernel.ifaces["eth0"]["qdiscs"] = [{"kind": "fq", "handle": "8001:", "root": True}]
    assert "eth0 (a root of its own, fq 8001: - refused" in check_line(kernel, LinuxPaths())


def test_the_playbook_schema_wants_a_rate_and_the_shipped_option_is_valid() -> None:
    from pathlib import Path

    import yaml

    from agent.config import playbooks
    from agent.errors import ConfigError

    def book(step: str) -> dict:
        return yaml.safe_load(f"stages:\n  - after: 0s\n    steps:\n      - backup\n{step}")

    for step, said in (("      - throttle\n", "throttle needs it"),
                       ("      - throttle: {rate: 10mbps}\n", "must be a rate like 10mbit"),
                       ("      - throttle: {rate: 10mbit, interfaces: [lo]}\n",
                        "must be a list of interface names")):
        with pytest.raises(ConfigError, match=said):
            playbooks.parse(book(step), "t", "t.yaml")
    text = (Path(__file__).parents[2] / "playbooks" / "server-mail-first.yaml").read_text()
    shipped = text.replace("# - throttle:", "- throttle:").replace("#     rate:", "    rate:")
    parsed = playbooks.parse(yaml.safe_load(shipped), "server-mail-first", "x.yaml")
    assert parsed.server_steps() == ["throttle", "firewall_block"]
    assert parsed.stages[0].steps[1].params == {"rate": "10mbit"}
