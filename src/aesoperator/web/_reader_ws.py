"""The WebSockets of the reading browser's pages: answered by us, connected by the gate.

Chromium's Fetch domain does not see WebSockets, and Chromium has no network of its own, so a
page's ``new WebSocket`` is replaced (in every frame, before the page's scripts run:
``_websocket_shim.js``) by one that asks the session through a binding: ``open`` (the gate
checks the URL like any request and connects from Python to the pinned address), ``send`` and
``close``; the session answers by calling ``__aesopWsIn(id, what, data)`` in the same frame.
Binary messages travel as base64. A page that calls the binding itself gets the same checks.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PolicyViolation

if TYPE_CHECKING:
    from ._gate import Gate

__all__ = ["BINDING", "SHIM", "PageSockets"]

BINDING = "__aesopWs"
SHIM = (Path(__file__).parent / "_websocket_shim.js").read_text(encoding="utf-8")

Post = Callable[
    [str, dict[str, Any], str], None
]  # a command, not awaited (method, params, session)
Send = Callable[[str, dict[str, Any], str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class _Socket:
    server: Any  # the websockets client connection
    owner: object  # the tab it belongs to
    session: str  # the frame's target session, and its JavaScript context there
    context: int


class PageSockets:
    """The open WebSockets of one execution's reading tabs."""

    def __init__(
        self, gate: Gate, emit: Callable[..., None], post: Post, send: Send,
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:  # fmt: skip
        self._gate = gate
        self._emit = emit
        self._post = post
        self._send = send
        self._spawn = spawn
        self._open: dict[str, _Socket] = {}  # the shim's socket id -> its connection

    def called(
        self, owner: object, page_url: str, cookies_from: str, session: str, params: dict[str, Any]
    ) -> None:
        """The binding was called in ``session`` (a frame of ``owner``, at ``page_url``);
        ``cookies_from`` is the session whose cookie jar the handshake carries."""
        try:
            call = json.loads(str(params.get("payload", "")))
            ident = str(call["id"])
            op = call["op"]
        except (ValueError, KeyError, TypeError):
            return
        context = int(params.get("executionContextId", 0))
        if op == "open":
            if ident not in self._open:
                where = _Socket(None, owner, session, context)
                self._spawn(self._connect(where, ident, call, page_url, cookies_from))
            return
        known = self._open.get(ident)
        if known is None or known.session != session or known.context != context:
            return  # not a socket of this frame
        if op == "send":
            data: str | bytes = call["text"] if "text" in call else base64.b64decode(
                str(call.get("bytes", "")))  # fmt: skip
            self._spawn(known.server.send(data))
        elif op == "close":
            code = call.get("code")
            ok = isinstance(code, int) and (code == 1000 or 3000 <= code <= 4999)
            reason = str(call.get("reason", ""))[:123]
            self._spawn(known.server.close(code if ok else 1000, reason))

    async def _connect(
        self, where: _Socket, ident: str, call: dict[str, Any], page_url: str, cookies_from: str
    ) -> None:
        from websockets.exceptions import ConnectionClosed

        from ._gate import origin_of

        url = str(call.get("url", ""))
        protocols = [str(p) for p in call.get("protocols") or []][:32]

        async def page_headers(http_url: str) -> dict[str, str]:
            # What Chromium would send: the page's origin and the jar's cookies for the host.
            headers: dict[str, str] = {}
            if page_url.startswith(("http://", "https://")):
                headers["origin"] = origin_of(page_url)
            with contextlib.suppress(Exception):
                got = await self._send("Network.getCookies", {"urls": [http_url]}, cookies_from)
                jar = got.get("cookies") or []
                if jar:
                    headers["cookie"] = "; ".join(f"{c['name']}={c['value']}" for c in jar)
            return headers

        def deliver(what: str, data: Any) -> None:
            args = ", ".join(json.dumps(x) for x in (ident, what, data))
            self._post("Runtime.evaluate", {"expression": f"__aesopWsIn({args})",
                                            "contextId": where.context}, where.session)  # fmt: skip

        try:
            server = await self._gate.open_websocket(url, protocols, page_headers)
        except PolicyViolation as exc:
            self._gate.refused(url, exc, source="browser", resource_type="websocket")
            deliver("close", {"code": 1008, "reason": f"refused by policy ({exc.rule})"})
            return
        except Exception as exc:
            self._emit("websocket_failed", url=url, error=f"{type(exc).__name__}: {exc}"[:300])
            deliver("close", {"code": 1006, "reason": ""})
            return
        self._open[ident] = _Socket(server, where.owner, where.session, where.context)
        deliver("open", server.subprotocol or "")
        try:
            with contextlib.suppress(ConnectionClosed):
                async for message in server:
                    if isinstance(message, str):
                        deliver("text", message)
                    else:
                        deliver("bytes", base64.b64encode(message).decode("ascii"))
        finally:
            self._open.pop(ident, None)
            with contextlib.suppress(Exception):
                await server.close()
            code = server.close_code
            deliver("close", {"code": 1005 if code is None else code,
                              "reason": server.close_reason or ""})  # fmt: skip

    async def close(self, owner: object | None = None) -> None:
        """Close the connections of ``owner``'s pages (of every page: ``None``)."""
        for socket in [s for s in self._open.values() if owner is None or s.owner is owner]:
            with contextlib.suppress(Exception):
                await socket.server.close()
