"""The dashboard at ``/``: a token sign-in, then a page that works the ``/v1`` API with a cookie.

Plain HTML, CSS and JavaScript files shipped in ``static/`` (no CDN, no build step, no
front-end library); charts are SVG drawn here or in ``app.js``. ``dashboard_router()`` gives
the routes; the service's ``create_app`` includes them.
"""

from __future__ import annotations

from ._routes import SESSION_COOKIE, dashboard_router

__all__ = ["SESSION_COOKIE", "dashboard_router"]
