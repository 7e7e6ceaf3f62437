"""The dashboard's session cookie as API credentials, with the CSRF guard on top of SameSite.

A request to ``/v1`` without an ``Authorization`` header but with the ``aesop_session`` cookie
is authenticated as if it sent the cookie's token as a bearer token, so the API's one token
check (scopes, projects, revocation, rate limit) applies unchanged. A cookie-authenticated
POST/PUT/DELETE must also carry ``X-Aesop-UI: 1`` (a header no cross-site form can send);
without it: 403, before the request reaches the API.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from .._problems import problem

SESSION_COOKIE = "aesop_session"
UI_HEADER = b"x-aesop-ui"
_SAFE = {"GET", "HEAD", "OPTIONS"}


def session_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            try:
                jar = SimpleCookie(value.decode("latin-1"))
            except CookieError:
                continue
            if SESSION_COOKIE in jar and jar[SESSION_COOKIE].value:
                return jar[SESSION_COOKIE].value
    return None


class CookieSession:
    """ASGI middleware: the session cookie becomes ``Authorization: Bearer`` for ``/v1``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
        if any(name == b"authorization" for name, _ in headers):
            await self.app(scope, receive, send)
            return
        token = session_token(headers)
        if token is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _SAFE and (UI_HEADER, b"1") not in headers:
            detail = (
                f"{scope['method']} with the dashboard's session cookie needs the header "
                "X-Aesop-UI: 1 (a guard against cross-site requests); "
                "send it, or use Authorization: Bearer <token>"
            )
            await problem(403, detail)(scope, receive, send)
            return
        headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
        await self.app(dict(scope, headers=headers), receive, send)
