"""The landing include: the Apache directives that put a site behind the 503 landing page.

Panel-neutral: the linux driver writes it into each vhost's hook folder, a cPanel driver into
EA4's userdata include folders; the directives and their guarantees are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.steps.actions import FileState, Write, file_state

LANDING_URL = "/.suspension-agent-landing/"
_LANDING_RE = "/\\.suspension-agent-landing/"
HOOK_FILE = "suspension-agent.conf"


def hook_conf(case_id: str, landing_dir: str, retry_after: int) -> str:
    """Return the Apache include that puts one account's vhosts behind the landing page.

    The one thing still served from the site is a domain-validation file: a plain file name
    that exists as a file in the docroot's ACME challenge folder, or in the two folders of
    cPanel's AutoSSL checks (cpanel-review.md F10: its local DCV check and Sectigo's
    `/.well-known/pki-validation/<hex>.txt`; EA4's own vhosts exempt the same paths,
    ea-apache2-config vhost.default `dcv_rewrite_patterns`), so certificates still renew. [END]
    keeps every .htaccess rewrite from running for it, and the <LocationMatch> (merged after
    every .htaccess) makes it a static file with no handler (SetHandler, AddHandler), no
    Options (SSI, CGI, MultiViews, indexes) and text/plain. Anything else, including an
    internal redirect, gets the 503.
    """
    return f"""# BEGIN SUSPENSION-AGENT case {case_id}
# Written by suspension-agent; removed when the suspension is lifted. Do not edit.
Alias {LANDING_URL} {landing_dir}/
<Directory {landing_dir}/>
    AllowOverride None
    Options None
    Require all granted
</Directory>
ErrorDocument 503 {LANDING_URL}index.html
RewriteEngine On
RewriteCond %{{REQUEST_URI}} ^/\\.well-known/(acme-challenge|cpanel-dcv)/[A-Za-z0-9_-]+$ [OR]
RewriteCond %{{REQUEST_URI}} ^/\\.well-known/pki-validation/[A-Za-z0-9_-]+\\.txt$
RewriteCond %{{DOCUMENT_ROOT}}%{{REQUEST_URI}} -f
RewriteRule ^ - [END]
RewriteCond %{{REQUEST_URI}} !^{_LANDING_RE}
RewriteRule ^ - [R=503,L]
<LocationMatch "^/\\.well-known/(acme-challenge|pki-validation|cpanel-dcv)/">
    SetHandler default-handler
    Options None
    ForceType text/plain
</LocationMatch>
Header always set Retry-After "{retry_after}"
Header always set Cache-Control "no-store"
Header always set X-Robots-Tag "noindex"
# END SUSPENSION-AGENT case {case_id}
"""


def put_back(found: dict[str, Any], server: str, before: list[dict], created_dirs: list[str]
             ) -> tuple[list, RemoveDirs]:
    """Return the actions that put the landing files back as `before` (FileState dicts) had
    them, and the finish that removes the folders made for them (after every account of a
    batch removed its files: a shared parent is in one account's `created_dirs` only), from
    `found`: one read of both (path -> FileData; the hot path of an unsuspend). Files
    already as before are left alone."""
    states = [FileState.from_dict(d) for d in before]
    # Newest first (apply wrote the page, then the includes): a revert stopped between two
    # files leaves the full landing page up, never an include whose ErrorDocument is gone.
    actions: list = [Write(now, st) for st in reversed(states)
                     if (now := file_state(found[st.path], server)) != st]
    return actions, RemoveDirs(tuple(d for d in created_dirs if found[d].exists))


# Remove the folders the agent made ($@, deepest first), each if it is still there and
# empty. Accounts of one batch revert side by side and may share a parent folder that each
# one's plan saw as made by it: whichever comes second finds it gone, which is what it
# wanted: also when both saw it there and the other's rmdir won (a check before the rmdir
# alone left that race, seen under load). Anything else (a link, a file, no permission)
# fails with rmdir's own message.
_RMDIRS = ('for d do rmdir --ignore-fail-on-non-empty -- "$d" 2>/dev/null && continue; '
           '[ -e "$d" ] || [ -L "$d" ] || continue; '
           'rmdir --ignore-fail-on-non-empty -- "$d" || exit 1; done')


@dataclass(frozen=True)
class RemoveDirs:
    """Remove folders the agent made, deepest first, those still there and empty. As a
    batch's finish the folders of every account are merged into one: a parent that only one
    account's plan saw as made by it is removed after every account's own subfolder went
    (as each account's own action it ran while the others' were still there, and stayed)."""

    paths: tuple[str, ...]

    def describe(self) -> list[str]:
        return [f"rmdir {p} (if empty)" for p in self._order()]

    @property
    def merge_key(self) -> tuple:
        return ("rmdirs",)

    def merged_with(self, other: RemoveDirs) -> RemoveDirs:
        return RemoveDirs(self.paths + other.paths)

    def _order(self) -> list[str]:
        return sorted(set(self.paths), key=lambda p: (-p.rstrip("/").count("/"), p))

    def as_command(self) -> tuple[list[str], tuple[int, ...]]:
        """The one command (without input) doing it: it joins a batch of commands (the
        revert's removals, configtest and graceful) as one round trip."""
        return ["sh", "-c", _RMDIRS, "sh", *self._order()], (0,)

    def carry_out(self, conn: Any) -> None:
        if self.paths:
            conn.run(self.as_command()[0])
