"""Runs one execution: builds its ``ctx``, calls the planner, and reports how it ended.

``Runner.run(job)`` needs nothing of the host but an event loop and a ``send`` callable: the
same code runs in a worker process, in-process (``isolation="inline"``), or under any other
host (a test, a Temporal activity). Everything the caller sees comes from the messages sent
here (``runtime.protocol``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from ..errors import (
    ErrorInfo,
    NoPlannerError,
    PageLimitExceeded,
    TaskCancelled,
    TimeLimitExceeded,
    UserError,
    from_info,
    to_info,
)
from ..execution import ActionRecord, Alert, Output, TaskResult, utcnow
from ..planning import router
from ..store import Store, open_store
from ..store.memory import Memory, namespace_for
from ..task import Task
from .context import Budget, TaskContext, redact_message
from .protocol import Finished, Send, Subtask


def new_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Registry:
    """What the user registered on the client: handlers by task name, callable functions."""

    handlers: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    """Everything a worker needs to run one execution."""

    execution_id: str
    task_json: str
    planner: tuple[str, str]  # ("handler"|"skill"|"llm", name)
    data_dir: str
    cwd: str | None = None
    llm: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # never stored, never logged
    registry: Registry = field(default_factory=Registry)
    project: str = "default"  # the service's isolation unit: scopes permanent memory
    # ctx.step results are kept in the store and replayed when the same execution runs again
    # (a backend that retries a run on another machine sets it); off for the local backend.
    durable_steps: bool = False


class _Recorder:
    """Wraps ``send`` to keep what the result needs: actions, pages, alerts."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.actions: dict[int, ActionRecord] = {}
        self.pages = 0
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()

    def __call__(self, msg: dict[str, Any]) -> None:  # the event stream of ``TaskContext``
        kind = msg["type"]
        with self._lock:
            if kind == "action":
                if msg["phase"] == "start":
                    self.actions[msg["index"]] = ActionRecord(
                        index=msg["index"], name=msg["name"], details=msg.get("details", {}),
                        started_at=utcnow(),
                    )  # fmt: skip
                elif msg["index"] in self.actions:
                    rec = self.actions[msg["index"]]
                    rec.finished_at = utcnow()
                    rec.ok = msg["ok"]
                    rec.error = msg["error"]
                    rec.attempts = msg.get("attempts", 1)
            elif kind == "page":
                self.pages += 1
            elif kind == "alert":
                self.alerts.append(Alert.model_validate(msg["alert"]))
        self._send(msg)


def to_output(value: Any) -> Output:
    """Turn what a handler returned into an ``Output``."""
    if isinstance(value, Output):
        return value
    if isinstance(value, TaskResult):
        return Output(content=value.content, summary=value.summary, data=value.data)
    if value is None:
        return Output()
    if isinstance(value, str):
        return Output(content=value, summary=value if len(value) <= 280 else "")
    if isinstance(value, BaseModel):
        return Output(data=value.model_dump(mode="json"))
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"the handler returned a {type(value).__name__}, which is not JSON-serialisable "
            f"({exc}); return a str, a JSON-able value, a pydantic model or aesoperator.Output"
        ) from None
    return Output(data=value)


class Runner:
    """Runs jobs for one process. Owns the store connection used by task memory."""

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self._send = send
        self._loop = loop
        self._stores: dict[str, Store] = {}
        self.stuck_threads: list[threading.Thread] = []

    def _store(self, data_dir: str) -> Store:
        if data_dir not in self._stores:
            self._stores[data_dir] = open_store(data_dir)
        return self._stores[data_dir]

    async def run(self, job: Job, cancel: CancelToken | None = None) -> None:
        """Run ``job`` to its end and send exactly one ``Finished`` message for it.

        Call it on the loop given to the ``Runner``. ``cancel`` stops it cooperatively.
        """
        cancel = cancel if cancel is not None else CancelToken()
        cancel.task = asyncio.current_task()
        task = Task.model_validate_json(job.task_json)
        started = time.monotonic()
        deadline = started + task.config.max_duration_seconds
        budget = Budget(task.config.max_pages, deadline)
        await self._run_one(job, task, budget, cancel, job.planner, parent=None)

    async def _run_one(
        self,
        job: Job,
        task: Task,
        budget: Budget,
        cancel: threading.Event,
        planner: tuple[str, str],
        parent: TaskContext | None,
        execution_id: str | None = None,
        secrets: dict[str, str] | None = None,
    ) -> TaskResult:
        eid = execution_id or job.execution_id
        store = self._store(job.data_dir)
        recorder = _Recorder(self._send)
        scope_ns = namespace_for(task.name, task.memory_scope, eid, job.project)
        ctx = TaskContext(
            execution_id=eid,
            task=task,
            send=recorder,
            memory=Memory(store, scope_ns),
            budget=budget,
            artifacts=store,
            loop=self._loop,
            cancel_event=cancel,
            subtask_runner=lambda c, t: self._subtask(job, c, t),
            functions=job.registry.functions,
            secrets=secrets if secrets is not None else job.secrets,
            parent_secrets=parent._redactor.pairs if parent is not None else (),
            llm=job.llm,
            # Only the execution the backend runs: a sub-task gets a new id on every run, so
            # there would be nothing to replay (and its row may not be stored yet).
            step_store=store if job.durable_steps and parent is None else None,
        )
        started_at = utcnow()
        t0 = time.monotonic()
        kind, name = planner
        label = f"{kind}:{name}" if name else kind
        ctx.emit("planner", planner=label)
        state: Literal["completed", "failed", "cancelled"] = "failed"
        error = None
        timer = asyncio.timeout(max(0.001, budget.time_left))
        try:
            ctx.check_cancelled()  # a cancel may arrive before the task starts
            async with timer:
                value = await self._call_planner(ctx, job, kind, name)
            output = to_output(value)
            state = "completed"
        except (asyncio.CancelledError, TaskCancelled) as exc:
            if getattr(cancel, "reason", "") == "time":
                error = to_info(_time_error(task))
            else:
                state = "cancelled"
                error = to_info(TaskCancelled(str(exc) or "cancelled"))
            output = ctx.partial_output or Output()
        except Exception as exc:
            # The task's own TimeoutError is a failure like any other; only ours is the limit.
            if isinstance(exc, TimeLimitExceeded) or (
                isinstance(exc, TimeoutError) and timer.expired()
            ):
                error = to_info(_time_error(task))
            else:
                error = to_info(exc, traceback=traceback.format_exc(limit=20))
            output = ctx.partial_output or Output()
        finally:
            await ctx.aclose()
        result = TaskResult(
            execution_id=eid,
            task_name=task.name,
            planner=label,
            content=output.content,
            summary=output.summary,
            data=output.data,
            files=ctx.files,
            pages_visited=recorder.pages,
            actions=sorted(recorder.actions.values(), key=lambda a: a.index),
            alerts=recorder.alerts,
            started_at=started_at,
            finished_at=utcnow(),
            duration_seconds=round(time.monotonic() - t0, 6),
            usage=ctx.usage,
        )
        keep_result = state == "completed" or bool(output.content or output.data)
        clean = redact_message(ctx._redactor, {
            "result": result.model_dump(mode="json"),
            "error": error.model_dump(mode="json") if error else None,
        })  # fmt: skip
        # A parent task gets what the store gets: the result and error with secrets redacted.
        shown = TaskResult.model_validate(clean["result"]) if ctx._redactor.active else result
        self._send(Finished(eid, state, clean["result"] if keep_result else None, clean["error"]))
        if clean["error"] is not None and parent is not None:
            raise from_info(ErrorInfo.model_validate(clean["error"]), execution_id=eid)
        return shown

    async def _call_planner(self, ctx: TaskContext, job: Job, kind: str, name: str) -> Any:
        if kind == "handler":
            fn = job.registry.handlers[name]
            if inspect.iscoroutinefunction(fn):
                return await fn(ctx, **ctx.inputs)
            return await self._in_thread(fn, ctx)
        if kind == "plan":
            from ..planning.plan import check_actions, run_plan

            assert ctx.task.plan is not None
            check_actions(ctx.task.plan, ctx.functions)
            return await run_plan(ctx, ctx.task.plan)
        if kind == "skill":
            module = router.skill_module(name)
            if module is None:
                raise NoPlannerError(f"built-in skill {name!r} is not available in this build")
            return await module.run(ctx)
        if kind == "llm":
            from ..planning import llm as llm_planner

            return await llm_planner.run(ctx, job.llm)
        raise NoPlannerError(f"unknown planner kind {kind!r}")

    async def _in_thread(self, fn: Any, ctx: TaskContext) -> Any:
        """Run a sync handler in its own thread; a thread that outlives a cancel is recorded."""
        fut: asyncio.Future[Any] = self._loop.create_future()

        def target() -> None:
            try:
                value = fn(ctx, **ctx.inputs)
            except BaseException as exc:
                if not fut.done():
                    self._loop.call_soon_threadsafe(_set_exc, fut, exc)
            else:
                if not fut.done():
                    self._loop.call_soon_threadsafe(_set_result, fut, value)

        thread = threading.Thread(target=target, name=f"handler-{ctx.execution_id}", daemon=True)
        thread.start()
        try:
            return await fut
        except asyncio.CancelledError:
            ctx._cancel.set()
            thread.join(0.3)
            if thread.is_alive():
                self.stuck_threads.append(thread)
            raise

    async def _subtask(self, job: Job, parent: TaskContext, task: Task) -> TaskResult:
        """Run a child task inline, clamped to what the parent has left."""
        left = parent.budget.pages_left
        if left < 1:
            raise PageLimitExceeded("the parent task has no pages left for a sub-task")
        cfg = task.config.model_copy(
            update={
                "max_pages": min(task.config.max_pages, left),
                "max_duration_seconds": max(
                    0.001, min(task.config.max_duration_seconds, parent.budget.time_left)
                ),
                "max_memory_mb": min(task.config.max_memory_mb, parent.config.max_memory_mb),
            }
        )
        child = task.model_copy(update={"config": cfg})
        planner = router.choose(child, job.registry.handlers, llm_configured=bool(job.llm))
        child_id = new_id()
        # The child's record is stored: it keeps no secret of the parent's in its inputs.
        record = child.model_dump(mode="json")
        record["inputs"] = parent._redactor.value(record["inputs"])
        record["description"] = parent._redactor.text(record["description"])[:10_000]
        self._send(Subtask(child_id, parent.execution_id, child.name, json.dumps(record)))
        budget = Budget(
            cfg.max_pages, time.monotonic() + cfg.max_duration_seconds, parent=parent.budget
        )
        with parent.action(f"subtask {child.name}", execution_id=child_id):
            child_secrets = {k: v.get_secret_value() for k, v in task.secrets.items()}
            return await self._run_one(
                job, child, budget, parent._cancel, planner, parent=parent,
                execution_id=child_id, secrets=child_secrets,
            )  # fmt: skip


class CancelToken(threading.Event):
    """A cancellation flag with a reason: ``"cancel"`` (the caller) or ``"time"`` (the limit)."""

    reason = "cancel"
    task: asyncio.Task[Any] | None = None

    def cancel(self, reason: str = "cancel") -> None:
        self.reason = reason
        self.set()


def _time_error(task: Task) -> TimeLimitExceeded:
    return TimeLimitExceeded(
        f"max_duration_seconds={task.config.max_duration_seconds:g} reached; "
        "raise the limit in TaskConfig if the task needs longer"
    )


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exc(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
