"""UAPI DomainInfo::list_domains: an account's domains, from /var/cpanel/userdata/USER/main.

Shape from cPanel's UAPI reference (DomainInfo::list_domains, "Return cPanel account's
domains", https://api.docs.cpanel.net/specifications/cpanel.openapi/domain-information/list_domains):
`result.data` = {main_domain: string|null, addon_domains: [string], sub_domains: [string],
parked_domains: [string]}. An addon domain's own subdomain of the main domain (its vhost's
ServerName, panels.md A12) is stored among the sub_domains, but list_domains leaves it out
(cpanel-review.md F17: [SRC] asmrdevelop/cpanel @393631a2 Cpanel/API/DomainInfo.pm:167
drops the subdomains that back addon domains).
"""

from __future__ import annotations

from . import web


def list_domains(user: str, args: dict[str, str]) -> dict:
    """Return the account's domains in list_domains' shape (empty lists when it has none)."""
    main = web.userdata(user, "main")
    return {"main_domain": main.get("main_domain") or None,
            "addon_domains": sorted(main.get("addon_domains") or {}),
            "sub_domains": sorted(set(main.get("sub_domains") or [])
                                  - set((main.get("addon_domains") or {}).values())),
            "parked_domains": list(main.get("parked_domains") or [])}


def get_domain_info(visible: set[str] | None) -> list[dict]:
    """WHM API 1 get_domain_info: every domain of every account the caller may see (root:
    all; else its own and its customers'), main, addon, sub and parked, but no automatic
    www./mail. names. [SRC] asmrdevelop/cpanel @393631a2 Whostmgr/API/1/Accounts.pm
    get_domain_info (lines 1219-1296): one record per domain from the userdata cache with
    `domain`, `user`, `user_owner`, `domain_type` (main|addon|sub|parked), `parent_domain`,
    `docroot`, `ipv4`/`port`, `ipv4_ssl`/`port_ssl`, `ipv6`, `ipv6_is_dedicated`,
    `modsecurity_enabled`, `php_version`; not root: filtered by owner or user == the caller.
    The real cache (/etc/userdatadomains) can lag behind the userdata files; here it is
    always current."""
    from . import store

    out = []
    for user in store.accounts():
        if visible is not None and user not in visible:
            continue
        main = web.userdata(user, "main")
        top = main.get("main_domain")
        if not top:
            continue
        addons = main.get("addon_domains") or {}
        kinds = [(top, "main", top), *((a, "addon", top) for a in sorted(addons)),
                 *((s, "sub", top) for s in sorted(main.get("sub_domains") or [])),
                 *((p, "parked", top) for p in main.get("parked_domains") or [])]
        for domain, kind, parent in kinds:
            vhost = addons.get(domain, domain) if kind == "addon" else (
                top if kind == "parked" else domain)
            data = web.userdata(user, vhost) or {}
            out.append({"domain": domain, "user": user, "user_owner": store.owner_of(user),
                        "domain_type": kind, "parent_domain": parent,
                        "docroot": data.get("documentroot", ""),
                        "ipv4": data.get("ip", ""), "port": "80", "ipv4_ssl": data.get("ip", ""),
                        "port_ssl": "443", "ipv6": None, "ipv6_is_dedicated": 0,
                        "modsecurity_enabled": 1, "php_version": "ea-php81"})
    return sorted(out, key=lambda r: r["domain"])
