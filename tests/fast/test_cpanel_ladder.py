"""The cpanel driver's whole ladder through the real engine, runner and journal, against the
fake cPanel server (tests/fast/test_cpanel_fakes.py): what each step changes, that every
change is re-read, and that reversal undoes exactly the case's changes, knowing
unsuspendacct's side effects (reference/panels.md A8, C2.4)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.config import config as config_mod
from agent.engine.engine import Engine
from agent.engine.outcome import Outcome
from agent.errors import BadInput
from agent.journal.journal import Journal
from tests.fast.fakes import is_
from tests.fast.test_cpanel_fakes import REBUILD, USERDATA, FakeCpanel

START = 1_700_000_000.0
HOUR = 3600.0
LADDER = ("stages:\n"
          "  - after: 0s\n    steps: [backup, landing_page]\n"
          "  - after: 24h\n    steps: [mail_block]\n"
          "  - after: 72h\n    steps: [ftp_lock, db_lock, panel_lock]\n"
          "  - after: 96h\n    steps: [panel_suspend]\n")
BOOKS = {
    "cp": LADDER,
    "cp-now": "stages:\n  - after: 0s\n    steps: [backup, landing_page, mail_block, ftp_lock,"
              " db_lock, panel_lock, panel_suspend]\n",
    "cp-hold": "stages:\n  - after: 0s\n    steps: [backup, {mail_block: {outgoing: hold, "
               "incoming: reject}}]\n",
    "cp-hold-then-suspend": "stages:\n  - after: 0s\n    steps: [backup, {mail_block: "
                            "{outgoing: hold}}, panel_suspend]\n",
    "cp-defer": "stages:\n  - after: 0s\n    steps: [backup, {mail_block: {incoming: defer}}]\n",
    "cp-mail": "stages:\n  - after: 0s\n    steps: [backup, mail_block]\n",
    "cp-web": "stages:\n  - after: 0s\n    steps: [backup, landing_page]\n",
    "cp-suspend": "stages:\n  - after: 0s\n    steps: [backup, panel_suspend]\n",
    "cp-lock": "stages:\n  - after: 0s\n    steps: [backup, ftp_lock, panel_lock]\n",
    "cp-ftp": "stages:\n  - after: 0s\n    steps: [backup, ftp_lock]\n",
    "cp-reuse": "stages:\n  - after: 0s\n    steps: [{backup: {reuse_if_newer_than: 1h}}]\n",
}


def write_config(tmp: Path, cpanel_block: str = "") -> Path:
    books = tmp / "playbooks"
    books.mkdir(exist_ok=True)
    for name, text in BOOKS.items():
        (books / f"{name}.yaml").write_text(text)
    text = "\n".join([
        f"state_db: {tmp / 'state.db'}", f"audit_log: {tmp / 'audit.jsonl'}",
        "lock_wait_seconds: 0", f"playbooks_dir: {books}", "default_playbook: cp",
        "servers:", "  cp1:", "    panel: cpanel", "    transport: local",
        "    host: 192.0.2.7"]) + "\n" + cpanel_block
    (tmp / "config.yaml").write_text(text)
    return tmp / "config.yaml"


@dataclass
class Cp:
    tmp: Path
    fake: FakeCpanel
    now: list[float] = field(default_factory=lambda: [START])
    probed: list[tuple[bool, list]] = field(default_factory=list)
    engines: list[Engine] = field(default_factory=list)

    def engine(self) -> Engine:
        cfg = config_mod.load(str(self.tmp / "config.yaml"))
        e = Engine(cfg, Journal(cfg.state_db), "admin:test", now=lambda: self.now[0],
                   connector=lambda _s: self.fake)
        self.engines.append(e)
        return e

    def suspend(self, playbook: str = "cp", hold: str = "billing",
                dry_run: bool = False) -> Outcome:
        return self.engine().suspend("cp1", "alice", playbook, hold, None, dry_run)

    def unsuspend(self, hold: str = "billing", dry_run: bool = False) -> Outcome:
        return self.engine().unsuspend("cp1", "alice", hold, dry_run)

    @property
    def alice(self):  # noqa: ANN201 - the fake's Account
        return self.fake.model.accounts["alice"]

    def whm_calls(self) -> list[str]:
        return [f for api, f, _p in self.fake.model.calls if api == "whmapi1"
                and f not in ("accountsummary", "listsuspended")]


@pytest.fixture
def cp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cp]:
    write_config(tmp_path)
    world = Cp(tmp_path, FakeCpanel())

    def check_landing(server, targets, suspended, wait=10.0):  # noqa: ANN001, ANN202
        # Stands for the outside HTTP probe: what Apache runs with is what the last
        # restartsrv_httpd loaded from the last rebuildhttpdconf.
        from agent.errors import VerifyFailed

        world.probed.append((suspended, list(targets)))
        if bool(world.fake.loaded) != suspended:
            raise VerifyFailed(f"Apache serves {'no' if suspended else 'the'} landing include")

    monkeypatch.setattr("agent.steps.probes.check_landing", check_landing)
    yield world
    for e in world.engines:
        e.close()


def test_the_whole_ladder_and_back_restores_exactly_what_was_there(cp: Cp) -> None:
    ftp_before = cp.fake.files["/etc/proftpd/alice"].data
    hash_before = cp.alice.hash
    for hours in (0, 24, 72, 96):
        cp.now[0] = START + hours * HOUR
        out = cp.suspend()
        assert out.errors == [], out.errors
    a = cp.alice
    assert out.state == "suspended" and out.stage == 3
    assert a.suspended and "suspension-agent case" in a.reason and not a.locked
    assert a.mailboxes["info@alice.test"]["login"] and a.out_suspended
    assert a.shell == "/bin/false"  # suspendacct's; it keeps noshell to restore (A7)
    assert cp.fake.loaded == {f"{USERDATA}/{k}/2_4/alice/suspension-agent.conf"
                              for k in ("std", "ssl")}
    assert b"up@alice.test:!$6$up" in cp.fake.files["/etc/proftpd/alice"].data
    assert cp.fake.model.mysql == {("alice_wp", "localhost"): True, ("alice", "localhost"): True}
    # Every domain of every kind is probed over HTTP and HTTPS.
    names = {t[0] for t in cp.probed[0][1]}
    assert names == {"alice.test", "shop.test", "blog.alice.test", "alice.example"}
    assert {t[2] for t in cp.probed[0][1]} == {False, True}

    back = cp.unsuspend()
    assert back.errors == [] and back.state == "active", back.errors
    a = cp.alice
    assert not a.suspended and not a.out_suspended and a.hash == hash_before
    assert a.shell == "/bin/bash"
    # A mailbox whose login was suspended before the case stays suspended, although
    # unsuspendacct stripped every lock (the fake does what A8 says).
    assert a.mailboxes["old@alice.test"]["login"] is True
    assert a.mailboxes["info@alice.test"]["login"] is False
    assert cp.fake.files["/etc/proftpd/alice"].data == ftp_before
    assert not any(cp.fake.model.mysql.values())
    assert cp.fake.loaded == set() and not any(p.startswith(USERDATA) for p in cp.fake.files)
    # unsuspendacct first, then what it lifted is put back, then the other steps' reverts.
    calls = cp.whm_calls()
    assert calls.index("unsuspendacct") < calls.index("unsuspend_outgoing_email")


def test_reversal_reapplies_what_unsuspendacct_lifted_of_earlier_grades(cp: Cp) -> None:
    assert cp.suspend("cp-now").errors == []
    reverted_before = len(cp.fake.model.calls)
    assert cp.unsuspend().errors == []
    after = [(f, p.get("email")) for _api, f, p in cp.fake.model.calls[reverted_before:]]
    # old@ was suspended before the case: put back after unsuspendacct stripped it.
    assert ("Email::suspend_login", "old@alice.test") in after
    assert ("Email::unsuspend_login", "old@alice.test") not in after


def test_an_account_suspended_before_the_case_is_never_unsuspended(cp: Cp) -> None:
    cp.alice.suspended, cp.alice.reason = True, "abuse ticket 77 (admin)"
    # mail_block waits while someone else's suspension is on (review F4).
    out = cp.suspend("cp-now")
    assert [e["step"] for e in out.errors] == ["mail_block"], out.errors
    out = cp.suspend("cp-suspend")
    assert out.errors == [], out.errors
    assert cp.unsuspend().errors == []
    assert cp.alice.suspended and cp.alice.reason == "abuse ticket 77 (admin)"
    assert "suspendacct" not in cp.whm_calls() and "unsuspendacct" not in cp.whm_calls()


def test_a_bandwidth_limited_account_is_left_to_cpanel(cp: Cp) -> None:
    cp.fake.model.bwlimited.add("alice")
    assert cp.suspend("cp-suspend").errors == []
    assert cp.unsuspend().errors == []
    assert "suspendacct" not in cp.whm_calls() and "unsuspendacct" not in cp.whm_calls()


def test_abuse_hold_locks_the_suspension_for_root_only(cp: Cp) -> None:
    assert cp.suspend("cp-suspend", hold="abuse").errors == []
    params = [p for _a, f, p in cp.fake.model.calls if f == "suspendacct"][0]
    assert params["disallowun"] == "1" and cp.alice.locked
    assert "(abuse hold)" in cp.alice.reason


@pytest.mark.parametrize("function, step, book", [
    ("suspend_outgoing_email", "mail_block", "cp-now"),
    ("Email::suspend_login", "mail_block", "cp-now"),
    ("suspendacct", "panel_suspend", "cp-suspend")])
def test_result_1_that_changed_nothing_fails_and_rolls_back(cp: Cp, function: str,
                                                            step: str, book: str) -> None:
    cp.fake.model.noop.add(function)
    out = cp.suspend(book)
    assert [e["step"] for e in out.errors] == [step], out.errors
    assert out.state == "active" and out.rolled_back
    a = cp.alice
    assert not a.mailboxes["info@alice.test"]["login"] and not a.out_suspended
    assert not a.suspended and cp.fake.loaded == set()


def test_a_failing_rebuildhttpdconf_puts_the_include_files_back(cp: Cp) -> None:
    cp.fake.fail(is_(REBUILD))
    out = cp.suspend("cp-web")
    assert [e["step"] for e in out.errors] == ["landing_page"] and out.state == "active"
    assert not any(p.startswith(USERDATA) for p in cp.fake.files)
    assert cp.fake.log.count([REBUILD]) == 2  # the failed one, and the rebuild without them
    assert cp.fake.loaded == set()


def test_mail_block_holds_outgoing_and_rejects_incoming_when_asked(cp: Cp) -> None:
    assert cp.suspend("cp-hold").errors == []
    a = cp.alice
    assert a.out_hold and not a.out_suspended
    assert all(b["incoming"] for b in a.mailboxes.values())
    assert cp.unsuspend().errors == []
    assert not a.out_hold and not any(b["incoming"] for b in a.mailboxes.values())
    assert "release_outgoing_email" in cp.whm_calls()


def test_mail_block_refuses_defer_and_changes_nothing(cp: Cp) -> None:
    out = cp.suspend("cp-defer")
    assert "no per-account temporary rejection" in out.errors[0]["message"]
    assert not cp.alice.out_suspended and "suspend_outgoing_email" not in cp.whm_calls()


def test_outgoing_already_suspended_before_stays_suspended(cp: Cp) -> None:
    cp.alice.out_suspended = True
    assert cp.suspend("cp-mail").errors == []
    assert cp.unsuspend().errors == []
    assert cp.alice.out_suspended and "unsuspend_outgoing_email" not in cp.whm_calls()


@pytest.mark.parametrize("name", ["root", "cpses_ab12", "nobody", "a;b", "../x", "x.lock",
                                  "-x", "1234", "Alice"])
def test_bad_account_names_are_refused_and_change_nothing(cp: Cp, name: str) -> None:
    with pytest.raises(BadInput):
        cp.engine().suspend("cp1", name, "cp", "billing", None, False)
    assert cp.fake.changing() == [] or all(a[0].endswith("whmapi1") for a in cp.fake.changing())
    assert cp.fake.model.calls == [] or {f for _a, f, _p in cp.fake.model.calls} <= {
        "accountsummary"}


def test_an_unknown_account_is_bad_input(cp: Cp) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        cp.engine().suspend("cp1", "bob", "cp", "billing", None, False)


def test_dry_run_shows_the_exact_calls_and_changes_nothing(cp: Cp) -> None:
    out = cp.suspend("cp-now", dry_run=True)
    lines = [line for p in out.plans for line in p["actions"]]
    text = "\n".join(lines)
    assert "api   uapi Email::suspend_login as alice email=info@alice.test" in text
    assert "api   whmapi1 suspendacct user=alice" in text and "disallowun=0" in text
    assert "pkgacct alice /home/suspension-agent-backups/alice-" in text
    assert "edit  /etc/proftpd/alice: lock FTP login up@alice.test (prefix !)" in text
    assert "/usr/local/cpanel/scripts/rebuildhttpdconf" in text
    changed = [f for _a, f, _p in cp.fake.model.calls if not f.startswith(
        ("accountsummary", "listsuspended", "DomainInfo::", "Email::list", "Ftp::list",
         "Mysql::list", "Mysql::get_restrictions", "Team::list"))]
    assert changed == [] and cp.fake.loaded == set() and not cp.alice.suspended


def test_backup_is_verified_and_reused_while_recent(cp: Cp) -> None:
    assert cp.suspend("cp-reuse").errors == []
    undo = [c for c in cp.engine().journal.active_changes("cp1", "account", "alice")
            if c.step == "backup"][0].undo
    assert undo["archive"].endswith("/cpmove-alice.tar.gz") and len(undo["sha256"]) == 64
    assert cp.unsuspend().errors == []
    runs = sum(1 for a in cp.fake.log if "/usr/local/cpanel/scripts/pkgacct" in a)
    cp.now[0] += 600
    assert cp.suspend("cp-reuse").errors == []
    assert sum(1 for a in cp.fake.log if "/usr/local/cpanel/scripts/pkgacct" in a) == runs


def test_an_archive_without_a_database_dump_fails_the_backup(cp: Cp) -> None:
    cp.alice.databases.append("alice_shop")  # listed by the panel, absent from the archive
    original = cp.fake._pkgacct

    def short(user: str, dest: str):  # noqa: ANN202
        result = original(user, dest)
        path = f"{dest}/cpmove-{user}.tar.gz"
        cp.fake.files[path].data = cp.fake.files[path].data.replace(
            b"cpmove-alice/mysql/alice_shop.sql\n", b"")
        return result

    cp.fake._pkgacct = short
    out = cp.suspend("cp-web")
    assert "does not hold the dump of database alice_shop" in out.errors[0]["message"]
    assert cp.fake.loaded == set() and not any(p.startswith(USERDATA) for p in cp.fake.files)


def test_suspendacct_over_the_api_unless_the_agents_own_login_lock_needs_force(cp: Cp) -> None:
    assert cp.suspend("cp-suspend").errors == []
    assert "suspendacct" in cp.whm_calls()
    assert not [c for c in cp.fake.model.calls if c[0] == "script"]
    assert cp.unsuspend().errors == [] and not cp.alice.suspended


def test_after_the_agents_login_lock_suspendacct_is_forced_and_all_comes_back(cp: Cp) -> None:
    hash_before = cp.alice.hash
    out = cp.suspend("cp-now")  # panel_lock, then panel_suspend, in one stage
    assert out.errors == [], out.errors
    script = [c for c in cp.fake.model.calls if c[0] == "script"]
    assert script and script[0][2]["argv"][-1] == "--force" and cp.alice.suspended
    assert "suspendacct" not in cp.whm_calls()
    assert cp.unsuspend().errors == []
    assert cp.alice.hash == hash_before and not cp.alice.suspended
    assert cp.alice.shell == "/bin/bash"


def test_an_admins_lock_on_the_hash_counts_as_suspended_before(cp: Cp) -> None:
    cp.alice.hash = "!" + cp.alice.hash  # locked by hand, not by the agent
    assert cp.suspend("cp-suspend").errors == []
    assert cp.unsuspend().errors == []
    assert cp.alice.hash.startswith("!") and "unsuspendacct" not in cp.whm_calls()
    assert not [c for c in cp.fake.model.calls if c[0] == "script"]


def test_panel_suspend_refuses_while_outgoing_mail_is_held(cp: Cp) -> None:
    """Review F12: suspendacct suspends outgoing mail, and Exim fails a suspended sender's
    mail before it looks at the hold: the held messages would be discarded."""
    out = cp.suspend("cp-hold-then-suspend")
    assert [e["step"] for e in out.errors] == ["panel_suspend"], out.errors
    assert "F12" in out.errors[0]["message"] and not cp.alice.suspended
    assert not any(f == "suspendacct" for _a, f, _p in cp.fake.model.calls)
