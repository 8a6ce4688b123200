"""A cPanel reseller suspend and unsuspend, killed after chosen journal transitions
(SUSPENSION_AGENT_FAILPOINT=journal:N, agent/failpoints.py: the process dies as by kill -9),
on the cPanel simulator over SSH (panel calls by whmapi1): the cPanel half of issue 15's
crash walk (the linux half: tests/test_reseller_crash_host.py).

The tree: res1 (owning itself) owns alice (addon, sub and parked domains) and the
sub-reseller sub1, who owns cust1 (a subdomain and a parked domain) and cust2; bob (root's)
is outside. Playbook `web-now` (backup and landing page of each of the five accounts), and
the tree's own login lock: reseller_lock of res1 and sub1 (suspendreseller reseller-only=1).

What every cut run must converge to, from the next call (retried while it answers 75, as
the billing system does):
- after a suspend: every domain of the tree answers the landing page over HTTP and HTTPS
  (bob's its own), the resellers' WHM tokens are refused and the panel shows them
  suspended and locked, every child of the reply is suspended, and every watched file
  (/etc, /var/cpanel with the simulator's own state, the agent's folders, the tree's
  homes) is the uncut run's, case ids and suspension times masked;
- after an unsuspend: every site its own content, the reseller logins (SSH password, WHM
  token) open, every watched file byte for byte as before the walk, no case record on the
  server, no target in the journal.
SSH password logins (a refused one costs sshd's 2-4 s failure delay) are tried in the uncut
runs and whenever the tree is back; after a cut the password lock is compared byte for byte
in /etc/shadow with the uncut run's.

Which transitions. An uncut suspend of this tree makes 24 journal transitions in three
groups, each group first writing the intent of every member and then marking each one done
(agent/engine/step_run.py): reseller_lock (2 logins), then backup and landing_page (5
accounts each). An uncut unsuspend makes 15: per group in reverse order, one `reverting`
of all members at once (mark_many) and then each member's `reverted`. The whole walk (every
N of both verbs, as the linux walk does: 24 rounds) takes about 6 minutes here, most of it
the agent's own calls (pkgacct of five accounts, Apache's rebuild and restart): too much
for CI. So it cuts at each kind of transition in each group, at the places that leave
different states behind:
  suspend, per group: its first intent (nothing of the group done), its first done (the
  other members' commands may have run unrecorded, a pkgacct killed half-way, include
  files in place), its last done (the group complete, the next one not begun); and once,
  the landing group's last intent (every intent written, no landing file yet). So the
  reseller_lock group is cut at 1, 3 and 4 (all but its second intent), backup at 5, 10
  and 14, landing_page at 15, 19, 20 and 24 (the run's last transition).
  unsuspend, per group: its `reverting` (nothing reverted yet), its first `reverted` (the
  others' reverts possibly carried out unrecorded), its last `reverted` (the group back,
  the next not begun; for reseller_lock the run's last transition): 1, 2, 6, 7, 8, 12,
  13, 14, 15.
The numbers follow from the groups (SUSPEND_GROUPS); the uncut suspend's journal is checked
to hold those groups in that order, and after every kill the journal is read to check the
cut hit the transition meant (so a change in the agent's order is noticed, not silently
walked past). One host for the whole walk, and each
round is one cut suspend, its converging suspend, one cut unsuspend and its converging
unsuspend: the converged suspended tree is where the unsuspend cuts start from, as a
further suspend is what checks that an unsuspend cut leaves the tree lockable again.
10 rounds, about 3 minutes with the host's start; SA_CPANEL_CRASH_WALK=all walks every
transition of both verbs (run so at 7e9564c: every cut converged). Panel calls go by
whmapi1 only: the WHM API transport makes the same transitions (its own round trip is in
tests/test_cpanel_reseller.py).

A call that does not converge is noted (with the audit log's errors), the tree is put back
as an admin would (the tree's unsuspend once more, then each account the journal still
lists), and the walk goes on, so the failure at the end names every cut that went wrong.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from agent.failpoints import ENV
from tests.hosts import clients
from tests.hosts.cpanel import calls
from tests.hosts.cpanel.agent import make_agent
from tests.hosts.cpanel.layout import site_page
from tests.hosts.cpanel.resellers import add_accounts
from tests.hosts.cpanel.services import create_token
from tests.test_cpanel_reseller import ACCOUNTS as ALL
from tests.test_cpanel_reseller import names
from tests.test_crash_points import KILLED, converge
from tests.test_ladder import at_once

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-reseller-crash")]

ADDED = [ALL[u] for u in ("sub1", "cust1", "cust2")]
TREE = ("res1", "alice", "sub1", "cust1", "cust2")
RESELLERS = ("res1", "sub1")
OUTSIDE = ("bob",)
BOOK = "web-now"
# The groups of each verb's journal transitions, in order: (step, members).
SUSPEND_GROUPS = (("reseller_lock", RESELLERS), ("backup", TREE), ("landing_page", TREE))
UNSUSPEND_GROUPS = tuple(reversed(SUSPEND_GROUPS))
# Watched byte for byte (what a suspension of this tree may touch, and more).
WATCHED = ("/etc", "/var/cpanel", "/var/spool/cron", "/var/lib/suspension-agent",
           "/var/lib/suspension-agent-cases", *(f"/home/{u}" for u in (*TREE, *OUTSIDE)))
# Not compared: usermod's own backups of the files it edits (the version before its last
# edit, README "What a round trip gives back") and the simulator's log of its script runs
# (one line per /scripts/NAME run: a counter for tests, appended on every call).
NOT_COMPARED = ("etc/passwd-", "etc/shadow-", "etc/group-", "etc/gshadow-",
                "var/cpanel/sim/scripts.log")
RECORDS = "/var/lib/suspension-agent-cases"
BACKUPS = "/home/suspension-agent-backups"  # agent/drivers/cpanel/settings.py backup_dir
# Suspended state: what differs from run to run (case ids, cPanel's suspension times).
_CASE_ID = re.compile(rb"\b\d{8}-[0-9a-f]{8}\b")  # agent/journal/journal.py new_case
_TIMES = re.compile(rb"^(SUSPENDTIME|OUTGOING_MAIL_SUSPENDED)=\d+$", re.M)  # cpuser files
# Files that are sets of lines (the order is that of side by side calls).
_LINE_SETS = ("etc/outgoing_mail_suspended_users",)
# In a case record: the times, and a backup's archive (its name has the time, its bytes
# tar's mtimes).
_RECORD_TIMES = ("at", "started_at", "next_due_at", "seq")
_ARCHIVE_KEYS = ("archive", "staging", "sha256", "size", "taken_at")
# And the landing folders all children share: each child's landing_page notes them as made
# by it when it found them absent, so after a cut only the children planned before it do
# (the next call plans the others with the folders there). Whether they still go is what
# the byte for byte check after the unsuspend shows.
_SHARED_DIRS = ("/var/lib/suspension-agent", "/var/lib/suspension-agent/landing")


@pytest.fixture(scope="module")
def cp():
    """A cPanel host of its own (host index offset 35) with the tree above and a WHM token
    of each reseller."""
    for host, cpanel in calls.running_host(offset=35):
        add_accounts(host, ADDED)
        tokens = {r: create_token(host, r, f"{r}-own", ("list-accts",)) for r in RESELLERS}
        yield host, cpanel, tokens


@pytest.fixture
def agent(cp, tmp_path):
    """The agent over SSH, panel calls by whmapi1; the tree unsuspended afterwards."""
    host, cpanel, _tokens = cp
    agent = make_agent(host, tmp_path, "cli", cpanel.root_token)
    yield agent
    agent("unsuspend", host.name, "--reseller", "res1")
    calls.reset(host)
    for user in TREE:
        if host.path(f"/var/cpanel/suspended/{user}").exists():
            calls.whmapi1(host, "unsuspendacct", user=user)


# -- what the host shows ---------------------------------------------------------------------

def files(host, masked: bool = False) -> dict[str, tuple]:
    """Every watched file and folder: sha256 of its content (case ids and SUSPENDTIME
    masked if `masked`), mode, owner; a folder as "dir", a link by its target. A cpuser
    file's `SUSPENDED=0` line is left out: unsuspendacct drops the key (panels.md A8),
    and both mean "not suspended" (tests/hosts/cpanel/agent.py snapshot)."""
    out: dict[str, tuple] = {}
    for folder in WATCHED:
        base = host.path(folder)
        if not base.exists():
            out[folder] = ("absent",)
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                key = str(p.relative_to(host.root))
                if key in NOT_COMPARED:
                    continue
                st = p.lstat()
                if p.is_symlink():
                    what = "link " + os.readlink(p)
                elif p.is_file():
                    data = p.read_bytes()
                    if key.startswith("var/cpanel/users/"):
                        data = data.replace(b"SUSPENDED=0\n", b"")
                    if masked:
                        data = _masked(key, data)
                    # Masked: the bytes themselves (small files), for the message.
                    what = (data if masked and len(data) < 65536
                            else hashlib.sha256(data).hexdigest())
                else:
                    what = "dir"
                out[key] = (what, st.st_mode, st.st_uid, st.st_gid)
    return out


def _masked(key: str, data: bytes) -> bytes:
    """`data` of the file `key` without what differs from one suspend of the tree to
    another: case ids, times, the order of lines of a set, a backup's archive."""
    data = _TIMES.sub(rb"\1=X", _CASE_ID.sub(b"X", data))
    if key in _LINE_SETS:
        data = b"".join(sorted(data.splitlines(keepends=True)))
    if key in ("etc/group", "etc/gshadow"):
        # A group's members are a set: accounts of a batch join side by side, in any order.
        data = b"".join(_members_sorted(line) for line in data.splitlines(keepends=True))
    if key.startswith(RECORDS.lstrip("/") + "/") and key.endswith(".json"):
        doc = json.loads(data)
        for entry in (*doc.get("cases", ()), *doc.get("changes", ())):
            entry.update(dict.fromkeys((k for k in _RECORD_TIMES if k in entry), "X"))
            if entry.get("step") == "backup":
                entry["undo"].update(dict.fromkeys(
                    (k for k in _ARCHIVE_KEYS if k in entry["undo"]), "X"))
            if entry.get("step") == "landing_page" and "created_dirs" in entry["undo"]:
                entry["undo"]["created_dirs"] = [
                    d for d in entry["undo"]["created_dirs"] if d not in _SHARED_DIRS]
        data = json.dumps(doc, indent=1, sort_keys=True).encode()
    return data


def _members_sorted(line: bytes) -> bytes:
    head, sep, members = line.rstrip(b"\n").rpartition(b":")
    return head + sep + b",".join(sorted(m for m in members.split(b",") if m)) + b"\n"


def _diff(key: str, want: tuple | None, got: tuple | None) -> str:
    """How one file of `files` differs: a unified diff of small text files."""
    if want and got and isinstance(want[0], bytes) and isinstance(got[0], bytes):
        lines = difflib.unified_diff(want[0].decode(errors="replace").splitlines(),
                                     got[0].decode(errors="replace").splitlines(),
                                     "uncut", "now", lineterm="", n=1)
        return f"  {key} {want[1:]} -> {got[1:]}:\n    " + "\n    ".join(list(lines)[:30])
    return f"  {key}: {str(want)[:200]} -> {str(got)[:200]}"


def shows(host, users) -> dict[str, str]:
    """What each domain of `users` answers over HTTP and HTTPS: `landing` (503,
    Retry-After, the agent's page), `own` (200, the site's own page), else the status."""
    def seen(user: str, name: str, servername: str, scheme: str) -> str:
        resp = calls.web(host, name, scheme)
        if (resp.status_code == 503 and resp.headers.get("Retry-After")
                and "Example Hosting" in resp.text):
            return "landing"
        if resp.status_code == 200 and resp.text == site_page(user, servername):
            return "own"
        return str(resp.status_code)

    def of(user: str) -> dict[str, str]:
        return {f"{scheme}://{name} ({user})": seen(user, name, servername, scheme)
                for name, servername in names(user).items() for scheme in ("http", "https")}

    # One thread per account (a requests session keeps 10 connections per host).
    return {k: v for found in at_once({u: (lambda u=u: of(u)) for u in users}).values()
            for k, v in found.items()}


def login_states(host, tokens: dict[str, str], passwords: bool) -> dict[str, str]:
    """Each reseller's WHM token ("ok" or the HTTP status), its panel state (suspended,
    locked) and, with `passwords`, its SSH password login."""
    probes = {f"whm {r}": (lambda r=r: _token(host, r, tokens[r])) for r in RESELLERS}
    probes |= {f"panel {r}": (lambda r=r: _panel(host, r)) for r in RESELLERS}
    if passwords:
        probes |= {f"ssh {r}": (lambda r=r: clients.ssh_password_login(host, r, f"{r}-pass-1"))
                   for r in RESELLERS}
    return at_once(probes)


def _token(host, user: str, token: str) -> str:
    status = calls.api(host, token, "listaccts", as_user=user).status_code
    return "ok" if status == 200 else f"HTTP {status}"


def _panel(host, user: str) -> str:
    acct = calls.whmapi1(host, "accountsummary", user=user)["data"]["acct"][0]
    return f"suspended={acct['suspended']} locked={acct['is_locked']}"


LOCKED = {**{f"whm {r}": "HTTP 403" for r in RESELLERS},
          **{f"panel {r}": "suspended=1 locked=1" for r in RESELLERS}}
OPEN = {**{f"whm {r}": "ok" for r in RESELLERS},
        **{f"panel {r}": "suspended=0 locked=0" for r in RESELLERS},
        **{f"ssh {r}": "ok" for r in RESELLERS}}


def records(host) -> list[str]:
    base = host.path(RECORDS)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")) if base.exists() else []


def backup_leftovers(host) -> list[str]:
    """What the backup folder holds besides one whole cpmove-USER.tar.gz per case folder
    (a killed pkgacct's staging must be cleaned up by the next call)."""
    base = host.path(BACKUPS)
    out = []
    for folder in sorted(base.iterdir()) if base.exists() else []:
        user = folder.name.split("-", 1)[0]
        inside = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else ["(file)"]
        if inside != [f"cpmove-{user}.tar.gz"]:
            out.append(f"{folder.name}: {inside}")
    return out


# -- the journal: where a cut falls, and what it left -------------------------------------------

def journal_rows(agent) -> list[tuple[int, str, str, str]]:
    """Every change of the journal: (seq, account, step, state)."""
    path = agent.config.parent / "state.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT seq, name, step, state FROM changes ORDER BY seq").fetchall()
    finally:
        db.close()


def suspend_picture(n: int) -> Counter:
    """The (step, state) counts of a suspend's own changes right after its n-th transition
    (each group: every member's intent, then each one's done)."""
    seen: Counter = Counter()
    for step, members in SUSPEND_GROUPS:
        size = len(members)
        if n <= 0:
            break
        if n <= size:
            seen[(step, "intent")] += n
        elif n <= 2 * size:
            seen[(step, "done")] += n - size
            seen[(step, "intent")] += 2 * size - n
        else:
            seen[(step, "done")] += size
        n -= 2 * size
    return +seen  # without the zero counts


def unsuspend_picture(n: int) -> Counter:
    """The (step, state) counts of a suspended tree's changes right after an unsuspend's
    n-th transition (each group: one `reverting` of all, then each one's `reverted`)."""
    seen: Counter = Counter()
    for step, members in UNSUSPEND_GROUPS:
        size = len(members)
        if n <= 0:
            seen[(step, "done")] += size
        elif n == 1:
            seen[(step, "reverting")] += size
        elif n <= 1 + size:
            seen[(step, "reverted")] += n - 1
            seen[(step, "reverting")] += size + 1 - n
        else:
            seen[(step, "reverted")] += size
        n -= 1 + size
    return +seen


def chosen_cuts() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The cuts of each verb: (transition number, what it is); see the module's doc.
    With SA_CPANEL_CRASH_WALK=all, every transition of both verbs (about 10 minutes)."""
    if os.environ.get(EVERY) == "all":
        return ([(n, _what(suspend_picture(n))) for n in range(1, _count(suspend_picture) + 1)],
                [(n, _what(unsuspend_picture(n)))
                 for n in range(1, _count(unsuspend_picture) + 1)])
    suspend, at = [], 0
    for step, members in SUSPEND_GROUPS:
        size = len(members)
        suspend.append((at + 1, f"{step}: first intent"))
        if step == "landing_page":
            suspend.append((at + size, f"{step}: last intent"))
        suspend += [(at + size + 1, f"{step}: first done"), (at + 2 * size, f"{step}: last done")]
        at += 2 * size
    unsuspend, at = [], 0
    for step, members in UNSUSPEND_GROUPS:
        size = len(members)
        unsuspend += [(at + 1, f"{step}: reverting"), (at + 2, f"{step}: first reverted"),
                      (at + 1 + size, f"{step}: last reverted")]
        at += 1 + size
    return suspend, unsuspend


EVERY = "SA_CPANEL_CRASH_WALK"


def _count(picture) -> int:  # noqa: ANN001
    """The number of transitions of an uncut run (the first n whose picture no longer
    changes)."""
    n = 1
    while picture(n + 1) != picture(n):
        n += 1
    return n


def _what(picture: Counter) -> str:
    return ", ".join(f"{step} {state} x{k}" for (step, state), k in sorted(picture.items()))


# -- the walk -------------------------------------------------------------------------------

class Walk:
    """The calls of the walk and what went wrong at each cut (linux: Walk in
    tests/test_reseller_crash_host.py)."""

    def __init__(self, agent, host, tokens) -> None:  # noqa: ANN001
        self.agent, self.host, self.tokens = agent, host, tokens
        self.before = files(host)
        self.want: dict | None = None
        self.problems: list[str] = []
        self.audit = agent.config.parent / "audit.jsonl"
        self.seen = 0

    # What each state must look like.
    def check_suspended(self, reply: dict | None, where: str, passwords: bool = False) -> None:
        assert reply is not None and reply["state"] == "suspended" and not reply["errors"], (
            where, reply)
        kids = {c["account"]: c["state"] for c in reply["children"]}
        assert kids == dict.fromkeys(TREE, "suspended"), (where, kids)
        seen = at_once({"web": lambda: shows(self.host, (*TREE, *OUTSIDE)),
                        "logins": lambda: login_states(self.host, self.tokens, passwords)})
        want_web = {k: ("own" if k.endswith(tuple(f"({u})" for u in OUTSIDE)) else "landing")
                    for k in seen["web"]}
        assert seen["web"] == want_web, (where, {k: v for k, v in seen["web"].items()
                                                 if v != want_web[k]})
        logins = {k: v for k, v in seen["logins"].items() if not k.startswith("ssh ")}
        assert logins == LOCKED, (where, logins)
        assert not [v for k, v in seen["logins"].items() if k.startswith("ssh ") and v == "ok"], (
            where, seen["logins"])
        now = files(self.host, masked=True)
        if self.want is None:
            self.want = now
            return
        diff = sorted(k for k in set(now) | set(self.want) if now.get(k) != self.want.get(k))
        assert not diff, f"{where}: files differ from the uncut suspend's: {diff}\n" + "\n".join(
            _diff(k, self.want.get(k), now.get(k)) for k in diff[:4])

    def check_restored(self, reply: dict | None, where: str) -> None:
        if reply is not None:
            assert reply["state"] == "active" and not reply["errors"], (where, reply)
        seen = at_once({"web": lambda: shows(self.host, (*TREE, *OUTSIDE)),
                        "logins": lambda: login_states(self.host, self.tokens, True)})
        assert set(seen["web"].values()) == {"own"}, (
            where, {k: v for k, v in seen["web"].items() if v != "own"})
        assert seen["logins"] == OPEN, (where, seen["logins"])
        assert records(self.host) == [], (where, "case records left", records(self.host))
        now = files(self.host)
        diff = sorted(k for k in set(now) | set(self.before) if now.get(k) != self.before.get(k))
        assert not diff, (where, "not given back byte for byte:", diff[:20])
        assert backup_leftovers(self.host) == [], (where, backup_leftovers(self.host))
        rc, status, out = self.agent("status")
        assert rc == 0 and status["targets"] == [], (where, out)

    # Calls.
    def call(self, verb: str, env: dict | None = None):  # noqa: ANN201
        args = ("--playbook", BOOK) if verb == "suspend" else ()
        return self.agent(verb, self.host.name, "--reseller", "res1", *args, env=env)

    def converge(self, verb: str, where: str, passwords: bool = False) -> bool:
        """Call `verb` (retried on 75) and check the state it must leave; note a failure."""
        args = ("--playbook", BOOK) if verb == "suspend" else ()
        rc, reply, out = converge(self.agent, verb, self.host.name, "--reseller", "res1", *args)
        try:
            assert rc == 0, f"exit {rc}: {out if isinstance(out, str) else json.dumps(out)}"
            if verb == "suspend":
                self.check_suspended(reply, where, passwords)
            else:
                self.check_restored(reply, where)
        except AssertionError as exc:
            self.note(where, str(exc))
            return False
        self._audit_errors()
        return True

    def cut(self, verb: str, n: int, what: str) -> bool:
        """Kill `verb` after its n-th transition; check it died there (the journal shows
        the picture of transition n); False (noted) if not."""
        before = journal_rows(self.agent)
        last = before[-1][0] if before else 0
        active = {seq for seq, _n, _s, state in before if state == "done"}
        rc, _reply, out = self.call(verb, env={ENV: f"journal:{n}"})
        where = f"{verb} cut at journal:{n} ({what})"
        rows = journal_rows(self.agent)
        if verb == "suspend":
            got = Counter((s, st) for seq, _n, s, st in rows if seq > last)
            want = suspend_picture(n)
        else:
            got = Counter((s, st) for seq, _n, s, st in rows if seq in active)
            want = unsuspend_picture(n)
        if rc != KILLED or got != want:
            self.note(where, f"exit {rc} (want {KILLED}); journal {dict(got)}, want "
                      f"{dict(want)}: {out[-1500:]}")
            return False
        return True

    # Failures.
    def _audit_errors(self) -> list[str]:
        lines = self.audit.read_text().splitlines() if self.audit.exists() else []
        new, self.seen = lines[self.seen:], len(lines)
        out = []
        for line in new:
            e = json.loads(line)
            if e.get("error") or e.get("outcome") in ("stuck", "failed", "partial"):
                out.append(f"{e.get('timestamp', '')[11:23]} {e.get('event')} "
                           f"{e.get('name')} {e.get('step')} {e.get('outcome')}: "
                           f"{str(e.get('error', ''))[:300]}")
        return out

    def note(self, where: str, message: str) -> None:
        audit = "\n    ".join(self._audit_errors()) or "(none)"
        self.problems.append(f"{where}: {message[:2500]}\n  audit errors:\n    {audit}")

    def heal(self, where: str) -> None:
        """Put the tree back as an admin would: the tree's unsuspend once more, then each
        account the journal still lists; fail at once if it does not come back."""
        converge(self.agent, "unsuspend", self.host.name, "--reseller", "res1")
        _rc, status, _out = self.agent("status")
        listed = sorted(t["target"]["name"] for t in (status or {}).get("targets", [])
                        if t["target"]["kind"] == "account")
        for name in listed:
            converge(self.agent, "unsuspend", self.host.name, name)
        if listed:
            self.problems[-1] += f"\n  healed: each of {listed} unsuspended on its own"
        try:
            self.check_restored(None, f"{where} (healed)")
        except AssertionError as exc:
            self.note(f"{where}: not put back", str(exc))
            pytest.fail(self.report(), pytrace=False)
        self._audit_errors()

    def report(self) -> str:
        return "\n".join([f"{len(self.problems)} problem(s):", *self.problems])


def test_a_cpanel_reseller_tree_killed_at_its_transitions_converges(cp, agent) -> None:
    host, _cpanel, tokens = cp
    walk = Walk(agent, host, tokens)
    # Uncut: what every cut run must converge to; and the journal's groups as assumed.
    seen = len(journal_rows(agent))
    assert walk.converge("suspend", "uncut suspend", passwords=True), walk.report()
    rows = journal_rows(agent)[seen:]
    # One row per member and step, each step's rows together, in SUSPEND_GROUPS' order.
    assert [s for _q, _n, s, _st in rows] == [
        step for step, members in SUSPEND_GROUPS for _m in members], rows
    assert all(sorted(n for _q, n, s, _st in rows if s == step) == sorted(members)
               for step, members in SUSPEND_GROUPS), rows
    assert {st for *_x, st in rows} == {"done"}, rows
    assert walk.converge("unsuspend", "uncut unsuspend"), walk.report()
    suspends, unsuspends = chosen_cuts()
    rounds = max(len(suspends), len(unsuspends))
    for i in range(rounds):
        if i < len(suspends):
            n, what = suspends[i]
            where = f"suspend after a kill at journal:{n} ({what})"
            if not (walk.cut("suspend", n, what) and walk.converge("suspend", where)):
                walk.heal(where)
                assert walk.converge("suspend", f"suspend after healing journal:{n}"), \
                    walk.report()
        else:
            assert walk.converge("suspend", "suspend (no suspend cut left)"), walk.report()
        if i < len(unsuspends):
            n, what = unsuspends[i]
            where = f"unsuspend after a kill at journal:{n} ({what})"
            if not (walk.cut("unsuspend", n, what) and walk.converge("unsuspend", where)):
                walk.heal(where)
        elif not walk.converge("unsuspend", "unsuspend (no unsuspend cut left)"):
            walk.heal("unsuspend (no unsuspend cut left)")
    print(f"{rounds} rounds: suspend cut at {[n for n, _w in suspends]}, unsuspend cut at "
          f"{[n for n, _w in unsuspends]}")
    if walk.problems:
        pytest.fail(walk.report(), pytrace=False)
