"""The web layer: one policy gate, rate limits, HTTP and browser fetching, extraction.

Every request a task makes goes through :class:`Policy` (see ``policy.py``); handlers reach the
web only through ``ctx.web`` (a :class:`WebSession`). Playwright is imported only when a browser
is needed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._browser import shutdown_browser
    from ._session import Page, WebSession
    from .extract import Extracted, Link
    from .policy import Policy

__all__ = [
    "Extracted", "Link", "Page", "Policy", "WebSession", "shutdown_browser", "warm_extraction"
]  # fmt: skip


def warm_extraction() -> threading.Event:
    """Start this process's extraction processes now (if not yet), so they warm up while the
    caller does other work; the event is set once they answer. Costs no import of httpx."""
    from ._extract_pool import shared_pool

    pool = shared_pool()
    pool.start()
    return pool.warm


def __getattr__(name: str) -> Any:
    # The session pulls in httpx, the policy pydantic (through the errors): keep
    # ``import aesoperator.web`` cheap, e.g. for the extraction processes.
    if name in ("Extracted", "Link"):
        from . import extract

        return getattr(extract, name)
    if name == "Policy":
        from .policy import Policy

        return Policy
    if name in ("Page", "WebSession"):
        from . import _session

        return getattr(_session, name)
    if name == "shutdown_browser":
        # For the runtime: close this event loop's Chromium when a worker or client stops.
        from ._browser import shutdown_browser

        return shutdown_browser
    raise AttributeError(name)
