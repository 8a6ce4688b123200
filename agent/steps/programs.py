"""Whether root can run a program a step depends on: one read-only test that every panel's
steps and checks share (doveadm for mail sessions, pure-ftpwho for FTP sessions, ...)."""

from __future__ import annotations

from agent.connector import Connector
from agent.connector.base import Stat
from agent.errors import StepError


def program_problem(conn: Connector, path: str, found: Stat | None = None) -> str | None:
    """Return why root cannot run `path` on the server (missing, not a program, not
    executable), or None when it can. Read-only; `found` is the path's stat if taken."""
    st = found if found is not None else conn.stat(path)
    if not st.exists:
        return f"{path} does not exist"
    if st.kind == "symbolic link":
        # The connector's stat does not follow links; the shell's tests do.
        rc = conn.run(["sh", "-c", '[ -f "$1" ] && [ -x "$1" ]', "sh", path],
                      ok_codes=(0, 1)).rc
        return None if rc == 0 else f"{path} is a link to no executable file"
    if st.kind != "regular file":
        return f"{path} is a {st.kind}, not a program"
    if not st.mode & 0o111:
        return f"{path} is not executable (mode {st.mode:04o})"
    return None


def require_program(conn: Connector, path: str, *, what: str, program: str,
                    setting: str) -> None:
    """Ensure root can run `path`, else refuse (at plan time, nothing changed) with a
    message saying what the step cannot do without it and which setting names it.

    `what` is the sentence's start ("ftp_lock cannot end the open FTP sessions of ..."),
    `program` what to install ("Pure-FTPd's pure-ftpwho"), `setting` the config key.
    """
    if problem := program_problem(conn, path):
        raise StepError(f"{what}: {problem} on {conn.name}; install {program} there or set "
                        f"{setting} to its path")
