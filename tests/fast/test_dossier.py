"""`case export` (issue 19 item 5): the dossier of a real case opens with the manifest's
hashes matching its files, every event in it re-hashes to its chain link and the last to
the chain's head at export, the backup's checksum is there and no undo data is, nothing of
another target is in it, and it is never written over anything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from agent.cli import EXIT_OK, EXIT_USAGE
from agent.journal import chain
from tests.fast.conftest import World


def test_the_dossier_of_a_lifted_case_holds_up(world: World, tmp_path: Path) -> None:
    world.cli("suspend", "web1", "alice", "--invoice", "1077", "--reason", "invoice 1077")
    world.cli("suspend", "web1", "bob", "--hold", "abuse", "--reason", "phishing")
    world.cli("reconcile", "web1", "alice", "--overdue", "none")
    (case,) = [c for c in world.rows("cases") if c["name"] == "alice"]
    out = tmp_path / "dossier"
    rc, reply, text = world.cli("case", "export", case["id"], "--out", str(out))
    assert rc == EXIT_OK, text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == reply["manifest"]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert {e["name"] for e in events} == {"alice"}  # nothing of bob's case
    assert [e["event"] for e in events][0] == "case.opened"
    assert "case.lifted" in [e["event"] for e in events]
    for e in events:  # each event re-hashes to its link, from the dossier alone
        row = {k: e[k] for k in chain.COLUMNS if k != "detail"}
        assert chain.row_hash(e["prev_hash"], row, e["detail_sha256"]) == e["hash"], e["seq"]
    # No file contents: the diff lines of the landing page's write are left out.
    shown = json.dumps([e["detail"] for e in events])
    assert "block alice" not in shown and "write /etc/fake/landing_page/alice.conf" in shown
    proof = json.loads((out / "chain.json").read_text())
    assert proof["intact"] and proof["head_seq"] >= events[-1]["seq"]
    changes = json.loads((out / "changes.json").read_text())
    (backup,) = [c for c in changes if c["step"] == "backup"]
    assert len(backup["backup"]["sha256"]) == 64 and "undo" not in json.dumps(changes)
    facts = json.loads((out / "case.json").read_text())
    assert facts["reason"] == "invoice 1077" and facts["invoices"] == ["1077"]
    assert facts["status"] == "lifted"
    timeline = (out / "timeline.txt").read_text()
    assert "case.opened" in timeline and "case.lifted" in timeline
    assert all((out / n).stat().st_mode & 0o077 == 0 for n in manifest["files"])


def test_a_dossier_is_never_written_over_anything(world: World, tmp_path: Path) -> None:
    world.cli("suspend", "web1", "alice")
    (case,) = world.rows("cases")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("mine")
    rc, reply, _ = world.cli("case", "export", case["id"], "--out", str(taken))
    assert rc == EXIT_USAGE and (taken / "x").read_text() == "mine"
    rc, reply, _ = world.cli("case", "export", "20231114-00000000", "--out",
                             str(tmp_path / "new"))
    assert rc == EXIT_USAGE and not (tmp_path / "new").exists()


def test_over_ssh_a_dossier_goes_only_into_dossier_dir(world: World, tmp_path: Path) -> None:
    world.config_path.write_text(world.config_path.read_text() + (
        f"dossier_dir: {tmp_path / 'dossiers'}\n"
        "callers:\n  whmcs: {verbs: [suspend, history, case]}\n"))
    world.cli("suspend", "web1", "alice")
    (case,) = world.rows("cases")
    env = {"SSH_ORIGINAL_COMMAND": f"case export {case['id']}"}
    rc, reply, out = world.cli("serve-ssh", "--caller", "whmcs", env=env)
    assert rc == EXIT_OK and reply["out"].startswith(str(tmp_path / "dossiers")), out
    assert (Path(reply["out"]) / "manifest.json").exists()
    for command in (f"case export {case['id']} --out /tmp/elsewhere",
                    f"case export {case['id']} --out=/tmp/elsewhere", "case frobnicate"):
        rc, reply, out = world.cli("serve-ssh", "--caller", "whmcs",
                                   env={"SSH_ORIGINAL_COMMAND": command})
        assert rc == EXIT_USAGE and "dossier_dir" in reply["errors"][0]["message"], out
    assert not Path("/tmp/elsewhere").exists()
    # A caller not given `case` may not export (billing's default rights).
    rc, reply, out = world.cli("serve-ssh", env=env)
    assert rc == EXIT_USAGE and "may not run 'case'" in reply["errors"][0]["message"], out
    rc, reply, out = world.cli("case", "export", "../../etc")
    assert rc == EXIT_USAGE, out


def test_the_dossier_names_the_signed_checkpoint_its_events_are_proven_against(
        world: World, tmp_path: Path) -> None:
    from tests.fast.test_audit_chain import with_key

    with_key(world)
    world.cli("suspend", "web1", "alice")
    rc, made, _ = world.cli("audit", "checkpoint")
    assert rc == EXIT_OK
    (case,) = world.rows("cases")
    rc, reply, out = world.cli("case", "export", case["id"], "--out", str(tmp_path / "d"))
    assert rc == EXIT_OK, out
    proof = json.loads((tmp_path / "d" / "chain.json").read_text())
    mark = proof["last_checkpoint"]
    assert proof["checkpoints"] == 1 and proof["checkpoint_problem"] is None
    assert mark["covers_head"] == made["checkpoint"]["covers_head"] and mark["signature"]
    events = [json.loads(x) for x in (tmp_path / "d" / "events.jsonl").read_text().splitlines()]
    assert max(e["seq"] for e in events) <= mark["covers_seq"]
