"""``aesop worker``: a Temporal worker that runs executions in this machine's worker pool.

The planner runs where it runs today — in a warm, isolated worker process of a
``LocalBackend``, under the same limits (memory of the process tree, time, pages, policy) —
and the Temporal activity around it only hands the job over, heartbeats progress and the
current action, and turns a Temporal cancellation into a cancel. The store (PostgreSQL,
shared by every worker and client) keeps the state; Temporal keeps the execution alive: when
this process dies, the activity's heartbeats stop and Temporal runs it again on another
worker, where completed ``ctx.step`` results are read back instead of run again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from ..errors import ErrorInfo, TaskCancelled, TimeLimitExceeded, WorkerCrashed, to_info
from ..execution import TaskState, TaskStatus
from ..planning import router
from ..planning.plan import check_actions
from ..store.base import EventRecord, Store
from ..task import Task
from ._local import LocalBackend
from ._temporal import TemporalTarget
from ._temporal_workflow import (
    END_ACTIVITY,
    FAST_ACTIVITY,
    FAST_BUDGET_S,
    HEARTBEAT_EVERY_S,
    RUN_ACTIVITY,
    EndInput,
    ExecutionInput,
    ExecutionWorkflow,
    FastResult,
)
from ._watchdog import blocking
from ._webhook import Hook, notify_end
from .runner import Job, Registry
from .supervisor import Record

log = logging.getLogger("aesoperator.worker")

_ERRORS: dict[str, type[Exception]] = {
    "TaskCancelled": TaskCancelled,
    "TimeLimitExceeded": TimeLimitExceeded,
    "WorkerCrashed": WorkerCrashed,
}


# A worker's state writes wait this long to share a transaction (the local default is 1 ms):
# with executions ending every few milliseconds, a short one's start and end then mostly go
# in one, as do those of its neighbours, for about a sixth less worker CPU per execution
# (bench/temporal_throughput.py) at 20 ms more before its end is seen.
WORKER_FLUSH_DELAY_S = 0.02


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def own_queue(task_queue: str, identity: str) -> str:
    """The task queue only this worker polls: where the run a local activity started here is
    followed once it outlasts ``FAST_BUDGET_S``."""
    return f"{task_queue}/{identity}"


class ExecutionActivities:
    """The activities, over one local backend (this machine's worker pool)."""

    def __init__(
        self,
        backend: LocalBackend,
        store: Store,
        store_url: str,
        handlers: Callable[[], tuple[str, Registry]],
        llm: str | None = None,
        webhooks: Callable[[Task], Hook | None] | None = None,
    ) -> None:
        self.backend = backend
        self.store = store
        self.store_url = store_url
        self.handlers = handlers
        self.llm = llm
        self.webhooks = webhooks
        self.queue = ""  # this worker's own task queue (run_worker sets it)
        # Runs started here, until they end: a regular activity on the own queue follows them.
        self._here: dict[str, tuple[Record, asyncio.Future[None]]] = {}

    def _route(self, task: Task, inp: ExecutionInput) -> tuple[str, str]:
        """The planner, chosen here: the handlers are this worker's (``--import``)."""
        if inp.planner[0] != "auto":
            return inp.planner[0], inp.planner[1]
        registry = self.handlers()[1]
        kind, name = router.choose(task, registry.handlers, bool(inp.llm or self.llm))
        if task.plan is not None and kind == "plan":
            check_actions(task.plan, registry.functions)
        return kind, name

    @activity.defn(name=FAST_ACTIVITY)
    async def run_fast(self, inp: ExecutionInput) -> FastResult:
        """The local activity: start the execution here and wait ``FAST_BUDGET_S`` for its
        end; past that, leave it running and name this worker's queue to follow it on."""
        # One already running was run by a worker that was lost (its workflow task timed
        # out): a regular activity resumes it, under the task's retry policy.
        started = await self._start_unless_ended(inp, resume=False)
        if started is None:
            return FastResult()
        if isinstance(started, str):
            return FastResult(started)
        record, waiter = started
        try:
            await asyncio.wait([waiter], timeout=FAST_BUDGET_S)
        except asyncio.CancelledError:
            await self._cancelled(inp.execution_id, waiter)
            raise
        return FastResult(record.state.value) if waiter.done() else FastResult(queue=self.queue)

    @activity.defn(name=RUN_ACTIVITY)
    async def run_execution(self, inp: ExecutionInput) -> str:
        """The regular activity: follow the run started here, or start (resume) it."""
        here = self._here.get(inp.execution_id) or await self._start_unless_ended(inp, resume=True)
        if isinstance(here, str):
            return here
        assert here is not None  # resume=True: one already running is resumed here
        record, waiter = here
        try:
            while not waiter.done():
                await asyncio.wait([waiter], timeout=HEARTBEAT_EVERY_S)
                activity.heartbeat(record.progress, record.current_action)
        except asyncio.CancelledError:
            await self._cancelled(inp.execution_id, waiter)
            raise
        return record.state.value

    async def _start_unless_ended(
        self, inp: ExecutionInput, *, resume: bool
    ) -> tuple[Record, asyncio.Future[None]] | str | None:
        """Start the execution here; its final state if it has ended (a run whose completion
        Temporal did not hear) or cannot run; None if it is running and ``resume`` is off."""
        status = await blocking(self._status, inp.execution_id)
        if status.state.finished:
            return status.state.value
        if status.state is TaskState.RUNNING and not resume:
            return None
        return await self._start(inp, status)

    async def _start(
        self, inp: ExecutionInput, status: TaskStatus
    ) -> tuple[Record, asyncio.Future[None]] | str:
        """Start the execution in this machine's pool; its final state if it cannot run."""
        info = activity.info()
        resumed = status.state is TaskState.RUNNING
        if resumed:
            self.backend.writer.write(
                EventRecord(
                    inp.execution_id,
                    "resumed",
                    {
                        "attempt": info.attempt,
                        "worker": worker_identity(),
                        "reason": "the worker that ran it stopped, or was lost (no heartbeat, "
                        "or its workflow task timed out)",
                    },
                )
            )
        task = Task.model_validate_json(inp.task_json)
        if task.webhook_url and self.webhooks is not None and self.webhooks(task) is None:
            self.backend.writer.write(
                EventRecord(
                    inp.execution_id,
                    "webhook_skipped",
                    {
                        "reason": "this worker has no key to sign the end-of-execution webhook: "
                        "start aesop worker with $AESOP_WEBHOOK_SECRET set",
                    },
                )
            )
        try:
            planner = self._route(task, inp)
        except Exception as exc:  # no planner for it here, an unknown plan action...
            await self._end_here(inp.execution_id, TaskState.FAILED, to_info(exc))
            return TaskState.FAILED.value
        job = Job(
            execution_id=inp.execution_id,
            task_json=inp.task_json,
            planner=planner,
            data_dir=self.store_url,
            llm=inp.llm or self.llm,
            project=inp.project,
            durable_steps=True,  # a retry on another worker reads completed steps back
            secrets=inp.secrets,
            # The client's directory where this machine has it (a shared mount, or the same
            # machine), so relative paths mean what they meant there; else the worker's own.
            cwd=inp.cwd if inp.cwd and os.path.isdir(inp.cwd) else None,
        )
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.backend.submit(job, task, done, resumed=resumed)
        record = self.backend.records[inp.execution_id]  # its state is the stored one at the end
        eid = inp.execution_id
        waiter = asyncio.wrap_future(done)
        self._here[eid] = (record, waiter)
        waiter.add_done_callback(lambda _: self._here.pop(eid, None))
        return record, waiter

    def abandon_all(self) -> None:
        """This worker stops: hand back every run it started, unended (another resumes it)."""
        for execution_id in list(self._here):
            self.backend.abandon(execution_id)
        self._here.clear()

    async def _cancelled(self, execution_id: str, waiter: asyncio.Future[None]) -> None:
        """The activity running ``execution_id`` is being cancelled: say why, by how it ends."""
        why = activity.cancellation_details()
        if why is None or not why.cancel_requested or why.worker_shutdown:
            # Not a cancel of the execution: this worker shuts down, or Temporal gave the
            # activity up (timed out, or retried elsewhere while this one could not
            # heartbeat). Hand it back unended, and leave the end to the attempt or the
            # workflow that owns it now (completed steps are kept). A failure, not a
            # cancellation, so that the workflow runs it again elsewhere at once.
            self.backend.abandon(execution_id)
            self._here.pop(execution_id, None)
            raise ApplicationError(
                f"worker {worker_identity()} stopped running execution {execution_id} "
                "(shutting down, or Temporal gave the attempt up)",
                type="WorkerShutdown",
                category=ApplicationErrorCategory.BENIGN,  # not logged as a failure
            )
        # The workflow was cancelled: end it the way a local cancel does.
        self.backend.cancel(execution_id)
        with contextlib.suppress(Exception):
            await asyncio.shield(waiter)

    def _status(self, execution_id: str) -> TaskStatus:
        return self.store.status(execution_id, with_alerts=False)

    @activity.defn(name=END_ACTIVITY)
    async def end_execution(self, end: EndInput) -> None:
        error: ErrorInfo = to_info(_ERRORS.get(end.error, WorkerCrashed)(end.message))
        await self._end_here(end.execution_id, TaskState(end.state), error)

    async def _end_here(self, execution_id: str, state: TaskState, error: ErrorInfo) -> None:
        """End an execution no runner ended, and deliver its end-of-execution webhook as a
        runner's end would: if this call ended it, or if it never ran (a cancel accepted while
        it was pending ends it in the store at once, with no runner to tell anyone)."""
        ended = await blocking(self._end, execution_id, state, error)
        if self.webhooks is None:
            return
        status = await blocking(self._status, execution_id)
        if not ended and status.started_at is not None:
            return  # ended by its runner, which delivered the webhook
        task = Task.model_validate_json(await blocking(self.store.task_json, execution_id))
        hook = self.webhooks(task)
        if hook is not None:  # in the background: its retries must not hold the activity
            self.backend.spawn_task(notify_end(status, task, hook, self.backend.writer))

    def _end(self, execution_id: str, state: TaskState, error: ErrorInfo) -> bool:
        # False if it had ended already: the first end stands (an unfinished execution may
        # always move to failed or cancelled).
        if state is TaskState.CANCELLED:
            # A workflow cancelled in Temporal alone, whose run may still go on somewhere:
            # the request reaches the worker running it (NOTIFY), which stops it.
            self.store.request_cancel(execution_id)
        return self.store.transition(execution_id, state, error=error)


async def run_worker(
    target: TemporalTarget,
    store: Store,
    store_url: str,
    *,
    pool_size: int,
    handlers: Callable[[], tuple[str, Registry]],
    callbacks: concurrent.futures.Executor,
    webhooks: Callable[[Task], Hook | None] | None = None,
    llm: str | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[], Any] | None = None,
) -> None:
    """Serve ``target``'s task queue until ``stop`` is set (or SIGTERM/SIGINT)."""
    identity = worker_identity()
    backend = LocalBackend(
        store,
        pool_size=pool_size,
        owner=f"temporal:{identity}",
        handlers=handlers,
        callbacks=callbacks,
        webhooks=webhooks,
        flush_delay_s=WORKER_FLUSH_DELAY_S,
    )
    await backend.start()
    client = await target.connect()
    acts = ExecutionActivities(backend, store, store_url, handlers, llm, webhooks)
    acts.queue = own_queue(target.task_queue, identity)
    worker = Worker(
        client,
        task_queue=target.task_queue,
        workflows=[ExecutionWorkflow],
        activities=[acts.run_fast, acts.run_execution, acts.end_execution],
        max_concurrent_activities=pool_size + 1,  # + 1: an end_execution is never stuck
        # A local activity holds its workflow task while it runs: no more of them than
        # the pool runs at once, and the other workers take the rest.
        max_concurrent_local_activities=pool_size,
        identity=identity,
        graceful_shutdown_timeout=timedelta(seconds=5),
        # A workflow's later tasks go to the worker that ran its first (it has the workflow
        # cached); when that worker is gone, another takes them after this long.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
        # The sandbox re-imports the workflow module for every workflow run: a third of this
        # worker's CPU per short task (bench/temporal_throughput.py). _temporal_workflow only
        # imports temporalio and the standard library and keeps no state outside the
        # workflow instance, which is what the sandbox would otherwise check.
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    # Follows the runs that outlast their local activity here (no limit: they hold no
    # slot of their own, the pool does).
    follower = Worker(
        client,
        task_queue=acts.queue,
        activities=[acts.run_execution],
        max_concurrent_activities=1000,
        identity=identity,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    await backend.ready()

    def cancelled(kind: str, execution_id: str) -> None:  # the listener's thread
        if kind == "cancel":  # accepted by any client: stop it now, not at the next poll
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(backend.cancel, execution_id)

    listener = store.listen(cancelled, cancels_only=True)
    try:
        # Left in reverse order: the shared queue's worker stops polling (and hands its runs
        # back) before the follower hands back the runs it follows, so that this worker
        # cannot take those up again on the shared queue while it stops.
        async with follower, worker:
            if ready is not None:
                ready()
            await stop.wait()
    finally:
        # Runs no activity follows any more (one a local activity left running) are handed
        # back, not cancelled by the pool's shutdown.
        acts.abandon_all()
        if listener is not None:
            await blocking(listener.close)
        await backend.shutdown()
