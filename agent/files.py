"""Checks on files that hold secrets (SSH keys, API tokens): a leaf module, so the config
and every driver's settings can use it without importing each other."""

from __future__ import annotations

import os
import stat


def private_file_problem(path: str) -> str | None:
    """Return why a secret file at `path` is unacceptable, or None when it is fine."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if st.st_mode & 0o077:
        return f"{path} is readable by others (mode {st.st_mode & 0o777:o}); chmod 600 it"
    return None


def read_private(path: str, limit: int) -> tuple[bytes | None, str | None]:
    """Return (at most `limit` bytes of) a secret file that is a regular file only its
    owner can read, opened without following a link; or (None, why not)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
            return None, (f"{path} must be a regular file readable by its owner only "
                          "(chmod 600)")
        return f.read(limit), None
