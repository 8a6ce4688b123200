"""Review F9 on the fake cPanel: ftp_lock locks the account's Web Disk logins (both hashes
of each line of ~/etc/webdav/shadow, written as the customer) and its own Digest login in
/etc/digestshadow, and puts back exactly what was there, also across someone else's
suspendacct/unsuspendacct (which use `*LOCKED*`)."""

from __future__ import annotations

from agent.drivers.cpanel import webdisk
from agent.steps.login_hash import digest
from tests.fast.test_cpanel_ladder import Cp, cp  # noqa: F401 - the fixture

SHADOW = "/home/alice/etc/webdav/shadow"
LINES = (b"disk@alice.test:$6$a$disk:19000::::::0123abcd\n"
         b"nodigest@alice.test:$6$b$nd:19000::::::\n"
         b"old@alice.test:*LOCKED*$6$c$old:19000::::::*LOCKED*4567\n")
DIGESTS = b"bob:89ab\nalice:cdef\n"


def _setup(cp: Cp) -> None:  # noqa: F811
    cp.fake.put(SHADOW, LINES, 0o600)
    cp.fake.put(webdisk.DIGEST_DB, DIGESTS, 0o640)


def test_ftp_lock_locks_web_disk_and_puts_it_back_byte_for_byte(cp: Cp) -> None:  # noqa: F811
    _setup(cp)
    out = cp.suspend("cp-ftp")
    assert out.errors == [], out.errors
    assert cp.fake.files[SHADOW].data == (
        b"disk@alice.test:!$6$a$disk:19000::::::!0123abcd\n"
        b"nodigest@alice.test:!$6$b$nd:19000::::::\n"
        b"old@alice.test:*LOCKED*$6$c$old:19000::::::*LOCKED*4567\n")
    assert cp.fake.files[SHADOW].mode == 0o600
    assert cp.fake.files[webdisk.DIGEST_DB].data == b"bob:89ab\nalice:!cdef\n"
    # Run twice (a billing system retrying): nothing more changes.
    changed = len(cp.fake.changing())
    assert cp.suspend("cp-ftp").errors == [] and len(cp.fake.changing()) == changed
    assert cp.unsuspend().errors == []
    assert cp.fake.files[SHADOW].data == LINES
    assert cp.fake.files[webdisk.DIGEST_DB].data == DIGESTS


def test_someone_elses_suspendacct_meanwhile_leaves_nothing_locked(cp: Cp) -> None:  # noqa: F811
    """suspendacct puts `*LOCKED*` before our `!`, unsuspendacct strips every `*LOCKED*`
    (scripts/unsuspendacct:455-475): lifted in either order, the logins come back."""
    _setup(cp)
    assert cp.suspend("cp-ftp").errors == []
    locked = cp.fake.files[SHADOW].data
    suspended = locked.replace(b":!$6$a", b":*LOCKED*!$6$a").replace(b"!0123", b"*LOCKED*!0123")
    cp.fake.put(SHADOW, suspended, 0o600)
    assert cp.unsuspend().errors == []
    data = cp.fake.files[SHADOW].data
    assert b"disk@alice.test:*LOCKED*$6$a$disk:19000::::::*LOCKED*0123abcd\n" in data
    assert data.replace(b"*LOCKED*$6$a", b"$6$a").replace(b"*LOCKED*0123", b"0123") == LINES


def test_a_password_changed_during_the_case_is_never_replaced() -> None:
    """The unlock takes off our `!` only before the recorded value: a new password set
    meanwhile (open already) and a field locked by someone else stay as they are."""
    want = {"disk@x.test": {"1": digest("$6$a$disk")}}
    assert webdisk.edit(b"disk@x.test:$6$new:1::::::\n", want, False) == (
        b"disk@x.test:$6$new:1::::::\n")
    assert webdisk.edit(b"disk@x.test:!$6$other:1::::::\n", want, False) == (
        b"disk@x.test:!$6$other:1::::::\n")
    assert webdisk.edit(b"disk@x.test:!$6$a$disk:1::::::\n", want, False) == (
        b"disk@x.test:$6$a$disk:1::::::\n")


def test_an_unreadable_web_disk_file_is_said_not_locked(cp: Cp) -> None:  # noqa: F811
    """A file the customer made unreadable to itself (a link to root's file, say) is never
    read as root; the plan says its logins, if any, are not locked."""
    cp.fake.put(webdisk.DIGEST_DB, DIGESTS, 0o640)
    cp.fake.fail(lambda a: a[0].endswith("setpriv") and a[-2:] == ["--", SHADOW],
                 error=1, stderr=f"cat: {SHADOW}: Permission denied", times=99)
    out = cp.suspend("cp-ftp", dry_run=True)
    text = "\n".join(line for p in out.plans for line in p["actions"])
    assert "the Web Disk logins of alice could not be read as the customer" in text, text
    assert "Permission denied" in text


def test_the_unsuspend_reads_nothing_of_web_disk_or_team_when_nothing_was_locked(
        cp: Cp) -> None:  # noqa: F811
    """The hot path: an account without Web Disk logins or team users costs its unsuspend
    no read of either (nothing of this case's can still be locked there)."""
    assert cp.suspend("cp-lock").errors == []
    log_at, calls_at = len(cp.fake.log), len(cp.fake.model.calls)
    assert cp.unsuspend().errors == []
    assert not [a for a in cp.fake.log[log_at:] if a[0].endswith("setpriv")]
    assert not [f for _k, f, _p in cp.fake.model.calls[calls_at:] if f.startswith("Team::")]
    assert webdisk.DIGEST_DB not in " ".join(" ".join(a) for a in cp.fake.log[log_at:])
