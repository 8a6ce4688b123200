"""Archive verification, shared by every panel's backup: an archive counts only when it is
there, lists cleanly to its end, holds what it must and has the checksum recorded for it."""

from __future__ import annotations

from typing import Any

from agent.connector import Connector
from agent.errors import StepError


def verify_archive(conn: Connector, archive: str, must_hold: dict[str, str], tar: str,
                   sha256sum: str, known_sha256: str | None = None) -> dict[str, Any]:
    """Ensure `archive` (a .tar.gz on the server) is complete; return its facts.

    `must_hold` maps what must be in it (shown in errors) to the member path prefix that
    proves it. Raises StepError when the archive is missing or empty, does not list to the
    end, lacks any of them, or no longer has `known_sha256`. The facts are its SHA-256,
    size, number of entries and the warnings the archiver left beside it.
    """
    st = conn.stat(archive)
    if not st.exists or st.size == 0:
        raise StepError(f"backup archive {archive} is missing or empty")
    listing = conn.run([tar, "--list", "--gzip", f"--file={archive}"],
                       timeout=3600).text.splitlines()
    for what, prefix in must_hold.items():
        if not any(line.startswith(prefix) for line in listing):
            raise StepError(f"backup archive {archive} does not hold {what}")
    digest = conn.run([sha256sum, "--", archive], timeout=3600).text.split()[0]
    if known_sha256 and known_sha256 != digest:
        raise StepError(f"backup archive {archive} changed since it was taken")
    warned = conn.read(f"{archive}.warnings")
    warnings = warned.decode("utf-8", "replace").splitlines()[:20] if warned else []
    return {"sha256": digest, "size": st.size, "entries": len(listing), "warnings": warnings}
