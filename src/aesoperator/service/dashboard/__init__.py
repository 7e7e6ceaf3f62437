"""The dashboard at ``/``: a token sign-in, then a page that works the ``/v1`` API with a cookie.

Plain HTML, CSS and JavaScript files shipped in ``static/`` (no CDN, no build step, no
front-end library); charts are SVG drawn here or in ``app.js``. ``dashboard_router()`` gives
the routes; ``install(app)`` adds them and the cookie session (``_session.py``) to the
service's app.
"""

from __future__ import annotations

from fastapi import FastAPI

from ._routes import dashboard_router
from ._session import SESSION_COOKIE, CookieSession

__all__ = ["SESSION_COOKIE", "dashboard_router", "install"]


def install(app: FastAPI) -> FastAPI:
    """The dashboard's routes at ``/`` and ``/ui/``, and its cookie accepted by ``/v1``."""
    app.include_router(dashboard_router())
    app.add_middleware(CookieSession)
    return app
