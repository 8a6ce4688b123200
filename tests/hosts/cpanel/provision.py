"""Lay a running TestHost out as a cPanel server (tests/hosts/cpanel/layout.py's accounts).

provision_cpanel(host) writes the files cPanel keeps (panels.md A5-A13), makes the real
Debian services read them (Dovecot, Exim, Pure-FTPd via pure-authd, MariaDB, Apache via
rebuildhttpdconf), installs the simulator's commands and starts the WHM API on 2087.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from tests.hosts import hostfs
from tests.hosts.cpanel import layout, services
from tests.hosts.cpanel.layout import ACCOUNTS, DATABASES, FTP_ACCOUNTS, MAILBOXES
from tests.hosts.testhost import TestHost


class CpanelHost(NamedTuple):
    """What a test needs beyond the TestHost: the root WHM token and the WHM daemon."""

    root_token: str
    whm_process: object


def provision_cpanel(host: TestHost) -> CpanelHost:
    """Ensure `host` (already `up()`) is a cPanel-laid-out server with every service
    running; return the root token for https://ADDRESS:2087/json-api/."""
    services.install_sim(host)
    for acct in ACCOUNTS:
        host.run(["useradd", "--create-home", "--shell", "/bin/bash", acct.user])
        host.run(["chmod", "711", f"/home/{acct.user}"])
    host.run(["chpasswd"], input="".join(f"{a.user}:{a.password}\n" for a in ACCOUNTS).encode())
    _panel_files(host)
    _sites(host)
    _ftp(host)
    for acct in ACCOUNTS:
        host.run(["chown", "-R", f"{acct.user}:{acct.user}", f"/home/{acct.user}"])
    # After the chown: the mailbox shadows belong to group dovecot.
    _mail(host)
    _databases(host)
    _apache(host)
    _ssh(host)
    services.start_mail(host)
    services.start_ftp(host)
    proc = services.start_whm(host)
    return CpanelHost(services.create_token(host, "root", "tests-root"), proc)


def _panel_files(host: TestHost) -> None:
    now = int(time.time())
    userdomains, owners = [], []
    for acct in ACCOUNTS:
        account_files(host, acct, now)
        userdomains += [f"{d}: {acct.user}\n" for d in layout.domains(acct)]
        owners.append(f"{acct.user}: {acct.owner}\n")
    hostfs.write(host, "/etc/userdomains", "".join(userdomains) + "*: nobody\n")
    hostfs.write(host, "/etc/localdomains",
                 "".join(line.split(":")[0] + "\n" for line in userdomains))
    hostfs.write(host, "/etc/trueuserowners", "".join(owners))
    hostfs.write(host, "/var/cpanel/resellers",
                 "".join(reseller_line(a) for a in ACCOUNTS if a.reseller))
    for folder in ("suspended", "suspendinfo", "bwlimited", "pkgacct_sessions"):
        hostfs.make_dirs(host, f"/var/cpanel/{folder}", 0o755, (0, 0))
    for name in ("outgoing_mail_suspended_users", "outgoing_mail_hold_users"):
        hostfs.write(host, f"/etc/{name}", "")
    # Delivery to suspended accounts: "deliver normally" (A7; cPanel's upgraded default).
    hostfs.write(host, "/etc/exim_suspended_list", "*: :unknown:\n")


def reseller_line(acct: layout.Account) -> str:
    """Return the /var/cpanel/resellers line of reseller `acct` (`name:acl,acl`)."""
    return f"{acct.user}:list-accts,acct-summary,suspend-acct\n"


def account_files(host: TestHost, acct: layout.Account, now: int) -> None:
    """Write the account's own panel files: its cpuser file (A7 step 9, A8) and its
    userdata (main and one file per vhost, std and SSL; A12)."""
    extra = [*acct.addons, *acct.parked]
    lines = [f"USER={acct.user}", f"OWNER={acct.owner}", f"DNS={acct.main}",
             *(f"DNS{i}={d}" for i, d in enumerate(extra, 1)),
             f"IP={host.address}", "PLAN=default", "RS=jupiter", f"STARTDATE={now}",
             f"CONTACTEMAIL=owner@{acct.main}", "MAXPOP=unlimited", "MAXSQL=unlimited",
             "MAXFTP=unlimited", "SUSPENDED=0"]
    hostfs.write(host, f"/var/cpanel/users/{acct.user}", "\n".join(lines) + "\n")
    main = {"main_domain": acct.main,
            "addon_domains": {a: s for a, (s, _d) in acct.addons.items()},
            "parked_domains": acct.parked,
            "sub_domains": [s for s, _d in acct.addons.values()] + list(acct.subs)}
    hostfs.write(host, f"/var/cpanel/userdata/{acct.user}/main", _yaml(main))
    for name, (docroot, aliases) in layout.vhosts(acct).items():
        data = {"servername": name, "serveralias": " ".join(aliases),
                "documentroot": f"/home/{acct.user}/{docroot}",
                "homedir": f"/home/{acct.user}", "user": acct.user, "group": acct.user,
                "owner": acct.owner, "ip": host.address, "usecanonicalname": "Off"}
        for suffix in ("", "_SSL"):
            hostfs.write(host, f"/var/cpanel/userdata/{acct.user}/{name}{suffix}",
                         _yaml(data))


def _yaml(data: dict) -> str:
    out = ["---\n"]
    for key, value in data.items():
        if isinstance(value, dict):
            out.append(f"{key}:\n" + "".join(f"  {k}: {v}\n" for k, v in value.items())
                       if value else f"{key}: {{}}\n")
        elif isinstance(value, list):
            out.append(f"{key}:\n" + "".join(f"  - {v}\n" for v in value)
                       if value else f"{key}: []\n")
        else:
            out.append(f"{key}: {value}\n")
    return "".join(out)


def _sites(host: TestHost) -> None:
    for acct in ACCOUNTS:
        site_files(host, acct)
    page = ("<html><head><title>Account Suspended</title></head><body>"
            "<h1>Account Suspended</h1><p>This account has been suspended.</p></body></html>\n")
    hostfs.write(host, "/usr/local/cpanel/cgi-sys/suspendedpage.html", page)


def site_files(host: TestHost, acct: layout.Account) -> None:
    """Write each vhost's page and ACME token of `acct`, and its usual home folders."""
    for name, (docroot, _aliases) in layout.vhosts(acct).items():
        base = host.path(f"/home/{acct.user}/{docroot}")
        base.mkdir(parents=True, exist_ok=True)
        (base / "index.html").write_text(layout.site_page(acct.user, name))
        acme = base / ".well-known/acme-challenge"
        acme.mkdir(parents=True, exist_ok=True)
        (acme / "token-abc").write_text(f"acme-token-for-{name}\n")
    for folder in ("public_ftp", "mail", "tmp"):
        host.path(f"/home/{acct.user}/{folder}").mkdir(exist_ok=True)


def errordocuments() -> str:
    """The errordocument.conf EA4 installs (SOURCES/generate-errordoc-conf: codes 400-417,
    422-424, 500-507 and 510, each `ErrorDocument N /N.shtml`, server-wide)."""
    codes = [*range(400, 418), *range(422, 425), *range(500, 508), 510]
    return "".join(f"# {c}\nErrorDocument {c} /{c}.shtml\n\n" for c in codes)


def _mail(host: TestHost) -> None:
    hashes = dict(zip([m.email for m in MAILBOXES],
                      hostfs.sha512_crypt(host, [m.password for m in MAILBOXES]), strict=True))
    dovecot_gid = hostfs.group_id(host, "dovecot")
    days = int(time.time() // 86400)
    for acct in ACCOUNTS:
        uid, gid = hostfs.user_ids(host, acct.user)
        hostfs.make_dirs(host, f"/home/{acct.user}/etc", 0o751, (uid, gid))
        for domain in layout.domains(acct):
            boxes = [m for m in MAILBOXES if m.email.endswith("@" + domain)]
            passwd, shadow = [], []
            for box in boxes:
                local = box.email.split("@")[0]
                maildir = f"/home/{acct.user}/mail/{domain}/{local}"
                passwd.append(f"{local}:x:{uid}:{gid}::{maildir}:/home/{acct.user}\n")
                shadow.append(f"{local}:{hashes[box.email]}:{days}::::::\n")
                for sub in ("cur", "new", "tmp"):
                    hostfs.make_dirs(host, f"{maildir}/{sub}", 0o700, (uid, gid))
            folder = f"/home/{acct.user}/etc/{domain}"
            hostfs.make_dirs(host, folder, 0o751, (uid, gid))
            hostfs.write(host, f"{folder}/passwd", "".join(passwd), owner=(uid, gid))
            hostfs.write(host, f"{folder}/shadow", "".join(shadow), mode=0o640,
                         owner=(uid, dovecot_gid))
            link = host.path(f"/etc/dovecot/cpdomains/{domain}")
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                link.unlink()
            os.symlink(folder, link)


def _databases(host: TestHost) -> None:
    sql = []
    for database in DATABASES:
        sql.append(f"CREATE DATABASE {database.name};\n"
                   f"CREATE TABLE {database.name}.items (id INT PRIMARY KEY, name TEXT);\n"
                   f"INSERT INTO {database.name}.items VALUES (1, 'first'), (2, 'second');\n"
                   f"CREATE USER '{database.db_user}'@'localhost' IDENTIFIED BY "
                   f"'{database.password}';\n"
                   f"GRANT ALL PRIVILEGES ON {database.name}.* TO "
                   f"'{database.db_user}'@'localhost';\n")
    # cPanel also gives each account a MariaDB login of its own name with its password.
    for acct in ACCOUNTS:
        sql.append(f"CREATE USER '{acct.user}'@'localhost' IDENTIFIED BY '{acct.password}';\n")
        for database in DATABASES:
            if database.user == acct.user:
                sql.append(f"GRANT ALL PRIVILEGES ON {database.name}.* TO "
                           f"'{acct.user}'@'localhost';\n")
    host.run(["mysql"], input="".join(sql).encode())


SSH_DENY = "DenyGroups cpaneldemo cpanelsuspended\n"


def _ssh(host: TestHost) -> None:
    """sshd as cPanel's install leaves it (review F9; [SRC] asmrdevelop/cpanel @393631a2
    install/SSHD.pm:96-150): groups cpaneldemo and cpanelsuspended, both in DenyGroups.
    cPanel edits sshd_config itself; here a drop-in read before the others, then a reload."""
    for group in ("cpaneldemo", "cpanelsuspended"):
        host.run(["groupadd", "--force", "--system", group])
    hostfs.write(host, "/etc/ssh/sshd_config.d/00-cpanel.conf", SSH_DENY, mode=0o644)
    from agent.drivers.linux.panel_lock import _HUP_SSHD

    host.run(["sh", "-c", _HUP_SSHD, "sh", "/run/sshd.pid"])


def _ftp(host: TestHost) -> None:
    hashes = dict(zip([f.login for f in FTP_ACCOUNTS],
                      hostfs.sha512_crypt(host, [f.password for f in FTP_ACCOUNTS]), strict=True))
    hostfs.make_dirs(host, "/etc/proftpd", 0o755, (0, 0))
    for acct in ACCOUNTS:
        uid, gid = hostfs.user_ids(host, acct.user)
        system = next(line.split(":")[1] for line in
                      host.path("/etc/shadow").read_text().splitlines()
                      if line.startswith(acct.user + ":"))
        lines = [f"{acct.user}:{system}:{uid}:{gid}::/home/{acct.user}:/bin/ftpsh\n"]
        for sub in (f for f in FTP_ACCOUNTS if f.user == acct.user):
            lines.append(f"{sub.login}:{hashes[sub.login]}:{uid}:{gid}:{acct.user}:{sub.homedir}"
                         ":/bin/ftpsh\n")
            host.path(sub.homedir).mkdir(parents=True, exist_ok=True)
        hostfs.write(host, f"/etc/proftpd/{acct.user}", "".join(lines), mode=0o640)
    for acct in ACCOUNTS:
        logs(host, acct.user)
    # As a real server has them: in the form ftpupdate writes (main line from the system
    # entry, sub-accounts name@domain, the _logs login; review F1).
    host.run([f"{services.SCRIPTS}/ftpupdate"])


def logs(host: TestHost, user: str) -> None:
    """Make the account's folder of raw access logs: the home of its USER_logs FTP login."""
    hostfs.make_dirs(host, "/var/log/apache2/domlogs", 0o755, (0, 0))
    hostfs.make_dirs(host, f"/var/log/apache2/domlogs/{user}", 0o750,
                     hostfs.user_ids(host, user))


def _apache(host: TestHost) -> None:
    # Debian's apache2.conf includes sites-enabled/*.conf; the compiled httpd.conf hangs there.
    hostfs.write(host, "/etc/apache2/sites-enabled/cpanel.conf",
                 "Include /etc/apache2/conf/httpd.conf\n")
    for kind in ("std", "ssl"):
        hostfs.make_dirs(host, f"/etc/apache2/conf.d/userdata/{kind}/2_4", 0o755, (0, 0))
    hostfs.write(host, "/etc/apache2/conf.d/includes/account_suspensions.conf", "")
    hostfs.write(host, "/etc/apache2/conf.d/includes/errordocument.conf", errordocuments())
    # Service subdomains (webmail.DOMAIN proxied to cpsrvd: sim/web.py), on as installs
    # have them (Cpanel/Config/CpConfGuard/Default.pm:229), with mod_proxy for them.
    host.run(["a2enmod", "-q", "proxy", "proxy_http"])
    hostfs.write(host, "/var/cpanel/cpanel.config", "proxysubdomains=1\n")
    host.run([f"{services.SCRIPTS}/rebuildhttpdconf"])
    host.run([f"{services.SCRIPTS}/restartsrv_httpd"])
