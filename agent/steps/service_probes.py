"""Probes that ask a service through its own front door: no customer password is known to
the agent, so a login attempt cannot tell "locked" from "wrong password"; these ask the
running service what it will do for the account instead."""

from __future__ import annotations

import re

from agent.connector import Connector
from agent.errors import VerifyFailed

_ADDRESS = re.compile(r"^[A-Za-z0-9._%+=-]{1,64}@[A-Za-z0-9.-]{1,253}$")
_PASSWORD_LINE = re.compile(r"^\s*password\s*:\s*(.*?)\s*$", re.MULTILINE)
PROBE_CLIENT = "192.0.2.1"  # TEST-NET-1: `exim -bh` only pretends a client came from there


def dovecot_password(conn: Connector, doveadm: str, address: str) -> str | None:
    """Return the password field Dovecot's running auth service answers for `address`.

    Asked through `doveadm auth lookup`, i.e. the same auth process IMAP, POP3 and Exim's
    SMTP AUTH use, so a lock written where Dovecot does not look shows up here.
    """
    result = conn.run([doveadm, "auth", "lookup", address], ok_codes=(0, 67, 68))
    found = _PASSWORD_LINE.search(result.text)
    return found.group(1) if result.rc == 0 and found else None


def exim_rcpt(conn: Connector, exim: str, address: str) -> int:
    """Return Exim's reply code to `RCPT TO:<address>` from an outside client.

    `exim -bh` runs a real SMTP session through the live configuration and ACLs without
    accepting a message or opening a socket.
    """
    if not _ADDRESS.match(address):
        raise VerifyFailed(f"cannot probe odd mail address {address!r}")
    dialogue = (f"EHLO probe.invalid\r\nMAIL FROM:<>\r\nRCPT TO:<{address}>\r\n"
                "QUIT\r\n").encode()
    out = conn.run([exim, "-bh", PROBE_CLIENT], stdin=dialogue, ok_codes=(0, 1)).text
    finals = [int(line[:3]) for line in out.splitlines()
              if len(line) > 3 and line[:3].isdigit() and line[3] == " "]
    # Replies in order: banner, EHLO, MAIL, RCPT, QUIT.
    if len(finals) < 4:
        raise VerifyFailed(f"Exim's test session did not reach RCPT: {out.strip()[-300:]}")
    return finals[3]
