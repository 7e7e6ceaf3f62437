"""The supervisor: what every backend on this machine shares, above how it runs the code.

It lives on the client's runtime thread (an asyncio loop of its own). Runners report what
happens as ``runtime.protocol`` messages; the supervisor keeps one ``Record`` per execution,
turns messages into stored state (through the ``StateWriter``), callbacks and futures, and
has the ``Watchdog`` enforce the limits. How jobs run is left to a subclass — the worker
pool (``_local.LocalBackend``) or this process's loop (``_inline.InlineBackend``) — through
four hooks: ``_open``/``_close``, ``_can_start``/``_launch``, ``_interrupt`` and ``_kill``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ErrorInfo, TaskCancelled, to_info
from ..execution import Alert, TaskState, TaskStatus, utcnow
from ..store.base import (
    AlertRecord,
    Create,
    CurrentAction,
    EventRecord,
    Progress,
    Store,
    Transition,
)
from ..task import Task
from ._state_writer import FLUSH_DELAY_S, StateWriter
from ._watchdog import CANCEL_GRACE_S, Watchdog
from ._webhook import Hook, notify_end
from .protocol import Finished, Subtask, ToSupervisor
from .runner import CancelToken, Job, Registry

if TYPE_CHECKING:
    from ._pool import Worker

log = logging.getLogger("aesoperator.runtime")

TIME_GRACE_S = 1.5  # past max_duration_seconds, before the hard kill
WEBHOOK_GRACE_S = 5.0  # on shutdown, for end-of-execution webhooks still being delivered


@dataclass
class Record:
    """What the supervisor knows about one execution it runs."""

    id: str
    task: Task
    job: Job
    future: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)
    state: TaskState = TaskState.PENDING
    progress: float = 0.0
    open_actions: dict[int, str] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    progress_cbs: list[Callable[[TaskStatus], Any]] = field(default_factory=list)
    alert_cbs: list[Callable[[Alert], Any]] = field(default_factory=list)
    worker: Worker | None = None  # local backend: the process running it
    token: CancelToken | None = None  # inline backend: how to stop it
    deadline: float | None = None
    kill_at: float | None = None
    kill_reason: tuple[TaskState, ErrorInfo] | None = None
    parent: str | None = None
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    resumed: bool = False  # its row is ``running`` already: a retry after its worker died

    label: str | None = None  # set_current_action: overrides the open actions while set
    label_dirty: bool = False

    @property
    def current_action(self) -> str | None:
        if self.label is not None:
            return self.label
        return self.open_actions[max(self.open_actions)] if self.open_actions else None


class Supervisor:
    """Records, queue, stored state and callbacks of the executions one client runs.

    Implements the ``Backend`` protocol; every method runs on the runtime loop.
    """

    def __init__(
        self,
        store: Store,
        *,
        pool_size: int,
        owner: str,
        handlers: Callable[[], tuple[str, Registry]],
        callbacks: concurrent.futures.Executor,
        webhooks: Callable[[Task], Hook | None] | None = None,
        flush_delay_s: float = FLUSH_DELAY_S,
    ) -> None:
        self.store = store
        self._webhooks = webhooks
        self._flush_delay_s = flush_delay_s
        self._deliveries: set[asyncio.Task[Any]] = set()
        self.pool_size = pool_size
        self.owner = owner
        self._handlers = handlers
        self._callbacks = callbacks
        self.records: dict[str, Record] = {}
        self._queue: collections.deque[Record] = collections.deque()
        self.closing = False
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: StateWriter | None = None

    @property
    def writer(self) -> StateWriter:
        assert self._writer is not None, "start() the supervisor first"
        return self._writer

    # -- hooks: how a backend runs jobs -------------------------------------------------------
    async def _open(self) -> None:
        """Start what runs jobs (on ``start``)."""

    async def _close(self, running: list[Record]) -> None:
        """Stop what runs jobs; ``running`` did not all stop after the cancel grace period."""

    def _watchdog(self) -> Watchdog:
        return Watchdog(self)

    def _can_start(self) -> bool:
        raise NotImplementedError

    def _launch(self, rec: Record) -> None:
        """Run ``rec`` (now ``running``); its messages come back through ``on_message``."""
        raise NotImplementedError

    def _interrupt(self, rec: Record, reason: str) -> None:
        """Ask the runner of ``rec`` to stop it cooperatively."""
        raise NotImplementedError

    def _kill(self, rec: Record, state: TaskState, error: ErrorInfo) -> None:
        """End ``rec`` now, as given, whatever its code is doing."""
        self.finish(rec, state, None, error)

    # -- Backend ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        self._writer = StateWriter(self.store, self._loop, self._flush_delay_s)
        await self._open()
        self.spawn_task(self._watchdog().run())

    async def ready(self) -> None:
        """Return once every job could start at once (workers up)."""

    def submit(
        self,
        job: Job,
        task: Task,
        done: concurrent.futures.Future[None],
        *,
        resumed: bool = False,
    ) -> None:
        """Queue an execution whose row exists already, as pending (or ``resumed``: running,
        its earlier run lost with its worker); ``done`` resolves once its end is stored."""
        rec = Record(id=job.execution_id, task=task, job=job, future=done, resumed=resumed)
        self.records[rec.id] = rec
        self._queue.append(rec)
        self._dispatch()

    def cancel(self, execution_id: str, reason: str = "cancel") -> bool:
        """Stop an execution of ours: False if it is not ours or has ended already."""
        rec = self.records.get(execution_id)
        if rec is None or rec.state.finished:
            return False
        if rec.state is TaskState.PENDING:
            with contextlib.suppress(ValueError):
                self._queue.remove(rec)
            self.finish(rec, TaskState.CANCELLED, None, to_info(TaskCancelled("cancelled")))
            return True
        if rec.parent is not None:
            return self.cancel(rec.parent, reason)
        self._interrupt(rec, reason)
        if reason == "cancel":
            rec.kill_reason = (TaskState.CANCELLED, to_info(TaskCancelled("cancelled")))
        rec.kill_at = min(rec.kill_at or float("inf"), time.monotonic() + CANCEL_GRACE_S)
        return True

    def add_callback(
        self, execution_id: str, kind: Literal["progress", "alert"], fn: Callable[[Any], Any]
    ) -> bool:
        """Register an on_progress/on_alert callback; alerts so far are replayed to it."""
        rec = self.records.get(execution_id)
        if rec is None:
            return False
        if kind == "alert":
            rec.alert_cbs.append(fn)
            for alert in rec.alerts:
                self._callback(fn, alert)
        else:
            rec.progress_cbs.append(fn)
        return True

    async def shutdown(self) -> None:
        self.closing = True
        for rec in list(self._queue):
            self.finish(rec, TaskState.CANCELLED, None, to_info(TaskCancelled("client closed")))
        self._queue.clear()
        running = [r for r in self.records.values() if r.parent is None]
        for rec in running:
            self.cancel(rec.id)
        end = time.monotonic() + CANCEL_GRACE_S + 0.5
        while any(not r.state.finished for r in running) and time.monotonic() < end:
            await asyncio.sleep(0.02)
        await self._close([r for r in running if not r.state.finished])
        if self._deliveries:  # the end of an execution is worth a few seconds' wait
            await asyncio.wait(set(self._deliveries), timeout=WEBHOOK_GRACE_S)
        if self._writer is not None:
            self._writer.flush()  # the last states are stored before the loop stops
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:  # let them end here, rather than be destroyed pending at exit
            await asyncio.wait(tasks, timeout=1)

    # -- running ------------------------------------------------------------------------------
    def spawn_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _dispatch(self) -> None:
        while self._queue and not self.closing and self._can_start():
            self._start(self._queue.popleft())

    def _start(self, rec: Record) -> None:
        if rec.state is not TaskState.PENDING:
            return
        if not rec.resumed:
            self.writer.write(Transition(rec.id, TaskState.RUNNING, owner=self.owner))
        rec.state = TaskState.RUNNING
        rec.started = time.monotonic()
        rec.deadline = rec.started + rec.task.config.max_duration_seconds + TIME_GRACE_S
        self._launch(rec)

    def force_end(self, rec: Record, reason: tuple[TaskState, ErrorInfo] | None = None) -> None:
        """The cooperative stop did not work in time (or a limit is crossed): end it now."""
        state, error = reason or rec.kill_reason or (
            TaskState.CANCELLED, to_info(TaskCancelled("cancelled"))
        )  # fmt: skip
        self._kill(rec, state, error)

    # -- messages from runners ------------------------------------------------------------------
    def on_message(self, msg: ToSupervisor) -> None:
        if type(msg) is dict:  # the event stream: the hot path
            rec = self.records.get(msg["id"])
            if rec is not None and not rec.state.finished:
                self._on_event(rec, msg)
        elif isinstance(msg, Finished):
            rec = self.records.get(msg.id)
            if rec is not None and not rec.state.finished:
                error = ErrorInfo.model_validate(msg.error) if msg.error else None
                self.finish(rec, TaskState(msg.state), msg.result, error)
            self._dispatch()
        elif isinstance(msg, Subtask):
            self._subtask(msg)

    def _on_event(self, rec: Record, msg: dict[str, Any]) -> None:
        write = self.writer.write
        kind = msg["type"]
        if kind == "progress":
            rec.progress = max(rec.progress, msg["value"])
            write(Progress(rec.id, rec.progress))
            if msg.get("message"):
                data = {"progress": rec.progress, "message": msg["message"]}
                write(EventRecord(rec.id, "progress", data))
            self.notify_progress(rec)
        elif kind == "action":
            if msg["phase"] == "start":
                rec.open_actions[msg["index"]] = _action_label(msg["name"], msg.get("details"))
                data = {"index": msg["index"], "name": msg["name"], "details": msg.get("details")}
                write(EventRecord(rec.id, "action", data))
            else:
                rec.open_actions.pop(msg["index"], None)
                data = {k: msg.get(k) for k in ("index", "ok", "error", "attempts")}
                write(EventRecord(rec.id, "action_end", data))
            write(CurrentAction(rec.id, rec.current_action))
            self.notify_progress(rec)
        elif kind == "current":
            label = msg["label"]
            rec.label = label[:200] if isinstance(label, str) else None
            rec.label_dirty = True  # the watchdog stores it, a few times a second at most
        elif kind == "page":
            data = {k: v for k, v in msg.items() if k not in ("type", "id")}
            write(EventRecord(rec.id, "page", data))
        elif kind == "alert":
            alert = Alert.model_validate(msg["alert"])
            rec.alerts.append(alert)
            write(AlertRecord(rec.id, alert))
            write(EventRecord(rec.id, "alert", alert.model_dump(mode="json")))
            for fn in list(rec.alert_cbs):
                self._callback(fn, alert)
        elif kind == "event":
            write(EventRecord(rec.id, msg["kind"], msg["data"]))

    def _subtask(self, msg: Subtask) -> None:
        parent = self.records.get(msg.parent)
        task = Task.model_validate_json(msg.task)
        now = utcnow()
        self.writer.write(Create(msg.id, msg.name, msg.task, self.owner, msg.parent, now))
        self.writer.write(Transition(msg.id, TaskState.RUNNING, owner=self.owner, at=now))
        job = parent.job if parent else Job(msg.id, msg.task, ("", ""), "")
        job = dataclasses.replace(job, secrets={})  # a record never keeps secrets
        rec = Record(id=msg.id, task=task, job=job, state=TaskState.RUNNING, parent=msg.parent)
        self.records[rec.id] = rec
        data = {"execution_id": msg.id, "name": msg.name}
        self.writer.write(EventRecord(msg.parent, "subtask", data, now))

    def finish(
        self,
        rec: Record,
        state: TaskState,
        result: dict[str, Any] | None,
        error: ErrorInfo | None,
    ) -> None:
        """End an execution: its state, result and error go to the store, then waiters wake."""
        if rec.state.finished:
            return
        if result is not None and rec.alerts:
            result = {**result, "alerts": [a.model_dump(mode="json") for a in rec.alerts]}
        rec.state = state
        rec.open_actions.clear()
        if state is TaskState.COMPLETED:
            rec.progress = 100.0
        self.writer.write(Transition(rec.id, state, error=error, result=result))
        self.records.pop(rec.id, None)
        if rec.parent is None:
            for child in [r for r in self.records.values() if r.parent == rec.id]:
                self.finish(child, state if state is not TaskState.COMPLETED else
                            TaskState.FAILED, None, error)  # fmt: skip
        # Waiters wake, and callbacks hear of it, once it is stored.
        self.writer.after_flush(lambda stored: self._ended(rec, stored))

    def _ended(self, rec: Record, stored: dict[str, TaskState]) -> None:
        # The store has the last word: a cancel accepted first makes a completion cancelled.
        rec.state = stored.get(rec.id, rec.state)
        if not rec.future.done():
            rec.future.set_result(None)
        self.notify_progress(rec)
        hook = self._webhooks(rec.task) if self._webhooks and rec.parent is None else None
        if hook is not None:
            self._deliver_end(rec, hook)

    def _deliver_end(self, rec: Record, hook: Hook) -> None:
        """Start the end-of-execution webhook; the end is stored already, nobody waits."""
        try:
            status = self.store.status(rec.id, with_alerts=False)
        except Exception:
            log.exception("aesoperator: cannot read the end of %s for its webhook", rec.id)
            return
        task = asyncio.ensure_future(notify_end(status, rec.task, hook, self.writer))
        self._tasks.add(task)
        self._deliveries.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._deliveries.discard)

    def notify_progress(self, rec: Record) -> None:
        if not rec.progress_cbs:
            return
        snapshot = TaskStatus(
            id=rec.id, name=rec.task.name, state=rec.state, progress=rec.progress,
            current_action=rec.current_action, created_at=utcnow(),
        )  # fmt: skip
        for fn in list(rec.progress_cbs):
            self._callback(fn, snapshot)

    def _callback(self, fn: Callable[[Any], Any], arg: Any) -> None:
        # RuntimeError: the interpreter is exiting, and no thread runs callbacks any more.
        with contextlib.suppress(RuntimeError):
            self._callbacks.submit(_safe_call, fn, arg)


def _action_label(name: str, details: dict[str, Any] | None) -> str:
    if not details:
        return name
    first = next(iter(details.values()))
    text = f"{name} {first}" if isinstance(first, str | int | float) else name
    return text if len(text) <= 200 else text[:197] + "..."


def _safe_call(fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        fn(arg)
    except Exception:
        log.exception("aesoperator: a callback raised; the execution goes on")
