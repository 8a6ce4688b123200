"""Real login attempts against a test host, made from outside the account as a customer would.

Each helper returns "ok" on success, or a short text naming the kind of failure followed by
the server's own words ("auth failed: ...", "refused: 550 ..."), and never raises for a
refusal, so a test can assert both that a login works and how it fails.
Network clients connect to the host's own address only; the rest run inside the host.
"""

from __future__ import annotations

import base64
import ftplib
import imaplib
import poplib
import smtplib
import subprocess
from email.message import EmailMessage
from pathlib import Path

import paramiko

from tests.hosts.testhost import TestHost

TIMEOUT = 10.0


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return str(value)


# -- mail -------------------------------------------------------------------------------
def imap_login(host: TestHost, user: str, password: str) -> str:
    """Log in over IMAP (port 143, plaintext); return "ok" or "auth failed: <server text>"."""
    try:
        with imaplib.IMAP4(host.address, 143, timeout=TIMEOUT) as imap:
            imap.login(user, password)
            imap.logout()
            return "ok"
    except imaplib.IMAP4.error as exc:
        return f"auth failed: {_text(exc.args[0] if exc.args else exc)}"


def imap_read_messages(host: TestHost, user: str, password: str) -> list[str]:
    """Return every message in the mailbox's INBOX as raw text, headers and body (read-only:
    nothing is flagged seen), so `subject in text` finds a message."""
    with imaplib.IMAP4(host.address, 143, timeout=TIMEOUT) as imap:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        _typ, data = imap.search(None, "ALL")
        messages = []
        for num in data[0].split():
            _typ, parts = imap.fetch(num, "(BODY.PEEK[])")
            messages.append(_text(parts[0][1]))
        imap.logout()
        return messages


def pop_login(host: TestHost, user: str, password: str) -> str:
    """Log in over POP3 (port 110); return "ok" or "auth failed: <server text>"."""
    pop = poplib.POP3(host.address, 110, timeout=TIMEOUT)
    try:
        pop.user(user)
        pop.pass_(password)
        return "ok"
    except poplib.error_proto as exc:
        return f"auth failed: {_text(exc.args[0] if exc.args else exc)}"
    finally:
        pop.quit()


def smtp_auth(host: TestHost, user: str, password: str, port: int = 587) -> str:
    """Authenticate over SMTP (no message); return "ok" or "auth failed: <code> <text>"."""
    with smtplib.SMTP(host.address, port, timeout=TIMEOUT) as smtp:
        try:
            smtp.login(user, password)
            return "ok"
        except smtplib.SMTPAuthenticationError as exc:
            return f"auth failed: {exc.smtp_code} {_text(exc.smtp_error)}"


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    return msg


def _send(smtp: smtplib.SMTP, msg: EmailMessage) -> str:
    try:
        refused = smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        return f"refused: {code} {_text(text)}"
    except smtplib.SMTPResponseException as exc:
        return f"refused: {exc.smtp_code} {_text(exc.smtp_error)}"
    if refused:
        code, text = next(iter(refused.values()))
        return f"refused: {code} {_text(text)}"
    return "ok"


def smtp_submit(host: TestHost, user: str, password: str, to: str,
                subject: str = "submitted", body: str = "hello\n", port: int = 587) -> str:
    """Authenticate as `user` and send one message to `to`; return "ok", "auth failed: ..."
    or "refused: <code> <text>" (the reply to RCPT or DATA)."""
    with smtplib.SMTP(host.address, port, timeout=TIMEOUT) as smtp:
        try:
            smtp.login(user, password)
        except smtplib.SMTPAuthenticationError as exc:
            return f"auth failed: {exc.smtp_code} {_text(exc.smtp_error)}"
        return _send(smtp, _message(user, to, subject, body))


def smtp_deliver(host: TestHost, to: str, subject: str, body: str = "hello\n",
                 port: int = 25, sender: str = "someone@outside.test") -> str:
    """Deliver one message to `to` without authenticating, as another mail server would;
    return "ok" or "refused: <code> <text>"."""
    with smtplib.SMTP(host.address, port, timeout=TIMEOUT) as smtp:
        return _send(smtp, _message(sender, to, subject, body))


def local_sendmail(host: TestHost, account: str, to: str, subject: str,
                   body: str = "hello\n") -> tuple[int, str]:
    """Run `/usr/sbin/sendmail -t -i` as the account's unix user inside the host, as PHP's
    mail() does; return (exit code, output): (0, "") when accepted, else non-zero and Exim's
    reason ("... sending mail is suspended for account alice").

    `-oep` puts a refusal on stderr; PHP's plain `-t -i` gets the same exit code 1 and the
    reason as a bounce in /var/mail/<account> instead. runuser needs no login shell, so this
    still works once the account's shell is nologin.
    """
    msg = f"To: {to}\nSubject: {subject}\n\n{body}".encode()
    proc = host.run(["runuser", "-u", account, "--", "/usr/sbin/sendmail", "-t", "-i", "-oep"],
                    input=msg, check=False)
    return proc.returncode, _text(proc.stdout + proc.stderr).strip()


def outside_mail(host: TestHost, local_part: str) -> str:
    """Return everything delivered so far to <local_part>@outside.test ("" when nothing)."""
    path = host.path(f"/var/spool/outside/{local_part}")
    return path.read_text(errors="replace") if path.exists() else ""


# -- FTP, databases, SSH --------------------------------------------------------------------
def ftp_login(host: TestHost, user: str, password: str) -> str:
    """Log in over FTP (port 21); return "ok" or "auth failed: <server text>".

    Pure-FTPd (and PAM) pause some seconds before answering a failed login.
    """
    with ftplib.FTP(timeout=30) as ftp:
        ftp.connect(host.address, 21)
        try:
            ftp.login(user, password)
            return "ok"
        except ftplib.error_perm as exc:
            return f"auth failed: {_text(exc.args[0] if exc.args else exc)}"


def mysql_login(host: TestHost, user: str, password: str) -> str:
    """Connect with the mysql client inside the host over TCP 127.0.0.1 and run `SELECT 1`,
    as the customer's PHP would; return "ok" or the client's error text ("ERROR 4151 ...").

    The password reaches the client through MYSQL_PWD in its environment, never argv.
    """
    proc = subprocess.run(
        ["ip", "netns", "exec", host.netns, "chroot", str(host.root), "mysql", "--no-defaults",
         "--protocol=TCP", "-h", "127.0.0.1", "-u", user, "-N", "-e", "SELECT 1"],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MYSQL_PWD": password},
        capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode == 0 and proc.stdout.strip() == "1":
        return "ok"
    return (proc.stderr or proc.stdout).strip()


def _connected(host: TestHost, user: str, **credentials: object) -> paramiko.SSHClient:
    """Return an SSH client logged in to `host` as `user` (paramiko's errors pass through)."""
    client = paramiko.SSHClient()
    # Trust exactly the host's own key, read from its tree: no unknown key is ever accepted.
    key_type, key_b64 = host.path("/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    host_key = paramiko.Ed25519Key(data=base64.b64decode(key_b64))
    client.get_host_keys().add(host.address, key_type, host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(host.address, 22, username=user, timeout=TIMEOUT, banner_timeout=TIMEOUT,
                       auth_timeout=TIMEOUT, allow_agent=False, look_for_keys=False,
                       **credentials)
    except BaseException:
        client.close()
        raise
    return client


def _ssh(host: TestHost, user: str, **credentials: object) -> str:
    client = None
    try:
        client = _connected(host, user, **credentials)
        _stdin, stdout, stderr = client.exec_command("true", timeout=TIMEOUT)
        status = stdout.channel.recv_exit_status()
        if status != 0:
            return f"command failed ({status}): {_text(stdout.read() + stderr.read()).strip()}"
        return "ok"
    except paramiko.AuthenticationException as exc:
        return f"auth failed: {exc}"
    except paramiko.SSHException as exc:
        return f"ssh error: {exc}"
    finally:
        if client is not None:
            client.close()


def ssh_password_login(host: TestHost, user: str, password: str) -> str:
    """Log in over SSH with a password and run `true`; return "ok", "auth failed: ..." or
    "command failed (<status>): <output>" (e.g. a nologin shell)."""
    return _ssh(host, user, password=password)


def ssh_key_forward(host: TestHost, user: str, key_path: Path) -> str:
    """Log in over SSH with the key at `key_path` and open a forwarded TCP channel to the
    host's own port 22 (`ssh -N -L`'s way in, which no shell stops); return "forwarded",
    "auth failed: ..." or "refused: ..."."""
    client = None
    try:
        client = _connected(host, user, key_filename=str(key_path))
        channel = client.get_transport().open_channel(
            "direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 40000), timeout=TIMEOUT)
        channel.close()
        return "forwarded"
    except paramiko.AuthenticationException as exc:
        return f"auth failed: {exc}"
    except (paramiko.SSHException, OSError) as exc:
        return f"refused: {exc}"
    finally:
        if client is not None:
            client.close()


def ssh_key_login(host: TestHost, user: str, key_path: Path) -> str:
    """Log in over SSH with the private key at `key_path` and run `true`; results as
    ssh_password_login."""
    return _ssh(host, user, key_filename=str(key_path))
