"""The dashboard's routes: sign-in and sign-out, the page, its static files, the report frame.

The session cookie holds the API token itself (HttpOnly, so page scripts never see it): the
API's own auth checks it on every request, so revoking a token ends its dashboard sessions at
once and no session table has to be kept, expired or shared between server processes. The
routes here never decide who may see what: they ask the API in-process with the caller's
credentials, so project isolation, scopes and revocation are the API's, exactly.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...results import TaskResult
from ._session import SESSION_COOKIE
from ._views import result_html

_MAX_FORM = 8 * 1024

# No inline script or style anywhere on the dashboard's own pages.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The report frame: our writers' inline <style> and SVG, no script at all, sandboxed.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def _headers(csp: str = CSP) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "X-Frame-Options": "SAMEORIGIN" if csp is REPORT_CSP else "DENY",
    }


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _login_page(message: str = "") -> str:
    from html import escape

    note = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    return _asset("login.html").replace("<!--message-->", note)


async def _api(request: Request, path: str, credentials: dict[str, str]) -> httpx.Response:
    """A GET on this same app's API, in-process, with the given credentials."""
    transport = httpx.ASGITransport(app=request.app)
    base = str(request.base_url)
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        return await client.get(path, headers=credentials)


def _cookie_auth(request: Request) -> dict[str, str] | None:
    token = request.cookies.get(SESSION_COOKIE)
    return {"Cookie": f"{SESSION_COOKIE}={token}"} if token else None


def _same_origin(request: Request) -> bool:
    """A form post must come from this origin (a second guard, after SameSite=Strict).

    Browsers say where a request comes from in ``Sec-Fetch-Site``, else in ``Origin``;
    a client that sends neither is not a browser a page could have driven.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.url.netloc


def dashboard_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index(request: Request) -> Response:
        auth = _cookie_auth(request)
        # Only the API's 401 signs out: a 429 or a hiccup must not drop a good session.
        if auth is not None and (await _api(request, "/v1/tasks?limit=1", auth)).status_code != 401:
            return HTMLResponse(_asset("app.html"), headers=_headers())
        page = HTMLResponse(_login_page(), headers=_headers())
        if auth is not None:  # a revoked or unknown token: forget it
            page.delete_cookie(SESSION_COOKIE, path="/")
        return page

    @router.post("/ui/login")
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return HTMLResponse(_login_page("Sign-in refused: cross-site form."), 403, _headers())
        body = await request.body()
        if len(body) > _MAX_FORM:
            return HTMLResponse(_login_page("Sign-in form too large."), 413, _headers())
        token = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0].strip()
        if not token:
            page = _login_page("Paste an API token (aesop token create NAME prints one).")
            return HTMLResponse(page, 400, _headers())
        refused = (
            "That token was refused: unknown, revoked or mistyped. "
            "Create one with: aesop token create NAME"
        )
        if len(token) > 200 or not all(c.isascii() and c.isprintable() for c in token):
            return HTMLResponse(_login_page(refused), 401, _headers())  # never a header
        check = await _api(request, "/v1/tasks?limit=1", {"Authorization": f"Bearer {token}"})
        if check.status_code in (401, 403):
            return HTMLResponse(_login_page(refused), 401, _headers())
        if not check.is_success:
            message = f"Sign-in failed: the API answered {check.status_code}."
            return HTMLResponse(_login_page(message), 502, _headers())
        done = RedirectResponse("/", status_code=303, headers=_headers())
        done.set_cookie(
            SESSION_COOKIE, token, httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return done

    @router.post("/ui/logout")
    async def logout(request: Request) -> Response:
        if not _same_origin(request):
            return Response(status_code=403, headers=_headers())
        page = RedirectResponse("/", status_code=303, headers=_headers())
        page.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return page

    @router.get("/ui/static/{name}")
    async def static(name: str) -> Response:
        if name not in _STATIC:
            return Response("not found", 404, media_type="text/plain")
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
        return Response(_asset(name), media_type=_STATIC[name], headers=headers)

    @router.get("/ui/tasks/{execution_id}/report")
    async def report(
        request: Request, execution_id: Annotated[str, Path(max_length=200)]
    ) -> Response:
        auth = _cookie_auth(request)
        if auth is None:
            return Response("sign in first", 401, media_type="text/plain", headers=_headers())
        answer = await _api(request, f"/v1/tasks/{quote(execution_id, safe='')}/result", auth)
        if not answer.is_success:  # the API's own answer: 404 for another project's ids
            kind = answer.headers.get("content-type", "application/problem+json")
            return Response(answer.content, answer.status_code, media_type=kind)
        result = TaskResult.model_validate(answer.json())
        return HTMLResponse(result_html(result), headers=_headers(REPORT_CSP))

    return router
