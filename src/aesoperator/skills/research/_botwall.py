"""Bot walls: a challenge page (Cloudflare, a captcha) answered instead of the page asked for.

Such a host will not serve an automated client, whatever it is asked: it is reported once, with
what to do instead, and not asked again in the same execution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from ...runtime.context import TaskContext
    from ...web import Page

# Markers of the common challenge pages, lower-cased, looked for in the page's first 20 kB.
_MARKERS = (
    ("just a moment...", "Cloudflare 'Just a moment...'"),
    ("cf-chl", "Cloudflare challenge"),
    ("challenge-platform", "Cloudflare challenge"),
    ("attention required", "Cloudflare 'Attention Required'"),
    ("cf-browser-verification", "Cloudflare browser check"),
    ("g-recaptcha", "reCAPTCHA"),
    ("h-captcha", "hCaptcha"),
    ("px-captcha", "PerimeterX captcha"),
    ("captcha", "captcha"),
    ("ddos-guard", "DDoS-Guard"),
)
_WALL_STATUSES = frozenset({403, 429, 503})
FIX = (
    "an automated client cannot read this site; use other sources (start_urls on another "
    "site, other allowed_domains) or a discovery provider (search=['arxiv'], ['wikipedia'] "
    "or ['duckduckgo'])"
)

_walls: WeakKeyDictionary[object, dict[str, str]] = WeakKeyDictionary()


def challenge(page: Page) -> str | None:
    """What kind of challenge ``page`` is, or None when it is an answer."""
    if page.status not in _WALL_STATUSES:
        return None
    if page.headers.get("cf-mitigated", "").lower() == "challenge":
        return "Cloudflare challenge (cf-mitigated)"
    head = page.text[:20_000].lower()
    return next((name for marker, name in _MARKERS if marker in head), None)


def walled_hosts(ctx: TaskContext) -> dict[str, str]:
    """Host (``host[:port]``) -> reason, for the hosts of this execution behind a bot wall."""
    return _walls.setdefault(ctx.web, {})


def note_wall(ctx: TaskContext, page: Page, kind: str) -> str:
    """Record the wall once per host (an event naming the fix); return the reason."""
    host = urlsplit(page.url).netloc.lower() or page.url
    walls = walled_hosts(ctx)
    reason = walls.get(host)
    if reason is None:
        reason = f"{host} answered HTTP {page.status} with a bot challenge ({kind}): {FIX}"
        walls[host] = reason
        ctx.emit("research_bot_wall", host=host, url=page.url, status=page.status, kind=kind,
                 fix=FIX)  # fmt: skip
    return reason
