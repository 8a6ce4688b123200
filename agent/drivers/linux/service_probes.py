"""Probes that ask a service through its own front door: no customer password is known to
the agent, so a login attempt cannot tell "locked" from "wrong password"; these ask the
running service what it will do for the account instead."""

from __future__ import annotations

import re

from agent.connector import Connector
from agent.errors import VerifyFailed

_ADDRESS = re.compile(r"^[A-Za-z0-9._%+=-]{1,64}@[A-Za-z0-9.-]{1,253}$")
PROBE_CLIENT = "192.0.2.1"  # TEST-NET-1: `exim -bh` only pretends a client came from there


# Dovecot's default auth_username_chars: a login name with any other character is refused
# before any passdb is asked, so such a mailbox can neither log in nor hold a session.
_LOGIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@")


def dovecot_login_name(address: str) -> bool:
    """Return True when Dovecot (default auth_username_chars) accepts `address` as a login."""
    return bool(address) and set(address) <= _LOGIN_CHARS


def plain_address(address: str) -> bool:
    """Return True when `address` can go into an SMTP test dialogue as it is."""
    return bool(_ADDRESS.fullmatch(address))


_LOOKUPS = ('d=$1; shift; for a do "$d" auth lookup -- "$a" >/dev/null 2>&1; rc=$?; '
            'case $rc in 0) ;; 67|68) echo "$a";; *) echo "error $rc $a" >&2; exit 3;; esac; done')


def lookups_command(doveadm: str, addresses: list[str]) -> list[str]:
    """Return the command dovecot_unknown runs (a step may send it ahead: each.held)."""
    return ["sh", "-c", _LOOKUPS, "sh", doveadm, *addresses]


def dovecot_unknown(conn: Connector, doveadm: str, addresses: list[str]) -> list[str]:
    """Return the addresses Dovecot's running auth service does not find (one round trip)."""
    if not addresses:
        return []
    return conn.run(lookups_command(doveadm, addresses)).text.split()


def dovecot_passdbs(conn: Connector, doveconf: str) -> list[dict[str, str]]:
    """Return every passdb of Dovecot's effective configuration (`doveconf passdb`)."""
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in conn.run([doveconf, "passdb"]).text.splitlines():
        text = line.strip()
        if text.startswith("passdb") and text.endswith("{"):
            current = {}
        elif text == "}" and current is not None:
            found.append(current)
            current = None
        elif current is not None and " = " in f"{text} ":
            key, _, value = text.partition("=")
            current[key.strip()] = value.strip()
    return found


# Each link of Debian's pure-ftpd-wrapper auth folder as `OPTION|VALUE` (the option is the
# name of the conf file it points to, the value that file's first line).
_WRAPPER_AUTH = ('for f in "$1"/*; do [ -e "$f" ] || continue; t=$(readlink -f -- "$f") || '
                 'continue; printf "%s|%s\\n" "${t##*/}" "$(head -n 1 -- "$t")"; done')
_WRAPPER_METHODS = {"PureDB": "puredb:", "MySQLConfigFile": "mysql:",
                    "PGSQLConfigFile": "pgsql:", "LDAPConfigFile": "ldap:", "ExtAuth": "extauth:"}


def pureftpd_logins(conn: Connector, auth_dir: str, declared: str) -> list[str]:
    """Return the -l methods Pure-FTPd runs with: `declared` when the config says, else what
    Debian's wrapper makes of `auth_dir` (its systemd unit starts pure-ftpd through it).

    The running process cannot be asked: pure-ftpd overwrites its own argv.
    """
    if declared:
        return [m.strip() for m in declared.split(",") if m.strip()]
    methods = []
    for line in conn.run(["sh", "-c", _WRAPPER_AUTH, "sh", auth_dir]).text.splitlines():
        option, _, value = line.partition("|")
        on = value.strip().lower() == "yes"
        if option == "UnixAuthentication" and on:
            methods.append("unix")
        elif option == "PAMAuthentication" and on:
            methods.append("pam")
        elif option in _WRAPPER_METHODS and value.strip():
            methods.append(_WRAPPER_METHODS[option] + value.strip())
    return methods


def foreign_ftp_logins(methods: list[str], pdb: str) -> list[str]:
    """Return the methods ftp_lock does not control: anything but the PureDB file it edits
    and PAM (which reads /etc/ftpusers); `unix` checks /etc/shadow and never /etc/ftpusers,
    so the account's own FTP login would stay open."""
    return [m for m in methods if m not in ("pam", f"puredb:{pdb}")]


# Options that make an Exim authenticator answer AUTH as a server, by driver (Exim's auth
# drivers set `server` from these in their init; an authenticator with only client_
# options, like the smarthost examples in Debian's template, takes no customer login).
# Drivers not listed are counted as servers: better a false warning than a missed way in.
_SERVER_OPTIONS = {"plaintext": ("server_condition",), "cram_md5": ("server_secret",),
                   "dovecot": ("server_socket",), "spa": ("server_password",)}


def exim_foreign_authenticators(conn: Connector, exim: str) -> list[str]:
    """Return Exim's server authenticators (`exim -bP authenticators`, the live
    configuration) whose driver is not `dovecot`: SMTP AUTH there does not go through the
    passdb that mail_block locks."""
    found: list[str] = []
    blocks: list[dict[str, str]] = []
    for line in conn.run([exim, "-bP", "authenticators"]).text.splitlines():
        text = line.strip()
        if text.endswith(" authenticator:"):
            blocks.append({"": text.removesuffix(" authenticator:")})
        elif blocks and " = " in f"{text} ":
            key, _, value = text.partition("=")
            blocks[-1][key.strip()] = value.strip()
    for block in blocks:
        driver = block.get("driver", "?")
        needs = _SERVER_OPTIONS.get(driver)
        server = needs is None or any(block.get(option) for option in needs)
        if server and driver != "dovecot":
            found.append(f"{block['']} (driver {driver})")
    return found


def hostname_command(exim: str) -> list[str]:
    """Return the command exim_primary_hostname runs (a step may send it ahead)."""
    return [exim, "-bP", "-n", "primary_hostname"]


def exim_primary_hostname(conn: Connector, exim: str) -> str:
    """Return Exim's primary_hostname (its live configuration's value)."""
    name = conn.run(hostname_command(exim)).text.strip()
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", name):
        raise VerifyFailed(f"Exim's primary_hostname {name[:80]!r} is not a host name")
    return name


# The SMTP dialogue goes in as an operand, so that the command needs no input (and can be
# sent ahead with others: each.held).
_RCPT = 'printf "%s" "$1" | "$2" -bh "$3"'


def rcpt_command(exim: str, address: str) -> list[str]:
    """Return the command exim_rcpt runs for `address`; VerifyFailed for an odd address."""
    if not _ADDRESS.fullmatch(address):
        raise VerifyFailed(f"cannot probe odd mail address {address!r}")
    dialogue = (f"EHLO probe.invalid\r\nMAIL FROM:<>\r\nRCPT TO:<{address}>\r\n"
                "QUIT\r\n")
    return ["sh", "-c", _RCPT, "sh", dialogue, exim, PROBE_CLIENT]


def exim_rcpt(conn: Connector, exim: str, address: str) -> int:
    """Return Exim's reply code to `RCPT TO:<address>` from an outside client.

    `exim -bh` runs a real SMTP session through the live configuration and ACLs without
    accepting a message or opening a socket.
    """
    out = conn.run(rcpt_command(exim, address), ok_codes=(0, 1)).text
    finals = [int(line[:3]) for line in out.splitlines()
              if len(line) > 3 and line[:3].isdigit() and line[3] == " "]
    # Replies in order: banner, EHLO, MAIL, RCPT, QUIT.
    if len(finals) < 4:
        raise VerifyFailed(f"Exim's test session did not reach RCPT: {out.strip()[-300:]}")
    return finals[3]
