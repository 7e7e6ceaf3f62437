"""A warm pool of extraction processes, shared by every execution of this process.

Main-text extraction is CPU-bound (lxml + trafilatura): run on the event loop it would stall
fetching, on a thread it would hold the GIL. The pool's processes stay for the life of the
worker process, so only the first execution pays their start-up, and that start-up is paid
once for all of them: one process imports and warms the extractor, then forks a copy per
further slot (see ``_extract_worker``). It is a plain subprocess (``python -m ...``):
multiprocessing's spawn and forkserver would import the user's ``__main__`` again, re-running
unguarded scripts. The processes belong to the worker's process group and die with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .._framing import recv_frame, send_frame
from .extract import Extracted

_PKG_ROOT = str(Path(__file__).resolve().parents[2])


class ExtractFailed(Exception):
    """The pool could not extract this page (its process died, or extraction raised)."""


def _spawn(count: int) -> tuple[subprocess.Popen[bytes], list[socket.socket]]:
    """Start ``count`` extraction slots; returns the first process and our end of each socket."""
    pairs = [socket.socketpair() for _ in range(count)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, env.get("PYTHONPATH")) if p)
    theirs = [b.fileno() for _, b in pairs]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aesoperator.web._extract_worker", *map(str, theirs)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            pass_fds=theirs,
        )
    except BaseException:
        for a, b in pairs:
            a.close()
            b.close()
        raise
    for _, b in pairs:
        b.close()
    return proc, [a for a, _ in pairs]


class _Slot:
    """One extraction process (reached through a socket) and the thread that talks to it."""

    def __init__(self, pool: ExtractPool) -> None:
        self._pool = pool
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None  # set when we started this one
        self._pid: int | None = None

    def attach(self, sock: socket.socket, proc: subprocess.Popen[bytes] | None) -> None:
        self._sock, self._proc, self._pid = sock, proc, None
        threading.Thread(target=self._serve, name="aesop-extract", daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError, EOFError, pickle.PickleError):
            self._handshake()  # the process is warm: imports done, extractor built
        jobs = self._pool._jobs
        while True:
            job = jobs.get()
            if job is None:
                self._stop()
                return
            args, loop, fut = job
            try:
                if self._sock is None:  # the process died earlier: a new one for this slot
                    proc, (sock,) = _spawn(1)
                    self._sock, self._proc, self._pid = sock, proc, None
                if self._pid is None:
                    self._handshake()
                ok, value = self._call(args)
            except Exception as exc:  # whatever broke, the caller must hear back
                self._stop()
                ok, value = False, f"extraction process failed: {type(exc).__name__}: {exc}"
            if ok:
                loop.call_soon_threadsafe(_settle, fut, value, None)
            else:
                loop.call_soon_threadsafe(_settle, fut, None, ExtractFailed(str(value)))

    def _handshake(self) -> None:
        if self._sock is not None and self._pid is None:
            self._pid = int(recv_frame(self._sock))
            self._pool.warm.set()

    def _call(self, args: tuple[Any, ...]) -> tuple[bool, Any]:
        assert self._sock is not None
        send_frame(self._sock, args)
        result: tuple[bool, Any] = recv_frame(self._sock)
        return result

    def _stop(self) -> None:
        if self._pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
        if self._sock is not None:
            self._sock.close()
        if self._proc is not None and self._pid in (None, self._proc.pid):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait(5)
        self._sock, self._proc, self._pid = None, None, None


class ExtractPool:
    def __init__(self, size: int) -> None:
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._slots = [_Slot(self) for _ in range(size)]
        self._started = False
        self._lock = threading.Lock()
        self.warm = threading.Event()  # set once a process answers: the pool is up

    def start(self) -> None:
        """Start the processes now, so they warm up while the caller does other work."""
        with self._lock:
            if self._started:
                return
            proc, socks = _spawn(len(self._slots))
            for slot, sock in zip(self._slots, socks, strict=True):
                slot.attach(sock, proc)
            self._started = True

    async def extract(
        self,
        body: bytes,
        url: str,
        content_type: str | None,
        markdown: bool = True,
        listing: bool = False,
    ) -> Extracted:
        self.start()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Extracted] = loop.create_future()
        self._jobs.put(((body, url, content_type, markdown, listing), loop, fut))
        return await fut

    def close(self) -> None:
        with self._lock:
            if self._started:
                for _ in self._slots:
                    self._jobs.put(None)


def _settle(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


_pool: ExtractPool | None = None
_lock = threading.Lock()


def shared_pool() -> ExtractPool:
    """The process-wide pool (two processes: one per core here), made on first use."""
    global _pool
    with _lock:
        if _pool is None:
            size = int(os.environ.get("AESOP_EXTRACT_PROCESSES", min(2, os.cpu_count() or 1)))
            _pool = ExtractPool(max(1, size))
        return _pool
