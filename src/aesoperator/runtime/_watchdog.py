"""The watchdog: the limits a task cannot be trusted to keep, checked from outside it.

Several times a second it ends executions past ``max_duration_seconds`` (a cooperative cancel
first, then the backend's hard stop), escalates cancels that were not obeyed within the grace
period, samples worker memory against ``max_memory_mb``, picks up cancel requests other
processes (the CLI) left in the store, and stores throttled ``set_current_action`` labels.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import MemoryLimitExceeded, TimeLimitExceeded, to_info
from ..execution import TaskState
from ..store.base import CurrentAction

if TYPE_CHECKING:
    from .supervisor import Supervisor

log = logging.getLogger("aesoperator.runtime")
T = TypeVar("T")

CANCEL_GRACE_S = 1.0  # cooperative cancel first; after this the execution is ended by force
MEMORY_SAMPLE_S = 0.15
CANCEL_POLL_S = 0.25  # cancel requests from other processes (CLI) arrive through the store
LABEL_WRITE_S = 0.2  # set_current_action is stored at most this often
TICK_S = 0.05


class Watchdog:
    """Watches a supervisor's executions until it closes.

    ``sample_memory`` (blocking, run off the loop) gives ``(execution id, bytes)`` for what
    runs in processes of its own; without it (inline) no memory limit is enforced.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        sample_memory: Callable[[], list[tuple[str, int]]] | None = None,
    ) -> None:
        self._sup = supervisor
        self._sample_memory = sample_memory

    async def run(self) -> None:
        sup = self._sup
        last_mem = last_cancel = last_label = 0.0
        while not sup.closing:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            if now - last_label >= LABEL_WRITE_S:
                last_label = now
                for rec in sup.records.values():
                    if rec.label_dirty and not rec.state.finished:
                        rec.label_dirty = False
                        sup.writer.write(CurrentAction(rec.id, rec.current_action))
                        sup.notify_progress(rec)
            for rec in list(sup.records.values()):
                if rec.state is not TaskState.RUNNING or rec.parent is not None:
                    continue
                if rec.kill_at is not None and now >= rec.kill_at:
                    rec.kill_at = None
                    sup.force_end(rec)
                elif rec.deadline is not None and now >= rec.deadline:
                    rec.kill_reason = (TaskState.FAILED, to_info(TimeLimitExceeded(
                        f"max_duration_seconds={rec.task.config.max_duration_seconds:g} reached "
                        "(the task did not stop by itself and was killed)")))  # fmt: skip
                    sup.cancel(rec.id, reason="time")
                    rec.kill_at = now + CANCEL_GRACE_S
                    rec.deadline = None
            if self._sample_memory is not None and now - last_mem >= MEMORY_SAMPLE_S:
                last_mem = now
                await self._check_memory(self._sample_memory)
            if now - last_cancel >= CANCEL_POLL_S:
                last_cancel = now
                ids = [r.id for r in sup.records.values() if r.parent is None]
                try:
                    requested = await blocking(sup.store.cancel_requests, ids)
                except Exception:  # a database locked for long: the limits must hold anyway
                    log.exception("aesoperator: could not read cancel requests")
                    requested = []
                for eid in requested:
                    sup.cancel(eid)

    async def _check_memory(self, sample: Callable[[], list[tuple[str, int]]]) -> None:
        records = self._sup.records
        if not any(r.state is TaskState.RUNNING and r.parent is None for r in records.values()):
            return
        for eid, used in await blocking(sample):
            rec = records.get(eid)
            if rec is None or rec.state.finished:
                continue
            limit = rec.task.config.max_memory_mb
            if used > limit * 1024 * 1024:
                error = MemoryLimitExceeded(
                    f"the execution's processes used {used / 1048576:.0f} MB, over "
                    f"max_memory_mb={limit}; raise the limit or process less at once"
                )
                self._sup.force_end(rec, (TaskState.FAILED, to_info(error)))


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work off the loop; on it, once the interpreter is exiting.

    From then on ``concurrent.futures`` refuses new work, and the runtime still has to end
    its executions and reap its workers (the ``atexit`` close of a script that never closed).
    """
    try:
        fut = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
        return fn(*args)
    return await fut
