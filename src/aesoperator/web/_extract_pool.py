"""A warm pool of extraction processes, shared by every execution of this process.

Main-text extraction is CPU-bound (lxml + trafilatura): run on the event loop it would stall
fetching, on a thread it would hold the GIL. The pool's processes start on first use and stay
for the life of the worker process, so only the first execution pays their start-up (about a
second of CPU each). They are plain subprocesses (``python -m ...``): multiprocessing's spawn
and forkserver would import the user's ``__main__`` again, re-running unguarded scripts.
They belong to the worker's process group and die with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .extract import Extracted

_HEADER = struct.Struct("!I")
_PKG_ROOT = str(Path(__file__).resolve().parents[2])


class ExtractFailed(Exception):
    """The pool could not extract this page (its process died, or extraction raised)."""


class _Slot:
    """One extraction process and the thread that talks to it."""

    def __init__(self, jobs: queue.Queue[Any]) -> None:
        self._jobs = jobs
        self._proc: subprocess.Popen[bytes] | None = None
        threading.Thread(target=self._serve, name="aesop-extract", daemon=True).start()

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, env.get("PYTHONPATH")) if p)
        return subprocess.Popen(
            [sys.executable, "-m", "aesoperator.web._extract_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self._stop()
                return
            args, loop, fut = job
            try:
                if self._proc is None or self._proc.poll() is not None:
                    self._proc = self._start()
                ok, value = self._call(self._proc, args)
            except (OSError, EOFError, pickle.PickleError) as exc:
                self._stop()
                ok, value = False, f"extraction process failed: {exc}"
            if ok:
                loop.call_soon_threadsafe(_settle, fut, value, None)
            else:
                loop.call_soon_threadsafe(_settle, fut, None, ExtractFailed(str(value)))

    @staticmethod
    def _call(proc: subprocess.Popen[bytes], args: tuple[Any, ...]) -> tuple[bool, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        data = pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)
        proc.stdin.write(_HEADER.pack(len(data)) + data)
        proc.stdin.flush()
        head = proc.stdout.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise EOFError("the extraction process exited")
        body = proc.stdout.read(_HEADER.unpack(head)[0])
        result: tuple[bool, Any] = pickle.loads(body)
        return result

    def _stop(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None


class ExtractPool:
    def __init__(self, size: int) -> None:
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._slots = [_Slot(self._jobs) for _ in range(size)]

    async def extract(self, body: bytes, url: str, content_type: str | None) -> Extracted:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Extracted] = loop.create_future()
        self._jobs.put(((body, url, content_type), loop, fut))
        return await fut

    def close(self) -> None:
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
