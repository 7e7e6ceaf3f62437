"""A Chromium of our own, driven over the DevTools protocol on a pipe (no Playwright).

Used by the reading path (``_reader``): one process per event loop, launched on first use with
``--remote-debugging-pipe`` (fd 3: commands in, fd 4: answers and events out, each message
ended by a NUL byte). A pipe and not a port: a debugging port on 127.0.0.1 would let any
local process drive this browser and its cookies. Chromium closes when the pipe closes, so a
worker that dies leaves no browser behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

from ..errors import UserError

__all__ = ["CDPError", "Chromium", "launch"]

Handler = Callable[[str, dict[str, Any]], None]  # (method, params)


class CDPError(Exception):
    """A command the browser answered with an error (or could not answer: it is gone)."""


class _Reader(asyncio.Protocol):
    def __init__(self, owner: Chromium) -> None:
        self._owner = owner
        self._buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        start = 0
        while (end := buf.find(0, start)) >= 0:
            self._owner._dispatch(bytes(buf[start:end]))
            start = end + 1
        del buf[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._lost()


class Chromium:
    """One browser process and its protocol connection: ``send`` a command (to the browser or
    to a session) and get its result; events go to the handler registered for their session
    (``""`` is the browser's own)."""

    def __init__(self, pid: int, profile: tempfile.TemporaryDirectory[str]) -> None:
        self.pid = pid
        self._profile = profile
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, Handler] = {}
        self._writer: asyncio.WriteTransport | None = None
        self.closed = False

    def on(self, session: str, handler: Handler) -> None:
        self._handlers[session] = handler

    def off(self, session: str) -> None:
        self._handlers.pop(session, None)

    def _dispatch(self, raw: bytes) -> None:
        msg = json.loads(raw)
        ident = msg.get("id")
        if ident is not None:
            fut = self._pending.pop(ident, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        handler = self._handlers.get(msg.get("sessionId", ""))
        if handler is not None:
            handler(msg.get("method", ""), msg.get("params") or {})

    def _lost(self) -> None:
        self.closed = True
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CDPError("the browser is gone"))
        self._pending.clear()

    def post(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> None:
        """Send a command without waiting for its answer (an error is only the browser's)."""
        self._write(next(self._ids), method, params, session)

    def _write(self, ident: int, method: str, params: dict[str, Any] | None, session: str) -> None:
        if self.closed or self._writer is None:
            raise CDPError("the browser is gone")
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._writer.write(json.dumps(msg).encode() + b"\0")

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str = ""
    ) -> dict[str, Any]:
        ident = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = fut
        try:
            self._write(ident, method, params, session)
            msg = await fut
        finally:
            self._pending.pop(ident, None)
        if "error" in msg:
            raise CDPError(f"{method}: {msg['error'].get('message', msg['error'])}")
        result: dict[str, Any] = msg.get("result") or {}
        return result

    async def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send("Browser.close"), 5)
        if self._writer is not None:
            self._writer.close()
        self.closed = True
        await asyncio.to_thread(_reap, self.pid)
        self._profile.cleanup()

    def kill(self) -> None:
        """End the process now (its event loop is gone: no protocol left to close it with)."""
        self.closed = True
        _kill_tree(self.pid)
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        self._profile.cleanup()


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and its helpers (it stays in our process group, which is what the
    worker pool kills, so it cannot have a group of its own), then reap it."""
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        procs = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _reap(pid: int) -> None:
    import time

    for _ in range(50):
        with contextlib.suppress(ChildProcessError):
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        time.sleep(0.1)
    _kill_tree(pid)


async def launch(executable: str, args: list[str]) -> Chromium:
    """Start ``executable`` headless with ``args`` and the pipe; its profile is a temporary
    directory removed on close."""
    # Its helpers may still write there for a moment after the browser is killed.
    profile = tempfile.TemporaryDirectory(prefix="aesop-reader-", ignore_cleanup_errors=True)
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    argv = [executable, "--headless", "--remote-debugging-pipe",
            f"--user-data-dir={profile.name}", *args, "about:blank"]  # fmt: skip
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        pid = os.posix_spawn(
            executable, argv, os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, devnull, 1),
                (os.POSIX_SPAWN_DUP2, devnull, 2),
                (os.POSIX_SPAWN_DUP2, to_browser_r, 3),
                (os.POSIX_SPAWN_DUP2, from_browser_w, 4),
            ],
        )  # fmt: skip
    except OSError as exc:
        profile.cleanup()
        raise UserError(f"cannot start Chromium {executable!r}: {exc}") from None
    finally:
        for fd in (devnull, to_browser_r, from_browser_w):
            os.close(fd)
    browser = Chromium(pid, profile)
    loop = asyncio.get_running_loop()
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(to_browser_w, "wb", 0))
    browser._writer = writer
    await loop.connect_read_pipe(lambda: _Reader(browser), os.fdopen(from_browser_r, "rb", 0))
    try:
        await asyncio.wait_for(browser.send("Browser.getVersion"), 30)
    except (TimeoutError, CDPError):
        await browser.close()
        raise UserError(f"Chromium {executable!r} did not start (no DevTools answer)") from None
    return browser
