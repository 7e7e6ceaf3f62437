"""The web layer: one policy gate, rate limits, HTTP and browser fetching, extraction.

Every request a task makes goes through :class:`Policy` (see ``policy.py``); handlers reach the
web only through ``ctx.web`` (a :class:`WebSession`). Playwright is imported only when a browser
is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .extract import Extracted, Link
from .policy import Policy

if TYPE_CHECKING:
    from ._browser import shutdown_browser
    from ._session import Page, WebSession

__all__ = ["Extracted", "Link", "Page", "Policy", "WebSession", "shutdown_browser"]


def __getattr__(name: str) -> Any:
    # The session pulls in httpx; keep ``import aesoperator.web`` cheap for policy-only users.
    if name in ("Page", "WebSession"):
        from . import _session

        return getattr(_session, name)
    if name == "shutdown_browser":
        # For the runtime: close this event loop's Chromium when a worker or client stops.
        from ._browser import shutdown_browser

        return shutdown_browser
    raise AttributeError(name)
