"""Render the branded landing page from landing_pages/<language>.html."""

from __future__ import annotations

import html
import string
from pathlib import Path

from agent.config.config import LANGUAGES, Branding
from agent.errors import BadInput, ConfigError


def _contact_block(b: Branding) -> str:
    items = [f"<li>{html.escape(b.company)}</li>"]
    if b.contact_url:
        url = html.escape(b.contact_url, quote=True)
        items.append(f'<li><a href="{url}">{html.escape(b.contact_url)}</a></li>')
    if b.contact_email:
        mail = html.escape(b.contact_email, quote=True)
        items.append(f'<li><a href="mailto:{mail}">{html.escape(b.contact_email)}</a></li>')
    if b.contact_phone:
        items.append(f"<li>{html.escape(b.contact_phone)}</li>")
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def render(templates_dir: str, branding: Branding, language: str | None = None) -> str:
    """Return the landing page HTML in `language` (default: branding's), values escaped."""
    lang = language or branding.language
    if lang not in LANGUAGES:
        raise BadInput(f"unknown language {lang!r} (known: {', '.join(LANGUAGES)})")
    path = Path(templates_dir) / f"{lang}.html"
    try:
        template = string.Template(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path),
                          [f"cannot read landing page template: {exc.strerror}"]) from exc
    try:
        return template.substitute(company=html.escape(branding.company),
                                   contact_block=_contact_block(branding))
    except (KeyError, ValueError) as exc:
        raise ConfigError(str(path), [f"bad placeholder in template: {exc}"]) from exc
