"""The local backend (the default): each execution runs in a warm worker process.

Memory limits, hard cancel and crash isolation hold here, because a worker's whole process
tree can be measured and killed from outside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.machinery
import sys
from typing import Any

import cloudpickle

from ..errors import ErrorInfo, TaskCancelled, WorkerCrashed, to_info
from ..execution import TaskState
from ._pool import Worker, WorkerPool, describe_exit
from ._watchdog import Watchdog
from .protocol import Cancel, Run
from .runner import Registry
from .supervisor import Record, Supervisor


class LocalBackend(Supervisor):
    """The supervisor over a ``WorkerPool`` of ``pool_size`` processes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = WorkerPool(
            self.pool_size,
            on_message=self.on_message,
            on_available=self._dispatch,
            on_lost=self._worker_lost,
            spawn_task=self.spawn_task,
        )
        self._blob_cache: tuple[str, bytes] | None = None

    async def _open(self) -> None:
        await self.pool.start()

    async def ready(self) -> None:
        await self.pool.ready.wait()

    def _watchdog(self) -> Watchdog:
        return Watchdog(self, self.pool.sample_memory)

    async def shutdown(self) -> None:
        self.pool.closing = True  # a worker that dies from now on is not replaced
        await super().shutdown()

    async def _close(self, running: list[Record]) -> None:
        for rec in running:
            if rec.worker is not None:
                self._kill(rec, TaskState.CANCELLED, to_info(TaskCancelled("client closed")))
        await self.pool.shutdown()

    def _can_start(self) -> bool:
        return self.pool.idle() is not None

    def _launch(self, rec: Record) -> None:
        worker = self.pool.idle()
        assert worker is not None
        rec.worker = worker
        worker.busy = rec.id
        worker.memory_floor = rec.task.config.max_memory_mb * 1024 * 1024
        try:
            version, blob = self._handlers_blob()
        except Exception as exc:
            worker.busy = None
            self.finish(
                rec, TaskState.FAILED, None,
                to_info(WorkerCrashed(
                    f"the registered handlers could not be sent to a worker process ({exc}); "
                    "make them importable or picklable, or use Aesoperator(isolation='inline')"
                )),
            )  # fmt: skip
            self._dispatch()
            return
        send_blob = worker.handlers_version != version
        worker.handlers_version = version
        # The registry travels once per version, as a blob; the job goes without it.
        job = dataclasses.replace(rec.job, registry=Registry())
        worker.send(Run(job, sys.path, version, blob if send_blob else None))

    def _interrupt(self, rec: Record, reason: str) -> None:
        if rec.worker is not None:
            rec.worker.send(Cancel(rec.id, reason))

    def _kill(self, rec: Record, state: TaskState, error: ErrorInfo) -> None:
        worker = rec.worker
        if worker is not None and worker.busy == rec.id:
            self.pool.kill(worker, state, error)
        self.finish(rec, state, None, error)

    def abandon(self, execution_id: str) -> None:
        """Stop running ``execution_id`` here and record nothing: another host takes it over
        (a Temporal worker shutting down hands its executions back this way)."""
        rec = self.records.pop(execution_id, None)
        if rec is None:
            return
        with contextlib.suppress(ValueError):
            self._queue.remove(rec)
        for child in [r for r in self.records.values() if r.parent == execution_id]:
            self.records.pop(child.id, None)
        if rec.worker is not None and rec.worker.busy == rec.id:
            # Its record is gone, so the loss of the process ends nothing in the store.
            self.pool.kill(rec.worker, TaskState.FAILED, to_info(WorkerCrashed("abandoned")))

    def _worker_lost(self, worker: Worker, code: int) -> None:
        rec = self.records.get(worker.busy) if worker.busy else None
        if rec is None or rec.state.finished:
            return
        if worker.kill_reason is not None:
            state, error = worker.kill_reason
        else:
            state, error = TaskState.FAILED, to_info(WorkerCrashed(
                f"the worker process (pid {worker.pid}) died while running this "
                f"execution: {describe_exit(code)}"))  # fmt: skip
        self.finish(rec, state, None, error)

    def _handlers_blob(self) -> tuple[str, bytes]:
        version, registry = self._handlers()
        if self._blob_cache is None or self._blob_cache[0] != version:
            for fn in (*registry.handlers.values(), *registry.functions.values()):
                _by_value_if_unimportable(fn)
            self._blob_cache = (version, cloudpickle.dumps(registry))
        return self._blob_cache


def _by_value_if_unimportable(fn: Any) -> None:
    """Ship a handler's code by value when a fresh interpreter could not import its module.

    ``__main__`` (scripts, notebooks) is pickled by value by cloudpickle already; modules
    loaded from a file path (pytest, ``runpy``, exec'd plugins) need the same treatment.
    """
    name = getattr(fn, "__module__", None)
    module = sys.modules.get(name or "")
    if not name or name == "__main__" or module is None:
        return
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names:
        return
    if importlib.machinery.PathFinder.find_spec(top, sys.path) is None:
        cloudpickle.register_pickle_by_value(module)
