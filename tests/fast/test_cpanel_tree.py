"""The cpanel driver's reseller tree, walked from the fake panel's owner records over both
channels (whmapi1 on the server, the WHM API with a token): sub-resellers at any depth, a
reseller owning its own account, owner loops, unknown and hostile names, and replies of the
wrong shape (reference/panels.md A5, A9; lockouts.md 4.2).

TreeModel extends the fake cPanel's model (tests/fast/test_cpanel_fakes.py) with owners and
resellers: listaccts (data.acct[] with `owner`, `want` honoured), listresellers
(data.reseller[]), and suspendreseller/unsuspendreseller as Whostmgr/Resellers.pm runs them
(the reseller's own account first, result 0 unless it ends suspended/active; reseller-only=1
stops there, else every directly owned account).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from agent.config import config as config_mod
from agent.drivers import driver
from agent.drivers.cpanel import whm
from agent.errors import BadInput, StepError
from tests.fast.test_cpanel_fakes import Account, FakeCpanel, FakeWhmHttp, Model, whm_reply
from tests.fast.test_cpanel_ladder import write_config

API_BLOCK = ("    cpanel:\n      transport: api\n      token_file: whm.token\n"
             "      api_timeout: 5\n")
# r1 owns itself, c1, s1, s2; s1 owns c2, c3 and the sub-sub-reseller ss1, which owns c4;
# s2 owns nobody; r9 (another reseller) owns c9; root owns bob and alice.
OWNERS = {"r1": "r1", "c1": "r1", "s1": "r1", "s2": "r1", "c2": "s1", "c3": "s1",
          "ss1": "s1", "c4": "ss1", "r9": "root", "c9": "r9", "bob": "root", "alice": "root"}
RESELLERS = {"r1", "s1", "s2", "ss1", "r9"}


class TreeModel(Model):
    """The fake panel with account owners and resellers."""

    def __init__(self, owners: dict[str, str], resellers: set[str]) -> None:
        super().__init__()
        self.owners = dict(owners)
        self.resellers = set(resellers)
        for user in owners:
            self.accounts.setdefault(user, Account(uid=2000 + len(self.accounts),
                                                   main=f"{user}.test", addon=[], sub=[],
                                                   parked=[], mailboxes={}, ftp=[],
                                                   databases=[], db_users=[]))

    def summary(self, user: str) -> dict:
        return {**super().summary(user), "owner": self.owners.get(user, "root")}

    def whm(self, function: str, p: dict) -> dict:
        if function == "listresellers":
            self.calls.append(("whmapi1", function, p))
            return whm_reply(function, {"reseller": sorted(self.resellers, reverse=True)})
        if function == "listaccts":
            self.calls.append(("whmapi1", function, p))
            want = [w for w in p.get("want", "").split(",") if w]
            rows = [self.summary(u) for u in sorted(self.accounts)]
            return whm_reply(function, {"acct": [{k: v for k, v in r.items()
                                                  if not want or k in want} for r in rows]})
        if function in ("suspendreseller", "unsuspendreseller"):
            return self._reseller(function, p)
        return super().whm(function, p)

    def _reseller(self, function: str, p: dict) -> dict:
        self.calls.append(("whmapi1", function, p))
        user = p.get("user", "")
        if user not in self.resellers:
            return whm_reply(function, None, ok=False, reason="Specified user is not a reseller.")
        if function in self.noop:
            return whm_reply(function, None, raw="nothing happened")
        owned = [u for u, o in sorted(self.owners.items()) if o == user and u != user]
        if function == "suspendreseller":
            if not self.suspendacct(user, p.get("reason") or "No reason supplied.",
                                    p.get("disallow") == "1", force=False):
                return whm_reply(function, None, ok=False, reason="Failed to suspend reseller.")
            for account in [] if p.get("reseller-only") == "1" else owned:
                self.suspendacct(account, p.get("reason", ""), p.get("disallow") == "1",
                                 force=False)
            return whm_reply(function, None, raw=f"{user}'s account has been suspended")
        raw = super().whm("unsuspendacct", {"user": user})["metadata"].get("output", {})
        if "not in a suspended state" in raw.get("raw", ""):
            return whm_reply(function, None, ok=False, reason="Failed to unsuspend reseller.")
        for account in [] if p.get("reseller-only") == "1" else owned:
            super().whm("unsuspendacct", {"user": account})
        return whm_reply(function, None, raw=f"{user}'s account is now active")


def tree_world(tmp: Path, owners: dict[str, str] = OWNERS,
               resellers: set[str] = RESELLERS, api: bool = False,
               monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[Any, FakeCpanel]:
    """Return (server cp1, its fake) with the owner tree, over whmapi1 or (api) HTTPS."""
    fake = FakeCpanel(TreeModel(owners, resellers))
    write_config(tmp, API_BLOCK if api else "")
    if api:
        assert monkeypatch is not None
        token = tmp / "whm.token"
        token.write_text("GOODTOKEN\n")
        token.chmod(0o600)
        http = fake.http = FakeWhmHttp(fake.model)  # type: ignore[attr-defined]
        monkeypatch.setattr(whm, "_CHANNELS", {})
        monkeypatch.setattr(requests, "Session", lambda: http)
    return config_mod.load(str(tmp / "config.yaml")).servers["cp1"], fake


def panel_calls(fake: FakeCpanel) -> list[str]:
    return [f for _api, f, _p in fake.model.calls]


@pytest.mark.parametrize("api", [False, True], ids=["whmapi1", "https"])
def test_the_tree_holds_every_sub_reseller_and_account_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: bool) -> None:
    server, fake = tree_world(tmp_path, api=api, monkeypatch=monkeypatch)
    tree = driver("cpanel").reseller_tree(server, fake, "r1")
    assert tree.reseller == "r1"
    assert tree.resellers == tree.logins == ("r1", "s1", "s2", "ss1")
    assert tree.accounts == ("r1", "c1", "s1", "s2", "c2", "c3", "ss1", "c4")
    assert tree.children == ("r1", "s1", "s2", "ss1", "c1", "c2", "c3", "c4")
    assert not {"r9", "c9", "bob", "alice"} & set(tree.children)
    # Two reads for the whole tree, nothing else, nothing changed.
    assert sorted(panel_calls(fake)) == ["listaccts", "listresellers"]
    assert fake.model.calls[[f for _a, f, _p in fake.model.calls].index("listaccts")][2][
        "want"] == "user,owner"
    assert [a for a in fake.changing() if not a[0].endswith("whmapi1")] == []
    if api:  # over HTTPS only: the two json-api requests, no whmapi1 on the server
        assert [u.rsplit("/", 1)[-1] for u, _q in fake.http.requests] == [
            "listresellers", "listaccts"]
        assert not [a for a in fake.log if a[0].endswith("whmapi1")]
    text = " ".join(tree.notes)
    assert "reseller_lock" in text and "own sites" in text and "mailboxes" in text
    assert "r1 owns its own account" in text


def test_a_sub_reseller_tree_and_a_reseller_without_accounts(tmp_path: Path) -> None:
    server, fake = tree_world(tmp_path)
    sub = driver("cpanel").reseller_tree(server, fake, "s1")
    assert sub.resellers == ("s1", "ss1") and sub.accounts == ("s1", "c2", "c3", "ss1", "c4")
    assert not any("owns its own account" in n for n in sub.notes)
    empty = driver("cpanel").reseller_tree(server, fake, "s2")
    assert (empty.logins, empty.accounts) == (("s2",), ("s2",))


def test_an_owner_loop_lists_each_account_once(tmp_path: Path) -> None:
    # r1 owns s1 and s1 owns r1 (a hand-edited trueuserowners); s1 owns c1, r1 owns c2.
    owners = {"r1": "s1", "s1": "r1", "c1": "s1", "c2": "r1"}
    server, fake = tree_world(tmp_path, owners, {"r1", "s1"})
    tree = driver("cpanel").reseller_tree(server, fake, "r1")
    assert tree.resellers == ("r1", "s1") and tree.accounts == ("r1", "c2", "s1", "c1")
    assert any("owner loop" in n and "r1 (owned by s1)" in n for n in tree.notes)


@pytest.mark.parametrize("name, words", [
    ("nobody1", "no account"),
    ("c1", "an account but not a reseller"),
    ("ghost", "has no account"),
])
def test_a_name_that_is_no_reseller_there_is_bad_input(tmp_path: Path, name: str,
                                                        words: str) -> None:
    server, fake = tree_world(tmp_path, resellers=RESELLERS | {"ghost"})
    with pytest.raises(BadInput, match=words):
        driver("cpanel").reseller_tree(server, fake, name)
    assert set(panel_calls(fake)) <= {"listresellers", "listaccts"}


@pytest.mark.parametrize("name", ["r1;rm -rf /", "../r1", "$(id)", "", "-r1", "r1 s1",
                                  "a" * 17, "root", "cpses_r1", "R1\n", "r1.lock"])
def test_a_hostile_name_is_refused_before_any_panel_call(tmp_path: Path, name: str) -> None:
    server, fake = tree_world(tmp_path)
    with pytest.raises(BadInput):
        driver("cpanel").reseller_tree(server, fake, name)
    assert fake.model.calls == [] and fake.log == []


def test_an_account_the_agent_cannot_target_stops_the_tree(tmp_path: Path) -> None:
    server, fake = tree_world(tmp_path, {**OWNERS, "cpanelsolr": "s1"})
    with pytest.raises(StepError, match="cpanelsolr"):
        driver("cpanel").reseller_tree(server, fake, "r1")


@pytest.mark.parametrize("reply", [
    {"acct": [{"user": "r1"}]},
    {"acct": "r1"},
    {"acct": [{"user": "r1", "owner": ""}]},
])
def test_a_listaccts_reply_of_the_wrong_shape_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: dict) -> None:
    server, fake = tree_world(tmp_path)
    real = fake.model.whm
    monkeypatch.setattr(fake.model, "whm", lambda f, p: whm_reply(f, reply)
                        if f == "listaccts" else real(f, p))
    with pytest.raises(StepError, match="listaccts"):
        driver("cpanel").reseller_tree(server, fake, "r1")


def test_a_refused_listresellers_is_a_step_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server, fake = tree_world(tmp_path)
    real = fake.model.whm
    monkeypatch.setattr(fake.model, "whm", lambda f, p: whm_reply(
        f, None, ok=False, reason="Permission denied") if f == "listresellers" else real(f, p))
    with pytest.raises(StepError, match="Permission denied"):
        driver("cpanel").reseller_tree(server, fake, "r1")
