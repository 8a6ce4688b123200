"""The account's password hash as the journal keeps it: a digest, never the hash.

A journal entry of panel_lock needs only to tell whether the hash on the server is still
the one from before the case (to unlock exactly the lock it added, and to verify the undo);
a SHA-256 digest answers that, and a stolen state database then holds no password hash
to crack. Entries written before this (`hash`, the hash itself) are still read.
"""

from __future__ import annotations

import hashlib
from typing import Any


def digest(hashed: str) -> str:
    """Return the digest that stands for `hashed` in the journal."""
    return hashlib.sha256(hashed.encode("utf-8", "surrogateescape")).hexdigest()


def kept(hashed: str) -> dict[str, str]:
    """Return what undo data keeps of the hash from before the case."""
    return {"hash_digest": digest(hashed)}


def is_before(hashed: str, undo: dict[str, Any]) -> bool:
    """True when `hashed` is the hash from before the case (either kind of entry)."""
    if "hash_digest" in undo:
        return digest(hashed) == undo["hash_digest"]
    return hashed == undo.get("hash")
