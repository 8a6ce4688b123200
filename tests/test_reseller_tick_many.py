"""`tick` brings a reseller's whole tree to its next stage at once: the reference workload
(tests/hosts/many.py: rsl0 with 3 sub-resellers, 88 accounts, 104 sites) on a linux test
host of its own, issue 15's acceptance "tick applies the mail stage to all 88 accounts at
once; a child failing its mail step leaves the other 87 applied and the reply names it".

SSH goes through the delay proxy (50 ms RTT, 2 ms jitter). The playbook puts the sites
behind the landing page now and blocks mail a day later (the agent's clock injected). One
account's Exim hook path is taken by a folder beforehand, as a host laid out its own way
might have it, so its mail step cannot be applied: the tick's reply names that child and its
error, exit 1 (it failed cleanly: nothing of its mail stage stays applied), while every
other account's hook is in place and its outgoing mail is refused by the real Exim. The
unsuspend then gives back every site and the host's files byte for byte.
"""

from __future__ import annotations

import shutil

import pytest

from agent import PROJECT_ROOT
from agent.config.config import load
from tests.conftest import Agent, host_index, start, tree_state
from tests.hosts import clients, many, sites, testhost
from tests.hosts.delayproxy import DelayProxy
from tests.hosts.provision import provision, write_config

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("reseller-many")]

START = 2_000_000_000.0
DAY = 86400.0
BROKEN = "u050"  # its Exim hook path is a folder: its mail step fails
HOOKS = "/etc/exim4/suspension-agent"
PLAYBOOK = ("stages:\n  - after: 0s\n    steps:\n      - backup\n      - landing_page\n"
            "  - after: 24h\n    steps:\n      - mail_block: {incoming: accept}\n")
WATCHED = ("/etc/apache2", "/etc/exim4", "/etc/dovecot", "/etc/passwd", "/etc/shadow",
           "/var/lib/suspension-agent-cases")


@pytest.fixture(scope="module")
def host():
    """A linux test host of its own (offset 12) carrying the reference reseller workload;
    fails (never skips) under CI=true or as root when it cannot start."""
    index = host_index(offset=12)
    h = testhost.TestHost(f"rm{index}", index)
    start(h, provision)
    try:
        yield h
    finally:
        h.down()


@pytest.fixture(scope="module")
def agent(host, tmp_path_factory):
    """The agent over SSH through the delay proxy (50 ms RTT, jitter), the tree in config."""
    proxy = DelayProxy((host.address, 22), up=0.025, down=0.025, jitter=0.002)
    folder = tmp_path_factory.mktemp("tick-many")
    books = folder / "playbooks"
    shutil.copytree(PROJECT_ROOT / "playbooks", books)
    (books / "web-then-mail.yaml").write_text(PLAYBOOK)
    cfg = write_config(host, folder / "agent", playbooks_dir=str(books),
                       proxy_port=proxy.port)

    many.provision(host, load(str(cfg)).branding)
    text = cfg.read_text().replace("    connect_timeout: 5\n",
                                   "    connect_timeout: 5\n" + many.tree_config())
    cfg.write_text(text.replace("lock_wait_seconds: 2", "lock_wait_seconds: 30"))
    yield Agent(cfg, host)
    proxy.stop()


def sites_show(host) -> dict[str, str]:
    """What each of the 208 names answers over HTTP: `landing`, `own`, else the status."""
    return sites.shows(host, {a: [(d, s) for s in many.sites(a) for d in (s, f"www.{s}")]
                              for a in many.ACCOUNTS}, schemes=(False,))


def test_tick_reaches_the_mail_stage_of_88_accounts_and_names_the_one_that_failed(
        host, agent):
    before = tree_state(host, *WATCHED)
    host.path(f"{HOOKS}/{BROKEN}.outgoing").mkdir()
    try:
        agent.now = START
        rc, reply, out = agent("suspend", host.name, "--reseller", "rsl0", "--playbook",
                               "web-then-mail", timeout=600)
        assert rc == 0 and reply["state"] == "suspended", out
        assert len(reply["children"]) == len(many.ACCOUNTS) + len(many.RESELLERS), out
        assert set(sites_show(host).values()) == {"landing"}
        assert not [a for a in many.ACCOUNTS if host.path(f"{HOOKS}/{a}.outgoing").is_file()]

        agent.now = START + DAY + 60
        rc, ticked, out = agent("tick", timeout=600)
        assert rc == 1, out  # a child failed cleanly; nothing needs a human
        tree = next(p for p in ticked["processed"] if p["target"]["name"] == "rsl0")
        failed = {c["account"]: c for c in tree["children"] if c.get("errors")}
        assert list(failed) == [BROKEN], out
        (error,) = failed[BROKEN]["errors"]
        assert error["step"] == "mail_block" and "not a regular file" in error["message"], out
        assert failed[BROKEN]["state"] == "suspended" and failed[BROKEN]["stage"] == 0, out
        assert [e["account"] for e in ticked["processed"][0]["errors"]] == [BROKEN], out
        applied = [a for a in many.ACCOUNTS if host.path(f"{HOOKS}/{a}.outgoing").is_file()]
        assert applied == [a for a in many.ACCOUNTS if a != BROKEN]
        # The real Exim refuses their outgoing mail (sendmail as the account, as PHP's
        # mail() sends). The failed child's hook path is still the folder as it was, with
        # nothing of the agent's in it.
        rc, why = clients.local_sendmail(host, "u001", "x@outside.test", "after the tick")
        assert rc != 0 and "suspended" in why, why
        assert list(host.path(f"{HOOKS}/{BROKEN}.outgoing").iterdir()) == []

        rc, reply, out = agent("unsuspend", host.name, "--reseller", "rsl0", timeout=600)
        assert rc == 0 and reply["state"] == "active", out
        assert set(sites_show(host).values()) == {"own"}
    finally:
        host.path(f"{HOOKS}/{BROKEN}.outgoing").rmdir()
    assert tree_state(host, *WATCHED) == before
