"""Ending the open Pure-FTPd sessions of the FTP logins that ftp_lock has just locked (every
panel's ftp_lock shares it).

Locking a login in Pure-FTPd's user database only refuses new logins: a client that is
already logged in (a sync client uploading for hours) keeps its session. Pure-FTPd runs each
session as its own process, which it lists in its scoreboard; `pure-ftpwho -s` prints one
line per session, `pid|acct|time|state|file|peer|local|port|current|total|%|bandwidth`
(the format `pure-ftpwho -h` prints, src/pure-ftpwho.c in github.com/jedisct1/pure-ftpd;
pure-ftpwho(8): "-s Output only one line per client ... delimited by a | character ... '|'
characters in user names or file names are quoted (\\|)",
https://manpages.ubuntu.com/manpages/jammy/man8/pure-ftpwho.8.html).
What the account field holds, from Pure-FTPd's source (src/ftpd.c, src/pure-ftpwho.c) and
seen on the test hosts: `?` until the client has logged in, then exactly the login it was
authenticated as, whether a PureDB virtual user (`alice_ftp`), a PAM/unix login (`alice`)
or an extauth login (`ftpuser@alice.test`), in full (up to Pure-FTPd's 127 bytes; the
command parser has already turned any control character into `_`, so the name shown is the
name that was checked); `\\` and `|` are escaped with a backslash.

A session is ended only when its account field is exactly one of the locked logins AND its
process still is a `pure-ftpd` running as that login's uid, checked on the server right
before the signal. The uid check keeps every other process safe: the pure-ftpd master and
each session's privilege helper run as root (an account's uid never is 0), a session not yet
logged in runs as root, and a PureDB user that shares its name with another account's unix
login runs as the uid it maps to. SIGTERM makes a session exit at once (ftpd.c
sigterm_client); a pid that is gone by then is simply skipped. Nothing here is undone at
reversal: the FTP client logs in again by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.connector import Connector
from agent.errors import StepError
from agent.steps import programs

# pure-ftpwho returns -1 (exit 255) when it cannot open its scoreboard folder, which the
# first session creates (src/pure-ftpwho.c; it sends its own error text to /dev/null): no
# session was ever opened since the folder was cleared, so there is nothing to end.
NO_SCOREBOARD = 255
FIELDS = 12  # pid|acct|time|state|file|peer|local|port|current|total|%|bandwidth

# Constant script; operands are `PID UID` pairs, never spliced into the text. For each pair:
# only a process still named pure-ftpd whose effective uid (second field of `Uid:`) is the
# login's uid, and never root, gets SIGTERM; a pid that is gone, or now belongs to another
# program or to a process of another uid, is left alone.
KILL_SCRIPT = (
    'while [ "$#" -ge 2 ]; do p=$1; u=$2; shift 2; '
    '[ "$(cat -- "/proc/$p/comm" 2>/dev/null)" = pure-ftpd ] || continue; e=; '
    'while read -r k r f s; do [ "$k" = Uid: ] && e=$f; done 2>/dev/null < "/proc/$p/status"; '
    '[ -n "$e" ] && [ "$e" != 0 ] && [ "$e" = "$u" ] || continue; '
    'kill -TERM "$p" 2>/dev/null; done; exit 0'
)



@dataclass(frozen=True)
class Session:
    """One line of `pure-ftpwho -s`: the session's process and the login it runs for."""

    pid: int
    account: str


def split_fields(line: str) -> list[str]:
    """Return the `|`-separated fields of one `pure-ftpwho -s` line, with its `\\|` and
    `\\\\` escapes undone (a backslash keeps the next character as it is)."""
    fields, current, escaped = [], [], False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def parse_sessions(text: str) -> list[Session]:
    """Return every session `pure-ftpwho -s` printed; raise StepError on any line that is
    not one (a build without ftpwho support prints prose): guessing could end the wrong
    session or miss the right one."""
    sessions = []
    for line in text.split("\n"):
        if not line:
            continue
        fields = split_fields(line)
        if len(fields) < FIELDS or not fields[0].isdigit() or int(fields[0]) <= 1:
            raise StepError(f"pure-ftpwho -s printed a line that is not a session: "
                            f"{line[:120]!r}")
        sessions.append(Session(int(fields[0]), fields[1]))
    return sessions


def targets(sessions: list[Session], logins: dict[str, str]) -> list[tuple[int, str]]:
    """Return (pid, uid) of each session whose account is exactly one of `logins`
    (login -> the uid it runs as); anything else, `?` included, is never a target."""
    return [(s.pid, logins[s.account]) for s in sessions if s.account in logins]


def usable_uid(uid: str) -> bool:
    """Return True for a uid a session of a customer's login can run as (never root)."""
    return uid.isdigit() and int(uid) > 0


@dataclass(frozen=True)
class KillFtpSessions:
    """End the open Pure-FTPd sessions of `logins` ((login, uid) pairs), found when carried
    out: list them with pure-ftpwho, then SIGTERM exactly those session processes."""

    pure_ftpwho: str
    logins: tuple[tuple[str, str], ...]

    def describe(self) -> list[str]:
        names = ", ".join(login for login, _uid in self.logins)
        return [f"kill  open FTP sessions of {names} ({self.pure_ftpwho} -s -H, then "
                "SIGTERM to those pure-ftpd sessions)"]

    def carry_out(self, conn: Connector) -> None:
        listed = conn.run([self.pure_ftpwho, "-s", "-H"], ok_codes=(0, NO_SCOREBOARD))
        if listed.rc == NO_SCOREBOARD:
            return
        text = listed.stdout.decode("utf-8", "surrogateescape")
        wanted = {login: uid for login, uid in self.logins if usable_uid(uid)}
        found = targets(parse_sessions(text), wanted)
        if found:
            # The pid is checked again on the server right before its signal: between the
            # listing and the kill (one round trip) a session may end, and its pid be reused.
            conn.run(["sh", "-c", KILL_SCRIPT, "sh",
                      *(word for pid, uid in found for word in (str(pid), uid))])


def kill_sessions(pure_ftpwho: str, logins: list[tuple[str, str]]) -> list[KillFtpSessions]:
    """Return the action that ends the open sessions of `logins` ((login, uid) pairs), or
    none when no locked login could hold one."""
    usable = tuple((login, uid) for login, uid in logins if usable_uid(uid))
    return [KillFtpSessions(pure_ftpwho, usable)] if usable else []


def require_pure_ftpwho(conn: Connector, path: str, setting: str) -> None:
    """Refuse (at plan time, nothing changed) when root cannot run `path` as pure-ftpwho:
    an FTP lock that left the open sessions uploading would only look done. `setting`
    names the config key, e.g. `linux.pure_ftpwho`."""
    programs.require_program(conn, path, setting=setting, program="Pure-FTPd's pure-ftpwho",
                             what="ftp_lock cannot end the open FTP sessions of the logins "
                                  "it locks")
