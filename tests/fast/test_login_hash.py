"""panel_lock's journal entry keeps a digest of the password hash, never the hash; entries
written by the earlier release (the hash itself) still revert exactly."""

from __future__ import annotations

import json

from agent.steps import login_hash
from tests.fast.test_cpanel_ladder import Cp, cp  # noqa: F401 - the fixture


def test_either_kind_of_entry_tells_the_hash_from_before() -> None:
    new = login_hash.kept("$6$salt$hash")
    assert "$6$" not in json.dumps(new)
    assert login_hash.is_before("$6$salt$hash", new)
    assert not login_hash.is_before("$6$salt$other", new)
    old = {"hash": "$6$salt$hash"}
    assert login_hash.is_before("$6$salt$hash", old)
    assert not login_hash.is_before("!$6$salt$hash", old)


def test_the_journal_holds_no_password_hash(cp: Cp) -> None:  # noqa: F811
    assert cp.suspend("cp-now").errors == []
    changes = cp.engine().journal.active_changes("cp1", "account", "alice")
    lock = [c for c in changes if c.step == "panel_lock"]
    assert lock and "$6$salt$hash" not in json.dumps(lock[0].undo), lock[0].undo
    assert cp.unsuspend().errors == []
    assert cp.alice.hash == "$6$salt$hash"


def test_an_entry_of_the_earlier_release_reverts_exactly(cp: Cp) -> None:  # noqa: F811
    assert cp.suspend("cp-now").errors == []
    journal = cp.engine().journal
    lock = [c for c in journal.active_changes("cp1", "account", "alice")
            if c.step == "panel_lock"][0]
    undo = {k: v for k, v in lock.undo.items() if k not in ("hash_digest", "group_added")}
    undo["hash"] = "$6$salt$hash"  # as the release before wrote it
    with journal.db.transaction() as tx:
        tx.execute("UPDATE changes SET undo = ? WHERE seq = ?", (json.dumps(undo), lock.seq))
    assert cp.unsuspend().errors == []
    assert cp.alice.hash == "$6$salt$hash" and cp.alice.shell == "/bin/bash"
