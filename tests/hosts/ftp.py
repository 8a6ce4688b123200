"""FTP on a test host: Pure-FTPd with PureDB virtual users and the accounts' own logins (PAM).

Layout (the agent's ftp_lock step relies on it):
    /etc/pure-ftpd/pureftpd.passwd   pure-pw text format, login:hash:uid:gid::home/./::...
                                     a hash starting with `!` is a disabled user
    /etc/pure-ftpd/pureftpd.pdb      compiled with `pure-pw mkdb`; reread on every login
    /etc/ftpusers                    PAM deny list (pam_listfile sense=deny in pam.d/pure-ftpd)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.hosts import hostfs
from tests.hosts.testhost import TestHost

if TYPE_CHECKING:
    from tests.hosts.provision import FtpUser

PASSWD = "/etc/pure-ftpd/pureftpd.passwd"
PDB = "/etc/pure-ftpd/pureftpd.pdb"
PAM_DENY = "auth\trequired\tpam_listfile.so item=user sense=deny file=/etc/ftpusers onerr=succeed"


def setup(host: TestHost, users: list[FtpUser]) -> None:
    """Ensure the PureDB source and .pdb hold `users` (disabled ones with a `!` hash), and that
    Pure-FTPd's PAM service honours /etc/ftpusers."""
    hashes = hostfs.sha512_crypt(host, [u.password for u in users])
    lines = []
    for user, hashed in zip(users, hashes, strict=True):
        uid, gid = hostfs.user_ids(host, user.account)
        lock = "" if user.enabled else "!"
        # The same 18 fields `pure-pw useradd -d` writes; `/./` chroots the user to its home.
        lines.append(f"{user.login}:{lock}{hashed}:{uid}:{gid}::{user.home}/./::::::::::::\n")
    hostfs.write(host, PASSWD, "".join(lines), mode=0o600)
    host.run(["pure-pw", "mkdb", PDB, "-f", PASSWD])
    pam = host.path("/etc/pam.d/pure-ftpd").read_text()
    if PAM_DENY not in pam.splitlines():
        raise RuntimeError("the image's /etc/pam.d/pure-ftpd no longer denies /etc/ftpusers")


def start(host: TestHost) -> None:
    """Start Pure-FTPd chrooted in the host (virtual users, then PAM); return when it answers."""
    host.daemon(["/usr/sbin/pure-ftpd", "--daemonize", "--login", f"puredb:{PDB}",
                 "--login", "pam", "--noanonymous", "--chrooteveryone", "--createhomedir",
                 "--minuid", "1000", "--dontresolve", "--passiveportrange", "30000:30099",
                 "--altlog", "clf:/var/log/pure-ftpd/transfer.log"])
    host.wait(lambda: host.port_open(21), "Pure-FTPd")
