"""The request body limit, as an ASGI middleware: counted as the body is read.

A ``Content-Length`` over the limit is refused before anything is read; a body without one
(chunked) is counted as it arrives and refused as soon as it passes the limit, so a client
cannot make the server buffer more than the limit whatever it declares.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._problems import ProblemError, problem


class TooLarge(ProblemError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request body: more than the limit of {limit} bytes; send less "
            "(a server's limit is ServiceSettings.body_limit_bytes)",
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await problem(413, str(TooLarge(self.limit).detail))(scope, receive, send)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge(self.limit)  # an HTTPException: answered as a problem
            return message

        await self.app(scope, counted, send)
