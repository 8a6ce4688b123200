"""EA4's "NGINX with reverse proxy" (ea-nginx) in front of Apache (review F5), on Debian's
real nginx. Sources: [NG] CpanelInc/ea-nginx @9822ea2, SOURCES/cpanel-scripts-ea-nginx (the
`ea-nginx` script), SOURCES/cpanel/ea-nginx/server.conf.tt and cache.json.

/etc/nginx/ea-nginx/cache.json             the server's caching defaults (shipped enabled)
/var/cpanel/userdata/USER/nginx-cache.json one user's overrides, merged over the global ones
                                           (script:1668-1686, _get_caching_hr)
/etc/nginx/ea-nginx/enable.standalone      NGINX serves the sites itself, no Apache behind
/etc/nginx/conf.d/users/USER.conf          what `ea-nginx config USER` writes (:1445-1520)
/var/cache/ea-nginx/proxy/USER/            the user's cache (`proxy_cache_path`, :1484)

`ea-nginx config USER|--all [--no-reload]` writes the conf and, unless --no-reload, reloads
NGINX (`restartsrv_nginx reload`, :1358-1372) and clears the user's cache (:360-363);
`ea-nginx clear_cache [--all|USER...]` deletes cached files (:519-571); `ea-nginx reload`
reloads and clears every cache (:573-576). Apache listens where cpanel.config's
apache_port/apache_ssl_port say (:1292-1311; the package moves it to 81 and 444).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys

from . import store, web

ETC = "/etc/nginx/ea-nginx"
CACHE_FILE = f"{ETC}/cache.json"
STANDALONE = f"{ETC}/enable.standalone"
USERS_CONF = "/etc/nginx/conf.d/users"
CACHE_ROOT = "/var/cache/ea-nginx"
NGINX = "/usr/sbin/nginx"

# The package's cache.json as shipped ([NG] SOURCES/cpanel/ea-nginx/cache.json; 301 joined
# 200 and 302 in EA-9874): a cached 200 is fresh for an hour and served stale on a 503.
SHIPPED_CACHE = """{
   "enabled" : true,
   "inactive_time" : "60m",
   "levels" : "1:2",
   "logging" : false,
   "proxy_cache_background_update" : "on",
   "proxy_cache_lock" : "off",
   "proxy_cache_min_uses" : 1,
   "proxy_cache_revalidate" : "on",
   "proxy_cache_use_stale" : "error timeout http_429 http_500 http_502 http_503 http_504",
   "proxy_cache_valid" : {
      "200 301 302" : "60m",
      "404" : "1m"
   },
   "x_cache_header" : false,
   "zone_size" : "10m"
}
"""

# caching_defaults (script:679-715): the fallback under the global file.
_DEFAULTS = {"proxy_cache_valid": {"200 301 302": "60m", "404": "1m"}, "enabled": True,
             "zone_size": "10m", "inactive_time": "60m", "levels": "1:2",
             "proxy_cache_use_stale": "error timeout http_429 http_500 http_502 http_503 "
                                      "http_504",
             "proxy_cache_background_update": "on", "proxy_cache_revalidate": "on",
             "proxy_cache_min_uses": 1, "proxy_cache_lock": "off"}


def _load(path: str) -> dict:
    # Cpanel::JSON::LoadFile inside `eval {} || {}`: a missing or broken file counts as {}.
    try:
        data = json.loads(store.read(path) or "null")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def caching(user: str) -> dict:
    """_get_caching_hr: the defaults, then the global file, then the user's, key by key."""
    return {**_DEFAULTS, **_load(CACHE_FILE),
            **_load(f"{store.USERDATA_DIR}/{user}/nginx-cache.json")}


def _server(user: str, names: list[str], docroot: str, cache: dict) -> str:
    # server.conf.tt:1-130 for a proxied (not standalone) vhost: one server block for HTTP
    # and HTTPS; `location /` caches only when the user's caching is enabled.
    lines = ["server {", f"    server_name {' '.join(names)};", "    listen 80;",
             "    listen 443 ssl;", f"    ssl_certificate {web.CERT};",
             f"    ssl_certificate_key {web.KEY};",
             "    set $CPANEL_APACHE_PROXY_PASS $scheme://apache_backend_${scheme}_127_0_0_1;"]
    if cache["enabled"]:
        lines += [f"    set $CPANEL_PROXY_CACHE {user};", "    set $CPANEL_SKIP_PROXY_CACHING 0;"]
    lines += [f'    root "{docroot}";', "    location / {"]
    if cache["enabled"]:
        lines += ["        proxy_cache $CPANEL_PROXY_CACHE;",
                  "        proxy_no_cache $CPANEL_SKIP_PROXY_CACHING;",
                  "        proxy_cache_bypass $CPANEL_SKIP_PROXY_CACHING;"]
        lines += [f"        proxy_cache_valid {codes} {valid};"
                  for codes, valid in sorted(cache["proxy_cache_valid"].items())]
        for key in ("proxy_cache_use_stale", "proxy_cache_background_update",
                    "proxy_cache_revalidate", "proxy_cache_min_uses", "proxy_cache_lock"):
            lines.append(f"        {key} {cache[key]};")
    lines += ["        include conf.d/includes-optional/cpanel-proxy.conf;",
              "        proxy_pass $CPANEL_APACHE_PROXY_PASS;", "    }", "}", ""]
    return "\n".join(lines) + "\n"


def write_user_conf(user: str) -> str:
    """_write_user_conf: the user's cache path (when enabled) and one server block per
    vhost (the main domain with www., mail. and its parked domains; each subdomain)."""
    cache = caching(user)
    out = []
    if cache["enabled"]:
        out.append(f"proxy_cache_path {CACHE_ROOT}/proxy/{user} levels={cache['levels']} "
                   f"keys_zone={user}:{cache['zone_size']} "
                   f"inactive={cache['inactive_time']};\n\n")
    main = web.userdata(user, "main")
    for name in web.vhost_names(user):
        data = web.userdata(user, web.wildcard_safe(name))
        names = [name, *str(data.get("serveralias") or "").split()]
        if name == main.get("main_domain"):
            names.append(f"mail.{name}")
        out.append(_server(user, list(dict.fromkeys(names)), str(data.get("documentroot")),
                           cache))
    path = f"{USERS_CONF}/{user}.conf"
    store.write_atomic(path, "".join(out))
    return path


def clear_cache(users: list[str]) -> None:
    """clear_cache (script:552-571): every cached file of these users, or of all."""
    pattern = [f"{CACHE_ROOT}/*/{u}/*" for u in users] or [f"{CACHE_ROOT}/*/*/*"]
    for each in pattern:
        for item in glob.glob(each):
            if os.path.isdir(item) and not os.path.islink(item):
                shutil.rmtree(item)
            else:
                os.unlink(item)


def reload() -> tuple[int, str]:
    """restartsrv_nginx reload: refuse a configuration `nginx -t` rejects, else HUP."""
    code, out = store.run([NGINX, "-t"])
    if code != 0:
        return 1, f"nginx configuration test failed; not reloading:\n{out}"
    code, out = store.run([NGINX, "-s", "reload"])
    return (0, "nginx reloaded\n") if code == 0 else (1, f"nginx reload failed:\n{out}")


def main(words: list[str]) -> int:
    """The `ea-nginx` command line: config, clear_cache, reload."""
    if not words or words[0] not in ("config", "clear_cache", "reload"):
        print("usage: ea-nginx [ config|clear_cache|reload ] ...", file=sys.stderr)
        return 2
    command, args = words[0], words[1:]
    flags = {a for a in args if a.startswith("--")}
    users = [a for a in args if not a.startswith("--")]
    known = set(store.accounts())
    if command == "reload":
        code, text = reload()
        if code == 0:
            clear_cache([])
        print(text, end="", file=sys.stderr if code else sys.stdout)
        return code
    if command == "config" and "--all" not in flags and len(users) != 1:
        print("config [--all|--global|<user>] [--no-reload]", file=sys.stderr)
        return 2
    for user in users:
        if user not in known:  # _validate_user_arg
            print("The given user is not a cPanel user.", file=sys.stderr)
            return 1
    if command == "clear_cache":
        clear_cache(users)
        return 0
    targets = sorted(known) if "--all" in flags else users
    os.makedirs(USERS_CONF, exist_ok=True)
    for user in targets:
        print(f"Setting up {write_user_conf(user)} …")
    if "--no-reload" not in flags:
        code, text = reload()
        if code != 0:
            print(text, end="", file=sys.stderr)
            return 1
        clear_cache([] if "--all" in flags else users)
    return 0
