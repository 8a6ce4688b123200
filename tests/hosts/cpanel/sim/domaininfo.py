"""UAPI DomainInfo::list_domains: an account's domains, from /var/cpanel/userdata/USER/main.

Shape from cPanel's UAPI reference (DomainInfo::list_domains, "Return cPanel account's
domains", https://api.docs.cpanel.net/specifications/cpanel.openapi/domain-information/list_domains):
`result.data` = {main_domain: string|null, addon_domains: [string], sub_domains: [string],
parked_domains: [string]}. An addon domain's own subdomain of the main domain (its vhost's
ServerName, panels.md A12) is listed among the sub_domains, as cPanel stores it.
"""

from __future__ import annotations

from . import web


def list_domains(user: str, args: dict[str, str]) -> dict:
    """Return the account's domains in list_domains' shape (empty lists when it has none)."""
    main = web.userdata(user, "main")
    return {"main_domain": main.get("main_domain") or None,
            "addon_domains": sorted(main.get("addon_domains") or {}),
            "sub_domains": sorted(main.get("sub_domains") or []),
            "parked_domains": list(main.get("parked_domains") or [])}
