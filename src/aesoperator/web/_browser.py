"""Chromium for browser mode: discovery, the switches both browsers share, Playwright's
Chromium (one per worker process, per event loop, launched lazily: ``open_page`` and
``screenshot``), and the pinned WebSocket connections pages get.

How Chromium reaches the network: it does not. It is launched with a proxy that points at a
closed local port (loopback included, via ``<-loopback>``) and resolves no names, so any request
Chromium tried to make on its own (preconnect, DNS prefetch, a socket nobody intercepted) fails
on the machine. Every request of a page is intercepted and answered through the gate: in
Playwright's browser by ``context.route`` (``_tabs``), in the reading browser by the Fetch
domain (``_reader``). An allowed WebSocket is opened from Python to the checked address
(``open_pinned_websocket``) and relayed (``relay_websocket``).

Chromium discovery: ``AESOP_CHROMIUM`` (a path), else ``chromium``, ``chromium-browser``,
``google-chrome`` on ``PATH``, else Playwright's own downloaded browser.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

_DISABLED_FEATURES = [
    "NetworkPrediction",
    "InterestFeedContentSuggestions",
    # A new frame in the renderer for every same-site navigation (Chromium's default since
    # ~2024): a reading browser navigates tabs page after page, and reusing the frame is
    # ~15% more pages/s (bench/web_browser.py).
    "RenderDocument",
    # Playwright's own list (1.5x): fixes for routed requests, no requests at startup.
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
]

_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    # Fewer processes: the worker's memory limit counts the browser's whole tree.
    "--no-zygote",
    "--in-process-gpu",
    # Chromium reads only the last --disable-features: this one must repeat the features
    # Playwright disables by default (its own switch comes first and would be dropped; without
    # HttpsUpgrades off, an http:// navigation is tried as https:// and its fallback, which is
    # not routed, fails at the dead proxy).
    "--disable-features=" + ",".join(_DISABLED_FEATURES),
    "--dns-prefetch-disable",
    # Chromium resolves no name itself (even a prefetch would leak a DNS query).
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def chromium_args() -> list[str]:
    """Our Chromium switches (the launch adds the dead proxy)."""
    # One renderer per core for the tabs of an execution (they share a context; executions
    # never share a renderer): more would only take turns on the CPU, each with its own
    # memory. About 5% more pages/s on 2 cores (bench/web_browser.py).
    return [*_ARGS, f"--renderer-process-limit={max(2, os.cpu_count() or 2)}"]


def offline_args() -> list[str]:
    """Our switches plus what keeps Chromium off the network by itself: a proxy on a port we
    hold without listening (connections are refused), loopback included. Both browsers
    (Playwright's and the reading one) are launched with these."""
    args = [*chromium_args(), f"--proxy-server=http://127.0.0.1:{_dead_port()}",
            "--proxy-bypass-list=<-loopback>"]  # fmt: skip
    tag = os.environ.get("AESOP_BROWSER_TAG")
    if tag:
        args.append(f"--aesop-tag={tag}")  # lets tests find this browser's processes
    return args


# Requests of a page that count against requests_per_second in browser mode.
COUNTED_TYPES = frozenset({"document", "fetch", "xhr", "eventsource", "other"})

INSTALL_HINT = (
    "no Chromium found: install one with `apt-get install chromium` (Debian/Ubuntu) or "
    "`python -m playwright install chromium`, or set AESOP_CHROMIUM=/path/to/chromium"
)


def _small_dev_shm() -> bool:
    """Is /dev/shm too small for Chromium's shared memory (Docker gives 64 MB)?

    Only then is ``--disable-dev-shm-usage`` worth it: it moves shared memory to /tmp, which
    costs CPU on every frame and resource where /tmp is a disk.
    """
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return True
    return st.f_bavail * st.f_frsize < 512 * 1024 * 1024


def chromium_path() -> str | None:
    """The Chromium executable to use, or ``None`` for Playwright's downloaded browser."""
    explicit = os.environ.get("AESOP_CHROMIUM")
    if explicit:
        if not os.path.exists(explicit):
            raise UserError(f"AESOP_CHROMIUM={explicit!r} does not exist; {INSTALL_HINT}")
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


_held: list[socket.socket] = []


def _dead_port() -> int:
    """A local TCP port bound by this process and never listened on: connecting is refused."""
    if not _held:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        _held.append(sock)
    return int(_held[0].getsockname()[1])


class _Handle:
    def __init__(self, pw: Playwright, browser: Browser) -> None:
        self.pw = pw
        self.browser = browser


_handles: dict[asyncio.AbstractEventLoop, _Handle] = {}
_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def get_browser() -> Browser:
    """The browser of this worker (event loop); launched on first use."""
    loop = asyncio.get_running_loop()
    for other in [lp for lp in _handles if lp.is_closed()]:
        _handles.pop(other, None)  # its driver went with that loop's process resources
        _locks.pop(other, None)
    lock = _locks.setdefault(loop, asyncio.Lock())
    async with lock:
        handle = _handles.get(loop)
        if handle is not None and handle.browser.is_connected():
            return handle.browser
        try:
            from playwright.async_api import async_playwright
        except ImportError:  # pragma: no cover - playwright is a dependency
            raise UserError("browser mode needs playwright: pip install playwright") from None
        pw = await async_playwright().start()
        args = offline_args()
        # Playwright passes --disable-dev-shm-usage by default; keep it only where it helps.
        drop = [] if _small_dev_shm() else ["--disable-dev-shm-usage"]
        try:
            browser = await pw.chromium.launch(
                executable_path=chromium_path(), headless=True, args=args,
                ignore_default_args=drop,
            )  # fmt: skip
        except Exception as exc:
            await pw.stop()
            text = str(exc)
            if "Executable doesn't exist" in text or "ENOENT" in text:
                raise UserError(INSTALL_HINT) from None
            raise
        _handles[loop] = _Handle(pw, browser)
        return browser


async def shutdown_browser() -> None:
    """Close this event loop's browsers, Playwright's (and its driver) and the reading one
    (safe to call when none is running)."""
    from ._reader import shutdown_reader

    await shutdown_reader()
    loop = asyncio.get_running_loop()
    handle = _handles.pop(loop, None)
    if handle is None:
        return
    with contextlib.suppress(Exception):
        await handle.browser.close()
    with contextlib.suppress(Exception):
        await handle.pw.stop()


def _close_at_exit() -> None:
    # Loops still running at interpreter exit: close their browsers. The driver also kills its
    # browsers when its pipe to us closes, so a process that dies without this still leaves none.
    for loop, _handle in list(_handles.items()):
        if loop.is_closed() or loop.is_running():
            continue
        with contextlib.suppress(Exception):
            loop.run_until_complete(_shutdown_on(loop))


async def _shutdown_on(loop: asyncio.AbstractEventLoop) -> None:
    await shutdown_browser()


atexit.register(_close_at_exit)


def resource_blocked(resource_type: str, blocked: list[str]) -> bool:
    return resource_type in blocked


def forwardable_headers(headers: dict[str, str]) -> dict[str, str]:
    """Request headers Chromium set that we pass on (not framing or hop-by-hop ones)."""
    skip = {"host", "connection", "content-length", "accept-encoding", "keep-alive", "te",
            "transfer-encoding", "upgrade", "proxy-connection", "proxy-authorization"}  # fmt: skip
    return {k: v for k, v in headers.items() if not k.startswith(":") and k.lower() not in skip}


def fulfil_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Response headers for ``route.fulfill``: the body is already decoded and complete."""
    skip = {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"}
    out: dict[str, str] = {}
    for key, value in headers:
        k = key.lower()
        if k in skip:
            continue
        out[k] = f"{out[k]}\n{value}" if k in out else value
    return out


async def open_pinned_websocket(
    url: str, host: str, port: int, ips: list[str], *, secure: bool, timeout: float,
    protocols: list[str], headers: dict[str, str], user_agent: str, max_size: int,
) -> Any:  # fmt: skip
    """A WebSocket client connection to ``url`` over a TCP socket we open to a checked IP.

    The socket is ours, so the library never resolves a name, never uses a proxy from the
    environment and cannot follow a redirect (it refuses to with a given socket); TLS still
    sends ``host`` as SNI and checks the certificate against it; the Host header is ``url``'s.
    """
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    from ._http import verified_context

    loop = asyncio.get_running_loop()
    error: Exception | None = None
    async with asyncio.timeout(timeout):
        for ip in ips:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (ip, port))
            except OSError as exc:
                sock.close()
                error = exc
                continue
            try:
                return await connect(
                    url, sock=sock, ssl=verified_context() if secure else None,
                    server_hostname=host if secure else None, proxy=None, open_timeout=None,
                    subprotocols=[Subprotocol(p) for p in protocols] or None,
                    additional_headers=headers, user_agent_header=user_agent,
                    max_size=max_size, compression=None,
                )  # fmt: skip
            except BaseException:
                sock.close()
                raise
    raise error or OSError(f"no address for {host}")


async def relay_websocket(route: Any, server: Any, on_done: Any) -> None:
    """Pass messages both ways between the page (``route``) and ``server`` until either closes.

    Text stays text and bytes stay bytes; a close on one side closes the other with its code.
    """
    from websockets.exceptions import ConnectionClosed

    outbox: asyncio.Queue[str | bytes | tuple[int | None, str | None]] = asyncio.Queue()
    route.on_message(outbox.put_nowait)
    route.on_close(lambda code, reason: outbox.put_nowait((code, reason)))

    async def page_to_server() -> None:
        while True:
            item = await outbox.get()
            if isinstance(item, tuple):
                code, reason = item
                # 1005/1006 only describe a close; they cannot be sent in a close frame.
                ok = code is not None and code not in (1005, 1006)
                await server.close(code if ok else 1000, reason or "")
                return
            try:
                await server.send(item)
            except ConnectionClosed:
                return

    async def server_to_page() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in server:
                route.send(message)
        code = server.close_code
        await route.close(code=None if code in (None, 1005, 1006) else code,
                          reason=server.close_reason or None)  # fmt: skip

    up = asyncio.ensure_future(page_to_server())
    down = asyncio.ensure_future(server_to_page())
    try:
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        if up.done():
            await asyncio.wait_for(asyncio.shield(down), 10)  # let the server's close arrive
    except TimeoutError:
        pass
    finally:
        for task in (up, down):
            task.cancel()
        with contextlib.suppress(Exception):
            await server.close()
        with contextlib.suppress(Exception):
            await route.close(code=None, reason=None)
        on_done()
