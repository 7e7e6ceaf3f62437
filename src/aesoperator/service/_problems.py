"""Errors as ``application/problem+json`` (RFC 9457), with the Python API's own messages."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, JsonValue
from starlette.exceptions import HTTPException

from ..errors import AesoperatorError, NoPlannerError, NotFoundError, UserError, ValidationError

MEDIA = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


class Problem(BaseModel):
    """An error: ``detail`` is the message the Python API gives for the same mistake."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    value: JsonValue = None
    fix: str | None = None


class ProblemError(HTTPException):
    """An HTTP error answered as a problem; an HTTPException so FastAPI passes it through."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status, detail, headers)
        self.extra = extra


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA)


def _fix(message: str) -> str | None:
    """Our messages end in the fix after the last '; ' ("...; use 'x.org' in ...")."""
    tail = message.rsplit("; ", 1)
    return (
        tail[1].strip()
        if len(tail) == 2
        and re.match(r"^(use|give|set|pass|choose|list|register|add|remove|move)\b", tail[1])
        else None
    )


def _small(value: Any) -> JsonValue:
    if isinstance(value, str | int | float | bool) or value is None:
        return value if not isinstance(value, str) else value[:200]
    return None


def user_error(exc: UserError) -> JSONResponse:
    message = str(exc)
    if isinstance(exc, NotFoundError):
        return problem(404, message, error="NotFoundError")
    field = value = None
    if isinstance(exc, ValidationError) and exc.errors:
        first = exc.errors[0]
        loc = first.get("loc") or ()
        field = ".".join(str(p) for p in loc) or None
        value = _small(first.get("input"))
    status = 422 if isinstance(exc, ValidationError | NoPlannerError) else 400
    # ``error``: the Python exception's class, so a remote client raises the same one.
    return problem(
        status, message, field=field, value=value, fix=_fix(message), error=type(exc).__name__
    )


def install(app: FastAPI) -> None:
    """Every error the app can meet becomes a problem; none becomes a 500 with a traceback."""

    async def on_user(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UserError)
        return user_error(exc)

    async def on_other(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AesoperatorError)
        return problem(409, str(exc), title=type(exc).__name__)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        extra = getattr(exc, "extra", {})
        return problem(exc.status_code, str(exc.detail), dict(exc.headers or {}) or None, **extra)

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ())]
        where = ".".join(loc) or "request"
        msg = str(first.get("msg", "invalid"))
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if first.get("type") == "json_invalid":
            detail = f"{where}: the body is not valid JSON ({msg}); send a JSON document"
        elif loc[:1] == ["body"] and kind not in ("application/json", ""):
            # curl -d sends application/x-www-form-urlencoded unless told otherwise
            detail = (
                f"{where}: the body was sent as {kind!r}, so it was not read as JSON; send "
                "it with Content-Type: application/json (curl: -H 'Content-Type: "
                "application/json')"
            )
        else:
            detail = f"{where}: {msg}"
        return problem(422, detail, field=where, value=_small(first.get("input")))

    app.add_exception_handler(UserError, on_user)
    app.add_exception_handler(AesoperatorError, on_other)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)


# OpenAPI: the problem answers each route can give.
def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": Problem, "content": {MEDIA: {}}, "description": _TITLES.get(code, "Error")}
        for code in codes
    }
