"""Apache as EasyApache 4 lays it out (panels.md A7 step 11, A12), on Debian's real Apache.

/var/cpanel/userdata/USER/main            main_domain, addon_domains, parked_domains, sub_domains
/var/cpanel/userdata/USER/DOMAIN[_SSL]    one vhost each: servername, serveralias, documentroot
/etc/apache2/conf/httpd.conf              what rebuildhttpdconf compiles (Debian includes it
                                          from sites-enabled/cpanel.conf)
/etc/apache2/conf.d/userdata/{std,ssl}/{2_4,2}/USER[/DOMAIN]/*.conf   the EA4 include
                                          folders (one base for the whole server, F7)
/etc/apache2/conf.d/includes/account_suspensions.conf             suspended homes (A7.11)
/etc/apache2/conf.d/includes/errordocument.conf                   ErrorDocument N /N.shtml
"""

from __future__ import annotations

import functools
import glob
import os

from . import store, yamlish

HTTPD_CONF = "/etc/apache2/conf/httpd.conf"
INCLUDES = "/etc/apache2/conf.d/userdata"
SUSPENSIONS = "/etc/apache2/conf.d/includes/account_suspensions.conf"
ERRORDOCUMENTS = "/etc/apache2/conf.d/includes/errordocument.conf"
SUSPENDED_PAGE_DIR = "/usr/local/cpanel/cgi-sys"
CERT = "/etc/ssl/certs/testhost.pem"
KEY = "/etc/ssl/private/testhost.key"


def userdata(user: str, name: str) -> dict:
    """Return /var/cpanel/userdata/USER/NAME as a dict ({} when absent)."""
    return yamlish.load(store.read(f"{store.USERDATA_DIR}/{user}/{name}"))


def vhost_names(user: str) -> list[str]:
    """Return the servernames of the user's vhosts: the main domain, then every subdomain
    (addon domains are subdomains with the addon as ServerAlias, as cPanel stores them)."""
    main = userdata(user, "main")
    if not main.get("main_domain"):
        return []
    return [main["main_domain"], *sorted(main.get("sub_domains") or [])]


def wildcard_safe(name: str) -> str:
    """cPanel's encoding of a wildcard name for file paths and ServerName: `*.x` as
    `_wildcard_.x` ([SRC] asmrdevelop/cpanel @393631a2 Cpanel/WildcardDomain.pm:34-47)."""
    return "_wildcard_" + name[1:] if name.startswith("*.") else name


def _legacy_wildcard_safe(name: str) -> str:
    # The include folder of a wildcard domain: `wildcard_safe.x` (WildcardDomain.pm:50-55).
    return "wildcard_safe" + name[1:] if name.startswith("*.") else name


def include_base(kind: str) -> str | None:
    """Return the one include base every vhost of the server uses: the first existing of
    `<kind>/2_4/` and `<kind>/2/` ([SRC] CpanelInc/ea-apache2-config @6f26dd7
    SOURCES/vhost.default:179-195, the FOREACH vhost_include_dir loop; review F7). It tests
    the shared folders only, never a user's: once `std/2_4/` exists, every `std/2/`
    include of every account is left out at the next rebuild."""
    if not os.path.isdir(f"{INCLUDES}/{kind}"):
        return None
    for version in ("2_4", "2"):
        if os.path.isdir(f"{INCLUDES}/{kind}/{version}"):
            return f"{INCLUDES}/{kind}/{version}/"
    return None


def _includes(kind: str, user: str, names: list[str]) -> list[str]:
    # vhost.default:196-223: the base's own *.conf, the user's folder and one folder per
    # ServerName and ServerAlias, each only when it held a .conf at rebuild time (the
    # reason A12 says includes take effect only after rebuildhttpdconf).
    base = include_base(kind)
    if base is None:
        return []
    folders = [base.rstrip("/"), f"{base}{user}"]
    folders += [f"{base}{user}/{_legacy_wildcard_safe(n)}" for n in dict.fromkeys(names)]
    return [f'    Include "{folder}/*.conf"\n' for folder in folders
            if glob.glob(f"{folder}/*.conf")]


# [SRC] CpanelInc/ea-apache2-config @6f26dd7 SOURCES/vhost.default:4-18 (review F3): a
# domain with "Force HTTPS Redirect" (userdata `ssl_redirect`, the key ea-nginx reads too,
# CpanelInc/ea-nginx cpanel-scripts-ea-nginx:2286) starts its HTTP vhost with this, before
# any include; the DCV patterns are cPanel's `dcv_rewrite_patterns` as the package's test
# renders them (t/SOURCES-ssl_vhost_proxysub.t:73-75).
_REDIRECT = (
    "    <IfModule rewrite_module>\n"
    "        RewriteEngine On\n"
    "        RewriteCond %{REQUEST_URI} ^/\\.well-known/pki-validation/(?:\\ Ballot169)? [OR]\n"
    "        RewriteCond %{REQUEST_URI} ^/\\.well-known/cpanel-dcv/[0-9a-zA-Z_-]+$ [OR]\n"
    "        RewriteCond %{REQUEST_URI} "
    "^/\\.well-known/pki-validation/[A-F0-9]{32}\\.txt(?:\\ Sectigo\\ DCV)?$\n"
    "        RewriteRule ^ - [END]\n"
    "        RewriteCond %{HTTP:X-Forwarded-Proto} !https\n"
    "        RewriteCond %{HTTPS} !=on\n"
    "        RewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [L,R=301]\n"
    "    </IfModule>\n")


@functools.lru_cache(maxsize=1)
def apache_ports() -> tuple[str, str]:
    """Return Apache's HTTP and HTTPS ports: cpanel.config's apache_port and
    apache_ssl_port (`0.0.0.0:81` once ea-nginx moved Apache behind it: [NG] CpanelInc/ea-nginx
    cpanel-scripts-ea-nginx:1292-1311), else 80 and 443."""
    found = dict(line.split("=", 1) for line in
                 store.read("/var/cpanel/cpanel.config").splitlines() if "=" in line)
    return tuple(found.get(key, default).strip().rsplit(":", 1)[-1]  # type: ignore[return-value]
                 for key, default in (("apache_port", "80"), ("apache_ssl_port", "443")))


def _vhost(user: str, domain: str, ssl: bool) -> str:
    name = wildcard_safe(domain)
    data = userdata(user, f"{name}_SSL" if ssl else name) or userdata(user, name)
    aliases = data.get("serveralias") or ""
    servername = str(data.get("servername", domain))
    body = [
        f"<VirtualHost *:{apache_ports()[1 if ssl else 0]}>\n",
        f"    ServerName {wildcard_safe(servername)}\n",
        _REDIRECT if not ssl and str(data.get("ssl_redirect", "")) == "1" else "",
        f"    ServerAlias {aliases}\n" if aliases else "",
        f"    DocumentRoot {data.get('documentroot')}\n",
        f"    ServerAdmin webmaster@{name}\n",
        "    UseCanonicalName Off\n",
        f"    <IfModule mpm_itk.c>\n        AssignUserID {user} {user}\n    </IfModule>\n",
    ]
    proxied = ssl and proxy_subdomains() and not servername.startswith("*.")
    if proxied:  # Config.pm:215-233: the service names join the SSL vhost's aliases
        body.insert(3, f"    ServerAlias webmail.{servername}\n")
    if ssl:
        body.append(f"    SSLEngine on\n    SSLCertificateFile {CERT}\n"
                    f"    SSLCertificateKeyFile {KEY}\n")
    # EA4: the userdata includes are the LAST directives of the vhost (A12), but for the
    # service subdomains' rules after them (ssl_vhost.default:179-233, then 252-284).
    body += _includes("ssl" if ssl else "std", user, [*aliases.split(), servername])
    if proxied:
        body.append(_PROXY.format(cond=f"    RewriteCond %{{HTTP_HOST}} =webmail.{servername}"
                                  f" [OR]\n    RewriteCond %{{HTTP_HOST}} "
                                  f"=webmail.{servername}:443\n"))
    body.append("</VirtualHost>\n\n")
    return "".join(body)


# [SRC] CpanelInc/ea-apache2-config @6f26dd7 SOURCES/ea4_main.default:585-727 (port 80, a
# vhost of its own) and ssl_vhost.default:252-284 (443, in each SSL vhost); the rule and
# ProxyPass text of asmrdevelop/cpanel @393631a2 Cpanel/WebVhosts/AutoDomains.pm:106-122:
# webmail.* is proxied to cpsrvd's plain HTTP port over loopback (TLS ends in Apache).
_PROXY = ("    RewriteEngine On\n{cond}"
          "    RewriteCond %{{HTTP:Upgrade}} !websocket [nocase]\n"
          "    RewriteRule ^/(.*) /___proxy_subdomain_webmail/$1 [PT]\n"
          '    ProxyPass "/___proxy_subdomain_webmail" "http://127.0.0.1:2095" max=1 retry=0\n')


def proxy_subdomains() -> bool:
    """True when cpanel.config has proxysubdomains=1 (a missing key is off, Config.pm:1499)
    and Apache has mod_proxy_http (the template's supported.mod_proxy)."""
    found = dict(line.split("=", 1) for line in
                 store.read("/var/cpanel/cpanel.config").splitlines() if "=" in line)
    return (found.get("proxysubdomains", "0").strip() == "1"
            and os.path.exists("/etc/apache2/mods-enabled/proxy_http.load"))


def _proxy_vhost() -> str:
    # ea4_main.default:585-727, port 80: after every user vhost, no includes.
    return (f"<VirtualHost *:{apache_ports()[0]}>\n"
            "    ServerName proxy-subdomains-vhost.localhost\n"
            "    ServerAlias webmail.*\n    DocumentRoot /var/www/html\n"
            + _PROXY.format(cond="    RewriteCond %{HTTP_HOST} ^webmail\\.\n")
            + "</VirtualHost>\n\n")


def rebuild() -> str:
    """rebuildhttpdconf (A12): compile every account's userdata into HTTPD_CONF (std vhost on
    80 and ssl vhost on 443 per domain); does NOT restart Apache. Returns the config text."""
    parts = [
        "# Built by the cPanel simulator's rebuildhttpdconf; do not edit.\n",
        f'IncludeOptional "{SUSPENSIONS}"\n',
        # ea4_main.default:412-417 (CpanelInc/ea-apache2-config @6f26dd73): the
        # suspensions, then errordocument.conf, each included only when the file exists.
        *([f'Include "{ERRORDOCUMENTS}"\n'] if os.path.isfile(ERRORDOCUMENTS) else []),
        f"Alias /cgi-sys/suspendedpage.cgi {SUSPENDED_PAGE_DIR}/suspendedpage.html\n",
        f'<Directory "{SUSPENDED_PAGE_DIR}">\n    Require all granted\n'
        "    ForceType text/html\n</Directory>\n",
        '<Directory "/home">\n    AllowOverride All\n    Options FollowSymLinks\n'
        "    Require all granted\n</Directory>\n\n",
    ]
    for user in store.accounts():
        for domain in vhost_names(user):
            parts.append(_vhost(user, domain, ssl=False))
            parts.append(_vhost(user, domain, ssl=True))
    if proxy_subdomains():
        parts.append(_proxy_vhost())
    text = "".join(parts)
    store.write_atomic(HTTPD_CONF, text)
    return text


def suspended_users() -> list[str]:
    """Return accounts with a /var/cpanel/suspended/USER file."""
    try:
        names = os.listdir(store.SUSPENDED_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.endswith(".lock") and store.cpuser(n))


def write_suspensions() -> None:
    """generate_account_suspension_include (A7 step 11): one <Directory> block per suspended
    account's home; mod_alias answers 302 to /cgi-sys/suspendedpage.cgi (C2.1)."""
    from .mail import home

    blocks = []
    for user in suspended_users():
        blocks.append(f'<Directory "{home(user)}">\n    AllowOverride none\n'
                      "    RedirectMatch ^/(?!cgi-sys/suspendedpage.cgi).* "
                      "/cgi-sys/suspendedpage.cgi\n</Directory>\n")
    store.write_atomic(SUSPENSIONS, "".join(blocks))


def restart() -> tuple[int, str]:
    """restartsrv_httpd: refuse (exit 1) when `apache2ctl configtest` fails, else a real
    graceful restart. Returns (exit code, output)."""
    code, out = store.run(["/usr/sbin/apache2ctl", "configtest"])
    if code != 0:
        return 1, f"httpd configuration test failed; not restarting:\n{out}"
    code, out2 = store.run(["/usr/sbin/apache2ctl", "graceful"])
    if code != 0:
        return 1, f"httpd graceful restart failed:\n{out2}"
    return 0, "Waiting for “httpd” to restart gracefully …\n…finished.\n“httpd” restarted.\n"
