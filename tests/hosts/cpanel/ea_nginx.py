"""Put EA4's ea-nginx in front of a provisioned cPanel test host (review F5), as the package's
post-install does ([NG] CpanelInc/ea-nginx @9822ea2 SOURCES/pkg.postinst): Apache moved to
81 and 444 (`move_apache_to_alt_ports`), the shipped cache.json, every user's conf
(`ea-nginx config --all`), then NGINX started on 80 and 443. The simulator's side is
tests/hosts/cpanel/sim/nginx.py.
"""

from __future__ import annotations

from tests.hosts import hostfs
from tests.hosts.cpanel import services
from tests.hosts.testhost import TestHost

EA_NGINX = f"{services.SCRIPTS}/ea-nginx"
CACHE_JSON = "/etc/nginx/ea-nginx/cache.json"

# A trimmed nginx.conf of the package's shape: every conf.d/*.conf, users included last.
_NGINX_CONF = """user www-data;
worker_processes 2;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log warn;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    include /etc/nginx/conf.d/*.conf;
}
"""

# ea-nginx.conf.tt's upstreams for the one address Apache listens on (127.0.0.1).
_EA_NGINX_CONF = """upstream apache_backend_https_127_0_0_1 {
    server 127.0.0.1:444;
}
upstream apache_backend_http_127_0_0_1 {
    server 127.0.0.1:81;
}
"""

# SOURCES/cpanel/conf.d/includes-optional/cpanel-proxy.conf, the lines that decide what
# Apache is asked and what the cache keys on.
_PROXY_CONF = """proxy_http_version 1.0;
proxy_set_header Host $host;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Real-IP $remote_addr;
proxy_cache_key "$scheme://$host$request_uri";
proxy_ssl_server_name on;
proxy_ssl_name $host;
proxy_ssl_session_reuse off;
"""


def enable(host: TestHost) -> None:
    """Ensure ea-nginx (with its default cache) answers on 80 and 443 and Apache behind it
    on 81 and 444; every account's NGINX conf is written."""
    config = host.path("/var/cpanel/cpanel.config")
    kept = [line for line in (config.read_text().splitlines() if config.exists() else [])
            if not line.startswith(("apache_port=", "apache_ssl_port="))]
    hostfs.write(host, "/var/cpanel/cpanel.config", "\n".join(
        [*kept, "apache_port=0.0.0.0:81", "apache_ssl_port=0.0.0.0:444"]) + "\n")
    hostfs.write(host, "/etc/apache2/ports.conf",
                 "Listen 0.0.0.0:81\n<IfModule ssl_module>\n    Listen 0.0.0.0:444\n"
                 "</IfModule>\n")
    host.run(["/usr/sbin/apache2ctl", "stop"])
    host.wait(lambda: not host.port_open(80), "Apache to let go of port 80")
    host.run([f"{services.SCRIPTS}/rebuildhttpdconf"])
    host.run(["/usr/sbin/apache2ctl", "start"])
    hostfs.write(host, CACHE_JSON, _shipped_cache())
    hostfs.write(host, "/etc/nginx/nginx.conf", _NGINX_CONF)
    hostfs.write(host, "/etc/nginx/conf.d/ea-nginx.conf", _EA_NGINX_CONF)
    hostfs.write(host, "/etc/nginx/conf.d/users.conf", "include conf.d/users/*.conf;\n")
    hostfs.write(host, "/etc/nginx/conf.d/includes-optional/cpanel-proxy.conf", _PROXY_CONF)
    hostfs.make_dirs(host, "/var/cache/ea-nginx/proxy", 0o711, (0, 0))
    host.run([EA_NGINX, "config", "--all", "--no-reload"])
    host.daemon(["/usr/sbin/nginx"])
    host.wait(lambda: host.port_open(80) and host.port_open(443) and host.port_open(81),
              "NGINX in front of Apache")


def _shipped_cache() -> str:
    from tests.hosts.cpanel.sim.nginx import SHIPPED_CACHE

    return SHIPPED_CACHE
