"""The worker pool: worker processes kept warm — spawned, replaced when they die, given work.

A worker is ``python -m aesoperator.runtime.worker FD`` in a process group of its own, so one
``killpg`` ends it with everything it started (a browser). The pool knows processes, not
executions: what a worker reports about an execution goes to ``on_message``, and a worker that
dies busy is reported to ``on_lost``, which decides how its execution ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .._framing import encode, read_frame
from ..errors import ErrorInfo
from ..execution import TaskState
from .protocol import Idle, Ready, Retire, Shutdown, ToSupervisor, ToWorker

log = logging.getLogger("aesoperator.runtime")
_PKG_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    writer: asyncio.StreamWriter
    ready: bool = False
    busy: str | None = None  # the execution it runs
    handlers_version: str | None = None
    kill_reason: tuple[TaskState, ErrorInfo] | None = None
    ps: psutil.Process | None = None
    memory_floor: int = 0  # below this RSS sum no limit can be crossed: PSS is not needed

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, msg: ToWorker) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(msg))


class WorkerPool:
    """``size`` workers on the runtime loop; every method is called on that loop."""

    def __init__(
        self,
        size: int,
        *,
        on_message: Callable[[ToSupervisor], None],
        on_available: Callable[[], None],
        on_lost: Callable[[Worker, int], None],
        spawn_task: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.size = size
        self.workers: list[Worker] = []
        self.ready = asyncio.Event()  # every worker has said Ready once
        self.closing = False
        self._on_message = on_message
        self._on_available = on_available
        self._on_lost = on_lost
        self._spawn_task = spawn_task

    async def start(self) -> None:
        await asyncio.gather(*(self._spawn() for _ in range(self.size)))

    def idle(self) -> Worker | None:
        return next((w for w in self.workers if w.ready and w.busy is None), None)

    def kill(self, worker: Worker, state: TaskState, error: ErrorInfo) -> None:
        """Kill a worker and its whole process tree; its execution is to end as given."""
        worker.kill_reason = (state, error)
        for proc in _tree(worker):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _killpg(worker.pid)

    def sample_memory(self) -> list[tuple[str, int]]:
        """(execution id, bytes) for every busy worker's process tree. Blocking: off the loop."""
        return [(eid, tree_memory(w)) for w in list(self.workers) if (eid := w.busy)]

    async def shutdown(self) -> None:
        self.closing = True
        for worker in list(self.workers):
            worker.send(Shutdown())
            _end(worker)
        end = asyncio.get_running_loop().time() + 2  # each read loop reaps its worker
        while self.workers and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(0.01)

    async def _spawn(self) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, env.get("PYTHONPATH", "")) if p)
        # polars' allocator (jemalloc) keeps freed pages for seconds by default, so a worker's
        # RSS would overstate what a data task holds; return them within half a second.
        # The memory limit counts this worker's process tree: its browser sheds load before it.
        env["AESOP_MEMORY_TREE"] = "1"
        # A worker runs tasks here: a handler module's ``aesop.handler`` must register on a
        # local default client, not on the remote one $AESOP_URL would make.
        env.pop("AESOP_URL", None)
        env.pop("AESOP_TOKEN", None)
        env.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:0")
        argv = [sys.executable, "-m", "aesoperator.runtime.worker", str(child.fileno())]
        proc = subprocess.Popen(
            [*argv, str(os.getpid())],  # our pid: the worker checks it still has us as parent
            pass_fds=(child.fileno(),),
            start_new_session=True,  # its own process group: one killpg ends its browser too
            env=env,
            stdin=subprocess.DEVNULL,
        )
        child.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent)
        worker = Worker(proc=proc, writer=writer)
        with contextlib.suppress(psutil.Error):
            worker.ps = psutil.Process(proc.pid)
        self.workers.append(worker)
        self._spawn_task(self._read_loop(worker, reader))
        if self.closing:  # shutdown began while it started: its read loop reaps it
            _killpg(proc.pid)

    async def _read_loop(self, worker: Worker, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                msg: ToSupervisor = await read_frame(reader)
                try:
                    self._handle(worker, msg)
                except Exception:
                    log.exception("aesoperator: error handling a worker message")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        await self._worker_gone(worker)

    def _handle(self, worker: Worker, msg: ToSupervisor) -> None:
        if type(msg) is dict:  # the event stream: the hot path
            self._on_message(msg)
        elif isinstance(msg, Idle):
            worker.busy = None
            self._on_available()
        elif isinstance(msg, Ready):
            worker.ready = True
            if all(w.ready for w in self.workers) and len(self.workers) >= self.size:
                self.ready.set()
            self._on_available()
        elif isinstance(msg, Retire):
            worker.ready = False  # it exits now; _worker_gone replaces it
        else:
            self._on_message(msg)

    async def _worker_gone(self, worker: Worker) -> None:
        # Its socket closed: it is exiting, or (hostile code) it closed the socket and lives
        # on, which ends it too. Polled, not waited for in a thread: at interpreter exit no
        # executor takes new work, and this runs then too.
        polls = 0
        while (code := worker.proc.poll()) is None:
            if polls == 100:
                _end(worker)
            polls += 1
            await asyncio.sleep(0.01)
        _killpg(worker.pid)  # anything it left behind in its group (a browser) goes too
        with contextlib.suppress(Exception):
            worker.writer.close()
        if worker in self.workers:
            self.workers.remove(worker)
        self._on_lost(worker, code)
        if not self.closing:
            await self._spawn()


def _tree(worker: Worker) -> list[psutil.Process]:
    if worker.ps is None:
        return []
    try:
        return [worker.ps, *worker.ps.children(recursive=True)]
    except psutil.Error:
        return []


def tree_memory(worker: Worker) -> int:
    """Memory of a worker's process tree: the sum of PSS, where RSS is not conclusive.

    Summing RSS counts pages that processes share (a browser's renderers share most of theirs)
    once per process. PSS splits shared pages between their sharers, so the sum is the tree's
    real footprint. PSS costs a read of smaps per process, so it is only taken when the cheap
    RSS sum (never below PSS) is over the smallest limit that could apply.
    """
    procs = _tree(worker)
    rss = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            rss += proc.memory_info().rss
    if rss <= worker.memory_floor:
        return rss
    pss = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error, AttributeError):
            pss += proc.memory_full_info().pss
    return pss or rss


def _end(worker: Worker) -> None:
    """Kill a worker: its group, and itself should it have left the group (setsid)."""
    _killpg(worker.pid)
    with contextlib.suppress(OSError):
        worker.proc.kill()


def _killpg(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: possibly out of memory)" if name == "SIGKILL" else ""
        return f"terminated by {name}{hint}"
    return f"exited with code {code}"
