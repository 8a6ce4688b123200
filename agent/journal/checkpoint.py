"""Signed checkpoints of the audit chain (issue 19 item 5; reference/billing-evidence.md 5.2,
7.3): now and then the chain's head (event number and hash) is signed with an Ed25519 key
of the agent's own and written as an `audit.checkpoint` event, which the webhooks send to
billing (type `suspension.audit.checkpoint`): a copy of the head outside the agent's host.

Someone who rewrote the whole chain after a checkpoint (recomputing every hash) cannot sign
a checkpoint for it without the key, and a checkpoint billing holds still names the old
head; someone who removed the newest events cannot hide that from a checkpoint billing got
after them. `audit verify` checks every checkpoint event's signature and that the chain
still holds its head at its event number.

The key (`audit_checkpoint_key:` in the config) is an OpenSSH or PEM Ed25519 private key
file readable by its owner only, made once with `ssh-keygen -t ed25519 -N '' -f FILE`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import ConfigError
from agent.files import read_private


def load_key(path: str) -> Ed25519PrivateKey:
    """Return the Ed25519 private key in `path` (owner-only regular file); ConfigError
    naming the file otherwise."""
    data, why = read_private(path, 16384)
    if data is None:
        raise ConfigError(path, [f"audit checkpoint key: {why}"])
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = loader(data, password=None)
        except (ValueError, TypeError):
            continue
        if isinstance(key, Ed25519PrivateKey):
            return key
    raise ConfigError(path, ["audit checkpoint key is not an unencrypted Ed25519 key"])


def public_text(key: Ed25519PrivateKey) -> str:
    """Return the key's public half in OpenSSH form (what billing keeps to check)."""
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def statement(seq: int, head: str, at: float) -> bytes:
    """Return the signed bytes of a checkpoint: canonical JSON of seq, head and time."""
    return json.dumps({"head": head, "seq": seq, "at": at}, sort_keys=True,
                      separators=(",", ":")).encode()


def sign(key: Ed25519PrivateKey, seq: int, head: str, at: float) -> dict[str, Any]:
    """Return a checkpoint's fields (for its audit event): what it covers and the
    signature over it."""
    return {"covers_seq": seq, "covers_head": head, "signed_at": at,
            "public_key": public_text(key),
            "signature": base64.b64encode(key.sign(statement(seq, head, at))).decode()}


def check(detail: dict[str, Any], public_key: str | None) -> str | None:
    """Return what is wrong with a checkpoint event's detail (None: its signature holds,
    made by `public_key` when one is given)."""
    try:
        pub = serialization.load_ssh_public_key(detail["public_key"].encode())
        pub.verify(base64.b64decode(detail["signature"]),  # type: ignore[union-attr]
                   statement(detail["covers_seq"], detail["covers_head"], detail["signed_at"]))
    except (KeyError, ValueError, TypeError, InvalidSignature):
        return "its signature does not hold"
    if public_key is not None and detail["public_key"].split()[:2] != public_key.split()[:2]:
        return "it was signed by another key than the configured one"
    return None


def verify_all(db: Any, public_key: str | None) -> tuple[int, dict | None, dict | None]:
    """Check every checkpoint event: its signature, and that the chain still holds the
    head it covers. Return how many, the first bad one (seq, problem) and the last one
    (its seq, what it covers, and its signature with the public key)."""
    rows = db.execute("SELECT seq, detail FROM events WHERE event='audit.checkpoint' "
                      "ORDER BY seq").fetchall()
    last = None
    for row in rows:
        detail = json.loads(row["detail"]) if row["detail"] else {}
        problem = check(detail, public_key)
        if problem is None:
            covered = db.execute("SELECT hash FROM events WHERE seq=?",
                                 (detail["covers_seq"],)).fetchone()
            if covered is None or covered["hash"] != detail["covers_head"]:
                problem = (f"the chain no longer holds the head it signed at event "
                           f"{detail['covers_seq']} (rewritten or removed since)")
        if problem is not None:
            return len(rows), {"seq": row["seq"], "problem": problem}, last
        last = {"seq": row["seq"]} | {k: detail[k] for k in (
            "covers_seq", "covers_head", "signed_at", "public_key", "signature")}
    return len(rows), None, last


def due(db: Any, now: float, every: float) -> tuple[int, str] | None:
    """Return (seq, hash) of the chain's head when a checkpoint is due: the head moved past
    the last checkpoint and that one is at least `every` seconds old; None otherwise."""
    head = db.execute("SELECT seq, hash FROM events WHERE hash IS NOT NULL ORDER BY seq DESC "
                      "LIMIT 1").fetchone()
    if head is None:
        return None
    last = db.execute("SELECT seq, detail FROM events WHERE event='audit.checkpoint' "
                      "ORDER BY seq DESC LIMIT 1").fetchone()
    if last is not None:
        signed_at = json.loads(last["detail"] or "{}").get("signed_at", 0)
        if head["seq"] <= last["seq"] or now - signed_at < every:
            return None
    return head["seq"], head["hash"]


def make(engine: Any, force: bool = False) -> dict | None:
    """Sign the chain's head as an `audit.checkpoint` event when one is due (or `force`),
    with the configured key; return its fields (None: no key, or nothing new)."""
    if not engine.config.audit_checkpoint_key:
        return None
    every = 0 if force else engine.config.audit_checkpoint_every
    head = due(engine.journal.db, engine.now(), every)
    if head is None:
        return None
    fields = sign(load_key(engine.config.audit_checkpoint_key), head[0], head[1], engine.now())
    engine.audit("audit.checkpoint", outcome="done", **fields)
    return fields
