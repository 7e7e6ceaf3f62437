"""The Temporal backend, client side: an execution is a workflow; ``aesop worker``s run it.

``Aesoperator(backend="temporal://host:7233?namespace=default&task_queue=aesop",
store="postgresql://...")``. The client creates the execution's row in the shared store, as
with any backend, then starts the workflow ``aesop.execution`` with the execution's id as the
workflow id. Workers (``_temporal_worker``) on any machine run it and write its state to the
store; this side hears the end, progress and alerts from the store (PostgreSQL's
LISTEN/NOTIFY), resolves ``done`` and calls ``on_progress``/``on_alert`` from it, and turns
``cancel`` into Temporal cancellation. Closing the client cancels nothing: executions
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
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from ..errors import UserError, WorkerCrashed, to_info
from ..execution import Alert, TaskState, TaskStatus
from ..store.base import Listener, Store
from ..task import Task
from ._watchdog import blocking
from .runner import Job

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger("aesoperator.runtime")

FOLLOW_S = 0.1  # how often executions with callbacks are read, where the store cannot notify
SAFETY_S = 2.0  # and where it can: a notification wakes the follower at once
LONG_POLL_AFTER_S = 5.0  # an execution still running then is also watched on Temporal


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
        import dataclasses

        from temporalio.converter import DataConverter

        from ._temporal_codec import SealingCodec, key_from_env

        # Sealed with $AESOP_TEMPORAL_KEY where set; unsealed ones pass through either way.
        converter = dataclasses.replace(
            DataConverter.default, payload_codec=SealingCodec(key_from_env())
        )
        try:
            client = await Client.connect(
                self.address, namespace=self.namespace, data_converter=converter
            )
        except Exception as exc:
            raise UserError(
                f"backend: cannot reach Temporal at {self.address} (namespace "
                f"{self.namespace!r}): {exc}; start it (for a try: `temporal server start-dev "
                "--headless`) or fix the address"
            ) from None
        await self._check_namespace(client)
        return client

    async def _check_namespace(self, client: Client) -> None:
        """A namespace that does not exist fails every start later, less clearly: say it now."""
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.service import RPCError, RPCStatusCode

        try:
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=self.namespace)
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            raise UserError(
                f"backend: Temporal at {self.address} has no namespace {self.namespace!r}; "
                f"create it (`temporal operator namespace create --namespace "
                f"{self.namespace}`) or fix namespace= in the backend URL"
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
    progress_cbs: list[Callable[[TaskStatus], Any]] = field(default_factory=list)
    alert_cbs: list[Callable[[Alert], Any]] = field(default_factory=list)
    last: tuple[TaskState, float, str | None] | None = None
    alerts_seen: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # the store has its end


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
        self._dirty: set[str] = set()  # followed ids a notification says changed
        self._listener: Listener | None = None
        self._ending: set[str] = set()  # followed ids whose state changed: ended?
        self._ending_wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
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
        self._loop = asyncio.get_running_loop()
        self._client = await self.target.connect()
        try:  # ends, progress and alerts come from the store's NOTIFY, not Temporal polls
            self._listener = await blocking(self.store.listen, self._notified)
        except Exception:
            log.exception("aesoperator: cannot listen to the store; asking Temporal instead")
        self._spawn(self._follow())
        self._spawn(self._check_ends())

    async def ready(self) -> None:
        """Workers are other processes, on other machines: nothing to wait for here."""

    def submit(self, job: Job, task: Task, done: concurrent.futures.Future[None]) -> None:
        self._followed[job.execution_id] = _Followed(done)
        self._spawn(self._run(job, task))

    async def _run(self, job: Job, task: Task) -> None:
        from temporalio.common import WorkflowIDReusePolicy

        from ._temporal_workflow import WORKFLOW, WORKFLOW_TASK_TIMEOUT_S, ExecutionInput

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
            cwd=job.cwd,
            secrets=job.secrets,  # check_task: only where payloads are sealed
        )
        eid = job.execution_id
        try:
            handle = await self._client.start_workflow(
                WORKFLOW,
                inp,
                id=eid,
                task_queue=self.target.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # The first task runs the planner's local activity: a lost worker's is
                # retried on another after this long.
                task_timeout=timedelta(seconds=WORKFLOW_TASK_TIMEOUT_S),
            )
            self._was_started(eid)
            stored_end = await self._until_ended(eid, handle)
        except asyncio.CancelledError:  # the client closes: the execution goes on without it
            self._followed.pop(eid, None)
            raise
        except Exception as exc:
            await blocking(self._fail, eid, f"the workflow could not be started on Temporal: {exc}")
            self._was_started(eid)
            stored_end = True
        await self._ended(eid, stored_end)

    async def _until_ended(self, execution_id: str, handle: Any) -> bool:
        """Until the store has the execution's end (True), or its workflow closed (False:
        maybe without one).

        The store's NOTIFY says when it ends: no Temporal call per execution, which on a busy
        server is a long poll and a history read each. Past ``LONG_POLL_AFTER_S`` Temporal is
        asked too, for a workflow that closes without recording its end (terminated by hand).
        """
        followed = self._followed.get(execution_id)
        if followed is None or self._listener is None:
            await _closed(handle)
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(followed.ended.wait(), LONG_POLL_AFTER_S)
            return True
        waits = [
            asyncio.ensure_future(followed.ended.wait()),
            asyncio.ensure_future(_closed(handle)),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return followed.ended.is_set()

    async def _check_ends(self) -> None:
        """Read the state of executions a notification says changed; wake those that ended."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ending_wake.wait(), SAFETY_S)
            self._ending_wake.clear()
            ids, self._ending = self._ending, set()
            ids &= set(self._followed)
            if not ids:
                continue
            try:
                ended = await blocking(self.store.ended, sorted(ids))
            except Exception:
                log.exception("aesoperator: cannot read the state of %d executions", len(ids))
                self._ending |= ids  # again at the next wake-up
                continue
            for eid in ended:
                followed = self._followed.get(eid)
                if followed is not None:
                    followed.ended.set()

    def _status(self, execution_id: str) -> TaskStatus:
        return self.store.status(execution_id, with_alerts=False)

    def _fail(self, execution_id: str, message: str) -> None:
        """End it ``failed`` as nobody else will (a no-op if it has ended meanwhile)."""
        error = to_info(WorkerCrashed(message))
        self.store.transition(execution_id, TaskState.FAILED, error=error)

    async def _ended(self, execution_id: str, stored_end: bool) -> None:
        """``stored_end``: the store has its end; else it may not (the workflow closed)."""
        if not stored_end and not (await blocking(self._status, execution_id)).state.finished:
            # The workflow ended without recording it (terminated by hand, or timed out):
            # the store must not keep a running execution nobody runs.
            await blocking(
                self._fail, execution_id, "the execution's Temporal workflow ended without it"
            )
        followed = self._followed.get(execution_id)
        if followed is not None:
            await self._refresh(execution_id, followed)
            self._followed.pop(execution_id, None)
            if not followed.done.done():
                followed.done.set_result(None)

    def cancel(self, execution_id: str, reason: str = "cancel") -> bool:
        """Cancel the workflow, whoever started it (its worker also hears the store's NOTIFY)."""
        if self._client is None:
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
        self._dirty.add(execution_id)
        self._wake.set()
        return True

    def _notified(self, kind: str, execution_id: str) -> None:
        """From the listener's thread: a change committed by any process."""
        if kind in ("progress", "alert", "state", "resync") and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self._loop.call_soon_threadsafe(self._mark, kind, execution_id)

    def _mark(self, kind: str, execution_id: str) -> None:
        if kind == "resync":  # anything may have changed while the connection was down
            self._dirty.update(self._followed)
            self._ending.update(self._followed)
            self._ending_wake.set()
        elif execution_id in self._followed:
            self._dirty.add(execution_id)
            if kind == "state":
                self._ending.add(execution_id)
                self._ending_wake.set()
        else:
            return
        self._wake.set()

    async def _follow(self) -> None:
        """Read the state of executions someone listens to, and call their callbacks."""
        while True:
            # Notified: a change wakes it; the timeout is a safety net. Else: poll.
            every = FOLLOW_S if self._listener is None else SAFETY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), every)
            self._wake.clear()
            if self._listener is not None and self._dirty:
                dirty, self._dirty = self._dirty, set()
            else:
                dirty = set(self._followed)
            for eid in dirty:
                followed = self._followed.get(eid)
                if followed is not None and (followed.progress_cbs or followed.alert_cbs):
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
        if self._listener is not None:
            await blocking(self._listener.close)
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


async def _closed(handle: Any) -> None:
    """Wait until the workflow has closed, however it ended (the store says how). Losing
    the server is not an end: a restarted Temporal still has the workflow."""
    from temporalio.client import WorkflowFailureError
    from temporalio.service import RPCError, RPCStatusCode

    while True:
        try:
            await handle.result()
            return
        except WorkflowFailureError:  # failed, cancelled, terminated or timed out: closed
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
                return  # gone from Temporal (past its retention): nothing more to wait for
            log.info("aesoperator: waiting on %s: %s; trying again", handle.id, exc)
            await asyncio.sleep(1.0)


def check_task(task: Task) -> None:
    """What the Temporal backend cannot take, refused before anything is created."""
    if task.webhook_secret is not None:
        raise UserError(
            "webhook_secret: not carried to the workers on the Temporal backend (a workflow's "
            "input is written into Temporal's history, and a secret is never stored): give "
            "the task only its webhook_url, and the workers the key in $AESOP_WEBHOOK_SECRET"
        )
    if task.secrets:
        from ._temporal_codec import KEY_ENV, key_from_env

        if key_from_env() is None:
            raise UserError(
                f"secrets: a workflow's input is written into Temporal's history, and secrets "
                f"are never stored in the clear: set ${KEY_ENV} (the same random string on "
                "every client and worker) so that what goes through Temporal is sealed, or run "
                "tasks with secrets on a local client (backend='process')"
            )
