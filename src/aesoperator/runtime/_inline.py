"""The inline backend (``isolation="inline"``): executions run on the runtime loop itself.

For debugging: a breakpoint in a handler just works. Cancel is cooperative only and no
memory limit holds; a task that ignores its cancel is given up on, not killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from typing import Any

from ..errors import ErrorInfo
from ..execution import TaskState
from .protocol import ToSupervisor
from .runner import CancelToken, Runner
from .supervisor import Record, Supervisor


class InlineBackend(Supervisor):
    """The supervisor over a ``Runner`` in this process, ``pool_size`` executions at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runner: Runner | None = None

    async def _open(self) -> None:
        assert self._loop is not None
        self._runner = Runner(self._send, self._loop)

    def _send(self, msg: ToSupervisor) -> None:
        assert self._loop is not None
        # RuntimeError: the client is closed; a handler thread abandoned then may still report.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.on_message, msg)

    async def _close(self, running: list[Record]) -> None:
        if "aesoperator.web._browser" in sys.modules:
            # Inline tasks share this process's Chromium: close it with the client.
            from ..web import shutdown_browser

            with contextlib.suppress(Exception):
                await asyncio.wait_for(shutdown_browser(), 5)

    def _can_start(self) -> bool:
        busy = sum(1 for r in self.records.values() if r.token and not r.state.finished)
        return busy < self.pool_size

    def _launch(self, rec: Record) -> None:
        assert self._runner is not None
        rec.token = CancelToken()
        _version, registry = self._handlers()
        job = dataclasses.replace(rec.job, registry=registry)
        self.spawn_task(self._runner.run(job, rec.token))

    def _interrupt(self, rec: Record, reason: str) -> None:
        if rec.token is not None:
            rec.token.cancel(reason)
            if rec.token.task is not None:
                rec.token.task.cancel()

    def _kill(self, rec: Record, state: TaskState, error: ErrorInfo) -> None:
        self.finish(rec, state, None, error)  # nothing to kill: the execution is given up on
