"""The Temporal backend, client side: an execution is a workflow; ``aesop worker``s run it.

``Aesoperator(backend="temporal://host:7233?namespace=default&task_queue=aesop",
store="postgresql://...")``. The client creates the execution's row in the shared store, as
with any backend, then starts the workflow ``aesop.execution`` with the execution's id as the
workflow id. Workers (``_temporal_worker``) on any machine run it and write its state to the
store; this side waits on the workflow's result to resolve ``done``, reads progress and alerts
from the store for ``on_progress``/``on_alert`` (PostgreSQL's LISTEN/NOTIFY wakes it), and
turns ``cancel`` into Temporal cancellation. Closing the client cancels nothing: executions
are durable and finish without it; a new client reads their results from the store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import UserError, WorkerCrashed, to_info
from ..execution import Alert, TaskState, TaskStatus
from ..store.base import Store
from ..task import Task
from ._watchdog import blocking
from .runner import Job

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger("aesoperator.runtime")

FOLLOW_S = 0.1  # how often executions with callbacks are read again without notifications


@dataclass(frozen=True)
class TemporalTarget:
    """Where the Temporal frontend is, and which namespace and task queue to use."""

    address: str
    namespace: str = "default"
    task_queue: str = "aesop"

    async def connect(self) -> Client:
        try:
            from temporalio.client import Client
        except ImportError:  # pragma: no cover - the extra is not installed
            raise UserError(
                "backend: temporal:// needs the temporal extra: pip install 'aesoperator[temporal]'"
            ) from None
        try:
            return await Client.connect(self.address, namespace=self.namespace)
        except Exception as exc:
            raise UserError(
                f"backend: cannot reach Temporal at {self.address} (namespace "
                f"{self.namespace!r}): {exc}; start it (for a try: `temporal server start-dev "
                "--headless`) or fix the address"
            ) from None


def parse_target(url: str) -> TemporalTarget:
    """``temporal://host:port?namespace=...&task_queue=...`` (both optional)."""
    parts = urllib.parse.urlsplit(url)
    fix = "use temporal://host:7233?namespace=default&task_queue=aesop"
    if parts.scheme != "temporal" or not parts.hostname:
        raise UserError(f"backend: got {url!r}; {fix}")
    try:
        port = parts.port or 7233
    except ValueError:
        raise UserError(f"backend: got {url!r}, whose port is not a number; {fix}") from None
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"namespace", "task_queue"})
    if unknown:
        raise UserError(f"backend: got {url!r}, with unknown parameter(s) {unknown}; {fix}")
    values = {k: v[-1] for k, v in query.items()}
    for key, value in values.items():
        if not value or len(value) > 200 or not value.isprintable():
            raise UserError(f"backend: {key}={value!r} in {url!r}; give a non-empty name")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return TemporalTarget(
        f"{host}:{port}",
        values.get("namespace", "default"),
        values.get("task_queue", "aesop"),
    )


@dataclass
class _Followed:
    """An execution of ours still running, and who listens to it."""

    done: concurrent.futures.Future[None]
    name: str
    progress_cbs: list[Callable[[TaskStatus], Any]] = field(default_factory=list)
    alert_cbs: list[Callable[[Alert], Any]] = field(default_factory=list)
    last: tuple[TaskState, float, str | None] | None = None
    alerts_seen: int = 0


class TemporalBackend:
    """The ``Backend`` of a client whose executions run as Temporal workflows."""

    def __init__(
        self,
        store: Store,
        target: TemporalTarget,
        *,
        callbacks: concurrent.futures.Executor,
    ) -> None:
        self.store = store
        self.target = target
        self._callbacks = callbacks
        self._client: Client | None = None
        self._followed: dict[str, _Followed] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        # Resolved once an execution's workflow exists on Temporal (or could not be started,
        # which its row then says): only from then on does it outlive the submitting process.
        self._started: dict[str, concurrent.futures.Future[None]] = {}

    def expect_start(self, execution_id: str) -> concurrent.futures.Future[None]:
        """From any thread, before submitting: a future resolved when the workflow is started."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._started[execution_id] = started
        return started

    def _was_started(self, execution_id: str) -> None:
        started = self._started.pop(execution_id, None)
        if started is not None and not started.done():
            started.set_result(None)

    async def start(self) -> None:
        self._client = await self.target.connect()
        self._spawn(self._follow())

    async def ready(self) -> None:
        """Workers are other processes, on other machines: nothing to wait for here."""

    def submit(self, job: Job, task: Task, done: concurrent.futures.Future[None]) -> None:
        self._followed[job.execution_id] = _Followed(done, task.name)
        self._spawn(self._run(job, task))

    async def _run(self, job: Job, task: Task) -> None:
        from temporalio.common import WorkflowIDReusePolicy

        from ._temporal_workflow import WORKFLOW, ExecutionInput

        assert self._client is not None
        cfg = task.config
        inp = ExecutionInput(
            execution_id=job.execution_id,
            task_json=job.task_json,
            planner=list(job.planner),
            project=job.project,
            llm=job.llm,
            max_duration_seconds=cfg.max_duration_seconds,
            max_retries=cfg.max_retries,
            retry_delay_seconds=cfg.retry_delay_seconds,
        )
        eid = job.execution_id
        try:
            handle = await self._client.start_workflow(
                WORKFLOW,
                inp,
                id=eid,
                task_queue=self.target.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            self._was_started(eid)
            with contextlib.suppress(Exception):  # how it ended is in the store
                await handle.result()
        except asyncio.CancelledError:  # the client closes: the execution goes on without it
            self._followed.pop(eid, None)
            raise
        except Exception as exc:
            await blocking(self._end_unrun, eid, str(exc))
            self._was_started(eid)
        await self._ended(eid)

    def _status(self, execution_id: str) -> TaskStatus:
        return self.store.status(execution_id, with_alerts=False)

    def _end_unrun(self, execution_id: str, why: str) -> None:
        error = to_info(WorkerCrashed(f"the workflow could not be started on Temporal: {why}"))
        with contextlib.suppress(RuntimeError):
            self.store.transition(execution_id, TaskState.FAILED, error=error)

    async def _ended(self, execution_id: str) -> None:
        status = await blocking(self._status, execution_id)
        if not status.state.finished:
            # The workflow ended without recording it (terminated by hand, or timed out):
            # the store must not keep a running execution nobody runs.
            error = to_info(WorkerCrashed("the execution's Temporal workflow ended without it"))
            with contextlib.suppress(RuntimeError):
                await blocking(self.store.transition, execution_id, TaskState.FAILED, None, error)
        followed = self._followed.get(execution_id)
        if followed is not None:
            await self._refresh(execution_id, followed)
            self._followed.pop(execution_id, None)
            if not followed.done.done():
                followed.done.set_result(None)

    def cancel(self, execution_id: str, reason: str = "cancel") -> bool:
        if execution_id not in self._followed and self._client is None:
            return False
        self._spawn(self._cancel(execution_id))
        return execution_id in self._followed

    async def _cancel(self, execution_id: str) -> None:
        assert self._client is not None
        with contextlib.suppress(Exception):  # ended already, or never started
            await self._client.get_workflow_handle(execution_id).cancel()

    def add_callback(
        self, execution_id: str, kind: Literal["progress", "alert"], fn: Callable[[Any], Any]
    ) -> bool:
        followed = self._followed.get(execution_id)
        if followed is None:
            return False
        if kind == "alert":
            followed.alert_cbs.append(fn)
            for alert in self.store.alerts(execution_id)[: followed.alerts_seen]:
                self._callback(fn, alert)
        else:
            followed.progress_cbs.append(fn)
        self._wake.set()
        return True

    async def _follow(self) -> None:
        """Read the state of executions someone listens to, and call their callbacks."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FOLLOW_S)
            self._wake.clear()
            for eid, followed in list(self._followed.items()):
                if followed.progress_cbs or followed.alert_cbs:
                    try:
                        await self._refresh(eid, followed)
                    except Exception:
                        log.exception("aesoperator: cannot read %s for its callbacks", eid)

    async def _refresh(self, execution_id: str, followed: _Followed) -> None:
        if followed.progress_cbs:
            status = await blocking(self._status, execution_id)
            now = (status.state, status.progress, status.current_action)
            if now != followed.last:
                followed.last = now
                for fn in list(followed.progress_cbs):
                    self._callback(fn, status)
        if followed.alert_cbs:
            alerts = await blocking(self.store.alerts, execution_id)
            for alert in alerts[followed.alerts_seen :]:
                for alert_fn in list(followed.alert_cbs):
                    self._callback(alert_fn, alert)
            followed.alerts_seen = len(alerts)

    def _callback(self, fn: Callable[[Any], Any], arg: Any) -> None:
        from .supervisor import _safe_call

        with contextlib.suppress(RuntimeError):  # the interpreter is exiting
            self._callbacks.submit(_safe_call, fn, arg)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        """Stop following; the executions themselves go on, on the workers."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        for eid, started in list(self._started.items()):  # no submitter waits forever
            if not started.done():
                started.set_exception(
                    UserError(f"the client was closed before execution {eid} was started")
                )
        self._started.clear()


def check_task(task: Task) -> None:
    """What the Temporal backend cannot take, refused before anything is created."""
    if task.secrets:
        raise UserError(
            "secrets: not supported with the Temporal backend yet: a workflow's input is "
            "written into Temporal's history, and secrets are never stored; run tasks with "
            "secrets on a local client (backend='process')"
        )
