"""``TaskContext``: what a handler or skill gets as ``ctx``.

It is the one door from task code to the runtime: progress, recorded actions, memory, budgets,
the web layer, alerts, files, sub-tasks and cancellation. Everything it reports goes through a
single ``send`` callable, so the same context works in a worker process (messages over a pipe)
and in-process (messages straight to the supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .._redact import Redactor
from ..errors import TaskCancelled, TaskError, UserError
from ..results import Alert, Artifact, Output, TaskResult
from ..task import Task, TaskConfig
from .budget import Budget

if TYPE_CHECKING:
    from ..store.base import ArtifactStore, ExecutionStore
    from ..store.memory import Memory
    from ..web import WebSession

T = TypeVar("T")
Send = Callable[[dict[str, Any]], None]

__all__ = ["Budget", "Send", "TaskContext", "is_transient", "redact_message"]


class _ActionScope:
    """Records one step; usable with ``with`` and ``async with``."""

    def __init__(self, ctx: TaskContext, name: str, details: dict[str, Any]) -> None:
        self._ctx, self._name, self._details = ctx, name, details
        self.index = -1

    def __enter__(self) -> _ActionScope:
        self.index = self._ctx._start_action(self._name, self._details)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ctx._end_action(self.index, ev)

    async def __aenter__(self) -> _ActionScope:
        return self.__enter__()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(et, ev, tb)


def is_transient(exc: BaseException) -> bool:
    """Whether a retry may help: network-ish failures yes; policy, validation, limits never."""
    if isinstance(exc, TaskError):
        return exc.transient
    if isinstance(exc, UserError):
        return False
    return isinstance(exc, ConnectionError | TimeoutError)


# What the runtime itself puts in a message (ids, states, counts, times): never redacted, so
# a secret that happens to equal one cannot break the message. Everything else is redacted.
_RUNTIME_VALUES = frozenset(
    {"type", "id", "phase", "index", "state", "status", "value", "ok", "attempts", "parent",
     "execution_id", "started_at", "finished_at", "at", "pages_visited", "duration_seconds",
     "size", "severity", "transient"}
)  # fmt: skip
_MODELS = ("result", "error", "alert")  # pydantic dumps: their keys are field names
_MODEL_LISTS = ("files", "actions", "alerts")


def _clean_fields(
    redactor: Redactor, fields: dict[str, Any], models: tuple[str, ...]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _RUNTIME_VALUES:
            out[key] = value
        elif key in models and isinstance(value, dict):
            out[key] = _clean_fields(redactor, value, _MODEL_LISTS)
        elif key in models and isinstance(value, list):
            out[key] = [
                _clean_fields(redactor, v, ()) if isinstance(v, dict) else redactor.value(v)
                for v in value
            ]
        else:
            out[key] = redactor.value(value)
    return out


def redact_message(redactor: Redactor, msg: dict[str, Any]) -> dict[str, Any]:
    """``msg`` with every secret, in any form, replaced by ``[secret:NAME]``.

    Everything the runtime stores or shows passes here: events, actions, pages, results,
    errors. Keys of the task's own dicts are redacted too; the runtime's own fields are not.
    """
    return _clean_fields(redactor, msg, _MODELS) if redactor.active else msg


def _artifact_parts(name: object) -> list[str]:
    """The folders and file name of an artifact name, refusing anything that could escape."""
    fix = "use a relative name such as 'report.html' or 'pages/1.html'"
    if not isinstance(name, str) or not name:
        raise UserError(f"add_file: the name must be a non-empty str, got {name!r}; {fix}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UserError(f"add_file({name!r}): control characters (NUL, newline...) in it; {fix}")
    if name.startswith("/") or "\\" in name:
        raise UserError(f"add_file({name!r}): an absolute path or a backslash; {fix}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise UserError(f"add_file({name!r}): not valid Unicode; {fix}") from None
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UserError(f"add_file({name!r}): an empty, '.' or '..' part; {fix}")
        if len(part.encode("utf-8")) > 255:
            raise UserError(
                f"add_file({name[:40]!r}...): a part of {len(part.encode('utf-8'))} bytes; "
                "file systems allow 255 bytes per name: shorten it"
            )
    if size > 1024:
        raise UserError(f"add_file({name[:40]!r}...): {size} bytes; the limit is 1024: shorten it")
    return parts


class TaskContext:
    """The ``ctx`` argument of handlers and skills."""

    def __init__(
        self,
        *,
        execution_id: str,
        task: Task,
        send: Send,
        memory: Memory,
        budget: Budget,
        artifacts: ArtifactStore,
        loop: asyncio.AbstractEventLoop,
        cancel_event: threading.Event | None = None,
        subtask_runner: Callable[[TaskContext, Task], Awaitable[TaskResult]] | None = None,
        functions: dict[str, Callable[..., Any]] | None = None,
        secrets: dict[str, str] | None = None,
        parent_secrets: tuple[tuple[str, str], ...] = (),
        llm: str | None = None,
        step_store: ExecutionStore | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.task = task
        self.memory = memory
        self.budget = budget
        # A sub-task also redacts its parent's secrets: the parent may have passed one on.
        self._redactor = Redactor((*(secrets or {}).items(), *parent_secrets))
        self._raw_send = send
        self._send: Send = self._send_clean if self._redactor.active else send
        # Where this execution's files go; other executions' (a replayed trace) through it too.
        self._artifacts = artifacts
        self._artifacts_dir = artifacts.artifacts_dir(execution_id)
        self._loop = loop
        self._cancel = cancel_event or threading.Event()
        self._subtask_runner = subtask_runner
        self.functions: dict[str, Callable[..., Any]] = functions or {}
        # Real secret values, for the browser layer only: never sent to a model, never logged.
        self.secrets: dict[str, str] = secrets or {}
        # A skill sets this before it raises TaskCancelled to keep the result so far.
        self.partial_output: Output | None = None
        self._action_lock = threading.Lock()
        self._action_count = 0
        self._web: WebSession | None = None
        self._progress = 0.0
        self.files: list[Artifact] = []
        self.usage: dict[str, Any] = {}
        # The client's model spec (``Aesoperator(llm=...)``): skills that can use a model
        # (research) resolve it; ``None`` when the client has none.
        self.llm = llm
        # Durable steps: where their results are kept (None: not durable), and how many calls
        # of each step name this execution has made (the n of the key ``name#n``).
        self._step_store = step_store
        self._step_calls: dict[str, int] = {}

    def _send_clean(self, msg: dict[str, Any]) -> None:
        self._raw_send(redact_message(self._redactor, msg))

    # -- what the task is -------------------------------------------------------------------
    @property
    def config(self) -> TaskConfig:
        return self.task.config

    @property
    def inputs(self) -> dict[str, Any]:
        return self.task.inputs

    # -- reporting ----------------------------------------------------------------------------
    def emit(self, kind: str, /, **data: Any) -> None:
        """Add an entry to the execution's timeline."""
        self._send({"type": "event", "id": self.execution_id, "kind": kind, "data": data})

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress in percent (0–100). Lower values than before are ignored."""
        value = min(100.0, max(0.0, float(percent)))
        if value < self._progress and message is None:
            return
        self._progress = max(self._progress, value)
        self._send(
            {
                "type": "progress",
                "id": self.execution_id,
                "value": self._progress,
                "message": message,
            }
        )

    def action(self, name: str, /, **details: Any) -> _ActionScope:
        """Record a step: ``with ctx.action("fetch", url=u): ...`` sets ``current_action``."""
        return _ActionScope(self, name, details)

    def _start_action(self, name: str, details: dict[str, Any]) -> int:
        with self._action_lock:
            index = self._action_count
            self._action_count += 1
        self._send(
            {
                "type": "action",
                "id": self.execution_id,
                "phase": "start",
                "index": index,
                "name": name,
                "details": details,
            }
        )
        return index

    def _end_action(self, index: int, error: BaseException | None, attempts: int = 1) -> None:
        self._send(
            {
                "type": "action",
                "id": self.execution_id,
                "phase": "end",
                "index": index,
                "ok": error is None,
                "error": None if error is None else f"{type(error).__name__}: {error}",
                "attempts": attempts,
            }
        )

    def set_current_action(self, label: str | None) -> None:
        """Name what is under way without recording a step (cheap: for a check per second).

        It shows as ``current_action`` over the innermost open action until set to None.
        Stored at most a few times a second.
        """
        self._send({"type": "current", "id": self.execution_id, "label": label})

    def page_visited(self, url: str, status: int | None = None, **data: Any) -> None:
        """Called by the web layer for every page fetched (counts ``pages_visited``)."""
        self._send({"type": "page", "id": self.execution_id, "url": url, "status": status, **data})

    def alert(self, alert: Alert) -> None:
        """Deliver an alert to the caller's ``on_alert`` handlers and store it."""
        self._send(
            {"type": "alert", "id": self.execution_id, "alert": alert.model_dump(mode="json")}
        )

    def add_file(
        self, name: str, data: bytes | str | Path, media_type: str | None = None
    ) -> Artifact:
        """Keep a file as an artifact of the execution; it appears in ``result.files``.

        ``name`` is a relative path: ``report.html`` or ``pages/1.html`` (folders are kept, so
        ``a/x`` and ``b/x`` are two files). Adding a name again replaces that file.
        """
        parts = _artifact_parts(name)
        if not isinstance(data, bytes | bytearray | memoryview | str | Path):
            raise UserError(
                f"add_file({name!r}): data is a {type(data).__name__}; give bytes, str or a Path"
            )
        root = self._artifacts_dir.resolve()
        target = root.joinpath(*parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Even if a folder of the artifacts was made a link elsewhere, write only inside.
            if not target.parent.resolve().is_relative_to(root) or target.is_symlink():
                raise UserError(f"add_file({name!r}): the path leads outside the artifacts")
            if isinstance(data, Path):
                target.write_bytes(data.read_bytes())
            elif isinstance(data, str):
                target.write_text(data, encoding="utf-8")
            else:
                target.write_bytes(data)
        except OSError as exc:
            raise UserError(f"add_file({name!r}): {exc.strerror or exc}") from None
        safe = "/".join(parts)
        art = Artifact(
            name=safe,
            path=str(target),
            media_type=media_type
            or mimetypes.guess_type(parts[-1])[0]
            or "application/octet-stream",
            size=target.stat().st_size,
        )
        self.files = [f for f in self.files if f.name != safe] + [art]
        return art

    def add_usage(self, **amounts: float) -> None:
        """Add to the execution's usage counters (tokens, cost, bytes...)."""
        for key, value in amounts.items():
            self.usage[key] = self.usage.get(key, 0) + value

    # -- cancellation and time ------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise ``TaskCancelled`` if the execution was cancelled, ``TimeLimitExceeded`` if late."""
        if self._cancel.is_set():
            raise TaskCancelled("cancelled")
        self.budget.check_time()

    async def sleep(self, seconds: float) -> None:
        """Sleep that wakes up early (raising) on cancellation."""
        end = time.monotonic() + max(0.0, seconds)
        while True:
            self.check_cancelled()
            left = end - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))

    # -- steps with retries ----------------------------------------------------------------------
    async def step(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` as a recorded step, retrying transient failures per ``TaskConfig``.

        ``name`` and ``fn`` are positional-only, so ``fn``'s own arguments may use those names.

        ``fn`` may be sync (run in a thread) or async. Retries use exponential backoff from
        ``retry_delay_seconds``; policy, validation and limit errors are never retried.

        Where the backend makes steps durable, the n-th call of a step name in an execution is
        the step ``name#n``: a result it returned is stored (if JSON survives it unchanged),
        and a later run of the same execution (a retry on another machine) gets it back
        without calling ``fn`` again. The code between steps runs again: keep it
        deterministic, so that the same calls come in the same order.
        """
        if self._step_store is not None:
            return await self._durable_step(self._step_store, name, fn, args, kwargs)
        return await self._run_step(name, fn, args, kwargs)

    async def _durable_step(
        self,
        store: ExecutionStore,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        key = self._step_key(name)
        self.check_cancelled()
        stored = await asyncio.to_thread(store.step_get, self.execution_id, key)
        if stored is not None:
            index = self._start_action(
                name, {"args": self._shown_args(args), "replayed": True, "key": key}
            )
            self._end_action(index, None, attempts=0)  # fn was not called
            self.emit("step_replayed", name=name, key=key)
            return json.loads(stored)
        value = await self._run_step(name, fn, args, kwargs, key=key)
        try:
            text = json.dumps(value, allow_nan=False)
            # A tuple comes back a list, an int key a str: a replay must return what fn did.
            same = json.loads(text) == value
            why = "" if same else f"a {type(value).__name__} does not come back the same from JSON"
        except (TypeError, ValueError) as exc:
            why = f"a {type(value).__name__} is not JSON-serialisable ({exc})"
        if why:
            self.emit("step_not_durable", name=name, key=key, type=type(value).__name__, why=why)
            return value
        first = await self._put_step(store, key, text)
        return value if first is None else json.loads(first)

    def _step_key(self, name: str) -> str:
        """``name#n`` for the n-th call of step ``name``. Counted before any await: the keys
        follow the order the calls were made in."""
        n = self._step_calls[name] = self._step_calls.get(name, 0) + 1
        return f"{name}#{n}"

    async def _put_step(self, store: ExecutionStore, key: str, text: str) -> str | None:
        """Store a step's result, first write wins: None if this one is stored, else the
        result another run of this execution stored first (the one that counts, now and in
        every replay)."""
        if await asyncio.to_thread(store.step_put, self.execution_id, key, text):
            return None
        return await asyncio.to_thread(store.step_get, self.execution_id, key)

    def _shown_args(self, args: tuple[Any, ...]) -> list[str]:
        # Redacted before it is cut short: a cut could leave half a secret unrecognisable.
        return [self._redactor.text(repr(a))[:200] for a in args]

    async def _run_step(
        self,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        **details: Any,
    ) -> Any:
        cfg = self.config
        index = self._start_action(name, {"args": self._shown_args(args), **details})
        attempt = 0
        while True:
            attempt += 1
            try:
                self.check_cancelled()
                if asyncio.iscoroutinefunction(fn):
                    value = await fn(*args, **kwargs)
                else:
                    value = await asyncio.to_thread(fn, *args, **kwargs)
                    if asyncio.iscoroutine(value):
                        value = await value
            except Exception as exc:
                if not is_transient(exc) or attempt > cfg.max_retries:
                    self._end_action(index, exc, attempt)
                    raise
                delay = cfg.retry_delay_seconds * (2 ** (attempt - 1))
                delay *= 0.8 + 0.4 * random.random()
                self.emit(
                    "retry", action=name, attempt=attempt, delay=round(delay, 3), error=str(exc)
                )
                await self.sleep(min(delay, self.budget.time_left))
                continue
            self._end_action(index, None, attempt)
            return value

    # -- composition -----------------------------------------------------------------------------
    async def run_subtask(self, task: Task) -> TaskResult:
        """Run ``task`` as a child execution; it never gets more than this one has left.

        Where the backend makes steps durable, a subtask that completed is a step too (the
        n-th subtask of a name is ``subtask:name#n``): a later run of this execution gets its
        result back instead of running it again. One that had not completed runs again.
        """
        if self._subtask_runner is None:
            raise UserError("run_subtask is not available in this context")
        store = self._step_store
        if store is None:
            return await self._subtask_runner(self, task)
        name = f"subtask:{task.name}"
        key = self._step_key(name)
        self.check_cancelled()
        stored = await asyncio.to_thread(store.step_get, self.execution_id, key)
        if stored is not None:
            self.emit("step_replayed", name=name, key=key)
            return TaskResult.model_validate_json(stored)
        # What the parent gets is what the store keeps of the child: secrets redacted.
        result = await self._subtask_runner(self, task)
        first = await self._put_step(store, key, result.model_dump_json())
        return result if first is None else TaskResult.model_validate_json(first)

    # -- bridging sync handlers to async APIs -----------------------------------------------------
    def run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        """From a *sync* handler, run a coroutine such as ``ctx.web.fetch(url)`` and wait."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            awaitable.close()
            raise UserError("ctx.run() is for sync handlers; in async code, await directly")
        return asyncio.run_coroutine_threadsafe(awaitable, self._loop).result()

    # -- web --------------------------------------------------------------------------------------
    @property
    def web(self) -> WebSession:
        """The execution's web session: every request passes the task's policy."""
        if self._web is None:
            from ..web import WebSession

            self._web = WebSession(self)
        return self._web

    async def aclose(self) -> None:
        if self._web is not None:
            with contextlib.suppress(Exception):
                await self._web.aclose()
            self._web = None
