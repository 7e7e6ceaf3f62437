"""The client façade: ``Aesoperator`` and the ``Execution`` handle.

The runtime lives on a thread of its own with its own event loop, so the blocking API works
the same in a plain script, from many threads, and inside a running loop (a Jupyter cell):
the caller's thread only waits on a future, it never runs the runtime's loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import psutil

from .errors import (
    ErrorInfo,
    Interrupted,
    NotFoundError,
    TaskCancelled,
    UserError,
    from_info,
    to_info,
)
from .execution import Alert, Event, TaskResult, TaskState, TaskStatus
from .planning import router
from .planning.plan import check_actions
from .runtime._webhook import Hook, hook_for
from .runtime.backend import Backend, open_backend
from .runtime.runner import Job, Registry, new_id
from .store import default_data_dir, open_store
from .store.lifecycle import recover
from .store.memory import Memory
from .task import Task, check_webhook_url, mask_userinfo

if TYPE_CHECKING:
    from .runtime._temporal import TemporalTarget

F = TypeVar("F", bound=Callable[..., Any])
Isolation = Literal["process", "inline"]

_CLIENTS: weakref.WeakSet[Aesoperator] = weakref.WeakSet()


def _owner() -> str:
    proc = psutil.Process()
    return f"{socket.gethostname()}:{proc.pid}:{proc.create_time():.3f}"


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    if owner.startswith("temporal:"):
        return True  # Temporal runs it, and runs it again elsewhere if a worker dies
    try:
        host, pid, created = owner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # another machine's: not ours to judge
    try:
        return abs(psutil.Process(int(pid)).create_time() - float(created)) < 0.01
    except (psutil.Error, ValueError):
        return False


class Execution:
    """A handle on one execution: follow it, wait for it, cancel it.

    Made by [`execute_task_async`][aesoperator.client.Aesoperator.execute_task_async] and
    [`get_execution`][aesoperator.client.Aesoperator.get_execution], not directly. Its
    reads go to the store, so it follows an execution that another process on the same
    data directory runs too. Awaitable: ``result = await execution`` is
    [`result()`][aesoperator.client.Execution.result] without blocking the event loop.

    Attributes:
        id (str): the execution's id, as ``aesop status ID`` and ``GET /v1/tasks/{id}``
            take it.
        name (str): the name of the task it runs.

    Example:
        ```python
        execution = client.execute_task_async(task)
        execution.on_progress(lambda status: print(status.progress))
        result = execution.result(timeout=60)
        ```
    """

    def __init__(self, client: Aesoperator, execution_id: str, name: str) -> None:
        self._client = client
        self.id = execution_id
        self.name = name

    def __repr__(self) -> str:
        return f"Execution(id={self.id!r}, name={self.name!r})"

    def status(self) -> TaskStatus:
        """The execution's status now: state, progress, current action, error, result.

        Returns:
            A snapshot; call again to see later changes.
        """
        return self._client.get_task_status(self.id)

    @property
    def done(self) -> bool:
        """True once the execution has ended: ``completed``, ``failed`` or ``cancelled``."""
        return self.status().state.finished

    def wait(self, timeout: float | None = None) -> TaskStatus:
        """Block until the execution ends, however it ends.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it runs.

        Returns:
            The final status (``completed``, ``failed`` or ``cancelled``); unlike
            [`result()`][aesoperator.client.Execution.result], a failure is not raised.

        Raises:
            TimeoutError: it is still running after ``timeout`` seconds (it goes on running).
        """
        fut = self._client._future(self.id)
        if fut is not None:
            try:
                fut.result(timeout)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"execution {self.id} still running after {timeout}s") from None
            return self.status()
        end = None if timeout is None else time.monotonic() + timeout
        while True:  # run by another process: follow the store
            status = self.status()
            if status.state.finished:
                return status
            if end is not None and time.monotonic() >= end:
                raise TimeoutError(f"execution {self.id} still running after {timeout}s")
            time.sleep(0.05)

    def result(self, timeout: float | None = None) -> TaskResult:
        """Wait for the execution to end, then return its result or raise its error.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it runs.

        Returns:
            The result of the completed execution.

        Raises:
            TaskCancelled: it was cancelled.
            TaskError: it failed: the subclass the execution raised (``PolicyViolation``,
                ``TimeLimitExceeded``, ``FetchError``...; ``TaskFailed`` for an exception
                of the handler's own).
            TimeoutError: it is still running after ``timeout`` seconds (it goes on running).
        """
        status = self.wait(timeout)
        return _result_or_raise(status)

    def cancel(self) -> bool:
        """Cancel the execution, as [`cancel_task`][aesoperator.client.Aesoperator.cancel_task]
        does.

        Returns:
            True if it ends ``cancelled`` because of this call; False if it had already ended.
        """
        return self._client.cancel_task(self.id)

    def on_progress(self, fn: Callable[[TaskStatus], Any]) -> Callable[[TaskStatus], Any]:
        """Call ``fn(status)`` in this process whenever progress or the current action changes.

        Use it as a decorator or a plain call. The calls run one at a time on a thread of the
        client's own, so ``fn`` should return quickly; an exception in it is logged, not
        raised. Only an execution this client submitted and is still running reports
        progress this way.

        Args:
            fn: called with the execution's [`TaskStatus`][aesoperator.execution.TaskStatus].

        Returns:
            ``fn`` itself.
        """
        self._client._add_callback(self.id, "progress", fn)
        return fn

    def on_alert(self, fn: Callable[[Alert], Any]) -> Callable[[Alert], Any]:
        """Call ``fn(alert)`` in this process for every alert the execution raises.

        Alerts raised before the call are replayed first, so none is missed; for an execution
        that has ended (or runs in another process) the stored ones are. Use it as a
        decorator or a plain call; the calls run on a thread of the client's own.

        Args:
            fn: called with each [`Alert`][aesoperator.results.Alert].

        Returns:
            ``fn`` itself.
        """
        self._client._add_callback(self.id, "alert", fn)
        return fn

    def alerts(self) -> list[Alert]:
        """The alerts the execution has raised so far, in the order raised."""
        return self._client.get_alerts(self.id)

    def events(self) -> list[Event]:
        """The execution's timeline so far (as
        [`get_events`][aesoperator.client.Aesoperator.get_events])."""
        return self._client.get_events(self.id)

    def __await__(self) -> Generator[Any, None, TaskResult]:
        return self._await().__await__()

    async def _await(self) -> TaskResult:
        fut = self._client._future(self.id)
        if fut is not None:
            await asyncio.wrap_future(fut)
        else:
            while not self.status().state.finished:
                await asyncio.sleep(0.05)
        return _result_or_raise(self.status())


def _result_or_raise(status: TaskStatus) -> TaskResult:
    if status.state is TaskState.COMPLETED and status.result is not None:
        return status.result
    if status.state is TaskState.CANCELLED:
        raise TaskCancelled(
            status.error.message if status.error else "cancelled", execution_id=status.id
        )
    if status.error is not None:
        raise from_info(status.error, execution_id=status.id)
    raise RuntimeError(f"execution {status.id} is {status.state} with no result")


class Aesoperator:
    """The entry point: run tasks, follow them, read their memory.

    Example:
        ```python
        client = Aesoperator(data_dir="aesop-data")
        result = client.execute_task(Task(name="research", inputs={"topic": "ai"}))
        ```
    """

    def __new__(cls, **kwargs: Any) -> Aesoperator:
        # A url (given, or $AESOP_URL when no data_dir is) makes the remote client: a subclass,
        # so isinstance(x, Aesoperator) holds and type checkers see one class.
        if cls is Aesoperator:
            url = kwargs.get("url")
            if url is None and kwargs.get("data_dir") is None:
                url = os.environ.get("AESOP_URL")
            if url:
                from ._remote import RemoteAesoperator

                return object.__new__(RemoteAesoperator)
        return object.__new__(cls)

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        pool_size: int | None = None,
        isolation: Isolation = "process",
        llm: str | None = None,
        url: str | None = None,
        token: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        store: str | None = None,
        backend: str | None = None,
    ) -> None:
        """Open a client on a data directory (or a shared store, or a served instance).

        Nothing starts yet: the worker pool starts with the first task (or
        [`warmup`][aesoperator.client.Aesoperator.warmup]). Opening recovers the data
        directory: an execution left ``pending`` or ``running`` by a process that is gone
        becomes ``failed`` with ``Interrupted``.

        Args:
            data_dir: where executions, memory and artifacts are kept (SQLite). Default:
                ``$AESOP_DATA_DIR``, else ``~/.aesoperator``.
            pool_size: worker processes kept warm, which is also how many executions run at
                once (others wait as ``pending``). Default: ``$AESOP_POOL_SIZE`` or 2.
            isolation: ``"process"`` (default) runs each execution in a worker process, where
                memory limits, hard cancel and crash isolation hold; ``"inline"`` runs in this
                process (for debugging: cooperative cancel only, no memory limit).
            llm: model for free-form tasks, e.g. ``"openai:gpt-4.1-mini"``; default
                ``$AESOP_LLM``.
            url: the address of a served instance (``aesop serve``), e.g.
                ``"http://127.0.0.1:8750"``: the client then runs everything there, with the
                same methods (default ``$AESOP_URL`` when no ``data_dir`` is given; ``url=""``
                forces a local client). Handlers are registered on the server.
            token: the bearer token for ``url`` (default ``$AESOP_TOKEN``), made on the server
                with ``aesop token create NAME``.
            webhook_url: where every execution's end is POSTed (signed) unless its task has
                a ``webhook_url`` of its own; also settable later as an attribute.
            webhook_secret: the key those POSTs are signed with (HMAC-SHA256), for tasks
                without a ``webhook_secret`` of their own.
            store: where state is kept, instead of ``data_dir``: a data directory,
                ``sqlite:///path`` or ``postgresql://user:pw@host/db?artifacts=/shared/dir``
                (shared by many machines; the ``postgresql`` extra). Default ``$AESOP_STORE``
                when no ``data_dir`` is given.
            backend: where executions run: ``"process"`` or ``"inline"`` (as ``isolation``),
                or ``"temporal://host:7233?namespace=default&task_queue=aesop"``: as Temporal
                workflows, on the ``aesop worker`` processes of any number of machines (needs a
                PostgreSQL ``store`` they share; the ``temporal`` extra). Default
                ``$AESOP_BACKEND``, else ``isolation``.

        Raises:
            UserError: a value that cannot work (``pool_size`` below 1, an unknown
                ``isolation``, ``token`` without ``url``, both ``data_dir`` and ``store``,
                a Temporal ``backend`` without a PostgreSQL ``store``); the message names
                the argument and the fix.
        """
        if token:
            raise UserError(
                "token: given without a url; a token is for a served instance: pass url=... "
                "too (or set AESOP_URL)"
            )
        if isolation not in ("process", "inline"):
            raise UserError(f"isolation: got {isolation!r}; use 'process' or 'inline'")
        size = pool_size if pool_size is not None else int(os.environ.get("AESOP_POOL_SIZE", 2))
        if size < 1:
            raise UserError(f"pool_size: got {size!r}; use a whole number >= 1")
        if data_dir and store:
            raise UserError(
                f"store: got {store!r} and data_dir {str(data_dir)!r}; give one of them"
            )
        store = store or (None if data_dir else os.environ.get("AESOP_STORE")) or None
        backend = backend or os.environ.get("AESOP_BACKEND") or isolation
        self._temporal: TemporalTarget | None = None
        if backend in ("process", "inline"):
            isolation = backend  # type: ignore[assignment]
        else:
            from .runtime._temporal import parse_target

            self._temporal = parse_target(backend)
            if not store or not store.lower().startswith(("postgresql://", "postgres://")):
                raise UserError(
                    f"backend: {backend!r} runs executions on workers of any machine, which "
                    f"must share the store; got store={store!r}: pass "
                    "store='postgresql://user:pw@host/db?artifacts=/shared/dir' (or set "
                    "AESOP_STORE)"
                )
        self.backend = backend
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.store_url = store or str(self.data_dir)
        self.isolation: Isolation = isolation
        self.pool_size = size
        self.llm = llm or os.environ.get("AESOP_LLM") or None
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self._store = open_store(self.store_url if store else self.data_dir)
        self._owner = _owner()
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._functions: dict[str, Callable[..., Any]] = {}
        self._handlers_version = ""
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._backend: Backend | None = None
        self._queued: list[tuple[Job, Task, concurrent.futures.Future[None]]] = []  # to submit
        self._callbacks = concurrent.futures.ThreadPoolExecutor(1, "aesop-callbacks")
        self._closed = False
        self.memory = Memory(self._store, "global")
        if self._temporal is None:  # Temporal decides which of its executions are alive
            self._recover()
        _CLIENTS.add(self)

    def __repr__(self) -> str:
        if self._temporal is not None:
            return f"Aesoperator(store={self._store!r}, backend={self.backend!r})"
        return f"Aesoperator(data_dir={str(self.data_dir)!r}, isolation={self.isolation!r})"

    def __enter__(self) -> Aesoperator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- handlers -------------------------------------------------------------------------------
    def handler(self, name: str) -> Callable[[F], F]:
        """Register ``fn(ctx, **inputs)`` (sync or async) as the planner of tasks named ``name``.

        A task whose ``name`` matches runs the handler, with the task's inputs as keyword
        arguments and a [`TaskContext`][aesoperator.runtime.context.TaskContext] as
        ``ctx``; what it returns becomes the result. Registering the name again replaces
        the handler for tasks submitted from then on.

        Args:
            name: the task name it serves.

        Returns:
            A decorator that registers the function and returns it unchanged.

        Raises:
            UserError: ``name`` is not a non-empty string, or what is decorated is not
                callable.

        Example:
            ```python
            @aesop.handler("process_sales_data")
            def process(ctx, data_files, metrics):
                ...
            ```
        """
        if not isinstance(name, str) or not name:
            raise UserError(f"handler name: got {name!r}; use the task's name, a non-empty str")

        def register(fn: F) -> F:
            if not callable(fn):
                raise UserError(f"@handler({name!r}) must decorate a function, got {fn!r}")
            with self._lock:
                self._handlers[name] = fn
                self._handlers_version = uuid.uuid4().hex
            return fn

        return register

    @overload
    def function(self, fn: F, /) -> F: ...
    @overload
    def function(self, fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...
    def function(self, fn: F | None = None, /, *, name: str | None = None) -> Any:
        """Register a function the LLM planner may call as a tool (schema from type hints).

        A plan's steps may name it as an action too (``Step(action="lookup_price")``).
        Use it bare (``@aesop.function``) or with a name (``@aesop.function(name=...)``).

        Args:
            fn: the function, when used bare.
            name: the tool's name; default the function's ``__name__``.

        Returns:
            ``fn`` unchanged when given, else a decorator that registers and returns it.

        Raises:
            UserError: the name is not a Python identifier, or what is decorated is not
                callable.

        Example:
            ```python
            @aesop.function
            def lookup_price(sku: str) -> float:
                ...
            ```
        """

        def register(f: F) -> F:
            if not callable(f):
                raise UserError(f"@function must decorate a function, got {f!r}")
            key = name or str(getattr(f, "__name__", ""))
            if not key.isidentifier():
                raise UserError(f"function name: got {key!r}; use a Python identifier")
            with self._lock:
                self._functions[key] = f
                self._handlers_version = uuid.uuid4().hex
            return f

        return register(fn) if fn is not None else register

    def _handlers_snapshot(self) -> tuple[str, Registry]:
        with self._lock:
            return self._handlers_version, Registry(dict(self._handlers), dict(self._functions))

    # -- running --------------------------------------------------------------------------------
    def execute_task(self, task: Task, *, timeout: float | None = None) -> TaskResult:
        """Run ``task`` and wait for it: ``execute_task_async(task).result(timeout)``.

        Ctrl-C while waiting cancels the execution too.

        Args:
            task: what to run, with its inputs and limits.
            timeout: seconds to wait at most; ``None`` waits until it ends (the task's
                ``max_duration_seconds`` bounds that).

        Returns:
            The result of the completed execution.

        Raises:
            UserError: the task cannot be submitted (``NoPlannerError``: nothing serves its
                name; a ``webhook_url`` without a secret).
            TaskCancelled: the execution was cancelled.
            TaskError: the execution failed: the subclass it raised (``PolicyViolation``,
                ``TimeLimitExceeded``, ``FetchError``...).
            TimeoutError: it is still running after ``timeout`` seconds (it goes on running).
        """
        execution = self.execute_task_async(task)
        try:
            return execution.result(timeout)
        except KeyboardInterrupt:
            execution.cancel()
            raise

    def execute_task_async(self, task: Task) -> Execution:
        """Start ``task`` and return its [`Execution`][aesoperator.client.Execution] at once.

        The execution waits as ``pending`` for a free worker, then runs; follow it with the
        handle, or by its ``id`` from any process on the same data directory.

        Args:
            task: what to run, with its inputs and limits.

        Returns:
            The handle on the new execution.

        Raises:
            UserError: the task cannot be submitted: ``NoPlannerError`` when no handler,
                skill or configured LLM serves its name, a plan naming an unknown action, a
                ``webhook_url`` without a secret, or the client is closed.
        """
        return self._submit(task)

    def _submit(self, task: Task, project: str = "default") -> Execution:
        """``execute_task_async`` in ``project`` (the service runs a token's tasks in its own)."""
        if not isinstance(task, Task):
            raise UserError(f"execute_task expects a Task, got {type(task).__name__}")
        registry = self._handlers_snapshot()[1]
        if self._temporal is not None:
            from .runtime._temporal import check_task

            check_task(task)  # webhooks are the workers' to sign ($AESOP_WEBHOOK_SECRET)
            kind, name = "auto", ""  # the workers have the handlers: a worker routes it
        else:
            self._check_webhook(task)
            kind, name = router.choose(task, registry.handlers, bool(self.llm))
            if task.plan is not None and kind == "plan":
                check_actions(task.plan, registry.functions)  # refuse unknown actions now
        backend = self._ensure_runtime()
        execution_id = new_id()
        task_json = task.model_dump_json()
        owner = self._owner if self._temporal is None else f"temporal:{self._owner}"
        self._store.create(execution_id, task.name, task_json, owner, project=project)
        job = Job(
            project=project,
            execution_id=execution_id,
            task_json=task_json,
            planner=(kind, name),
            data_dir=self.store_url,
            cwd=os.getcwd(),
            llm=self.llm,
            secrets={k: v.get_secret_value() for k, v in task.secrets.items()},
        )
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        started: concurrent.futures.Future[None] | None = None
        if self._temporal is not None:
            from .runtime._temporal import TemporalBackend

            assert isinstance(backend, TemporalBackend)
            started = backend.expect_start(execution_id)
        assert self._loop is not None
        # One wake-up of the runtime's loop per batch, not per task: a submit only queues
        # when a drain is already scheduled (the wake-up, a write to the loop's self-pipe, was
        # the costliest part of a submit after the row's transaction). FIFO: a later cancel
        # or callback scheduled on the loop runs after the drain that holds this job.
        with self._lock:
            self._futures[execution_id] = done
            self._queued.append((job, task, done))
            wake = len(self._queued) == 1
        if wake:
            self._loop.call_soon_threadsafe(self._drain, backend)
        if started is not None:
            # Return once Temporal has the workflow: a process that exits (or is killed) right
            # after getting the id must not leave a row that no worker will ever run.
            started.result()
        return Execution(self, execution_id, task.name)

    def _drain(self, backend: Backend) -> None:
        """On the runtime's loop: hand every queued job to the backend, in submit order."""
        with self._lock:
            queued, self._queued = self._queued, []
        for job, task, done in queued:
            backend.submit(job, task, done)

    def replay(
        self,
        execution_id: str,
        inputs: dict[str, Any] | None = None,
        *,
        secrets: dict[str, str] | None = None,
        repair: bool = True,
        timeout: float | None = None,
    ) -> TaskResult:
        """Run a recorded LLM-planned execution again, without the model, at browser speed.

        The replay is a new execution, named ``<task name>.replay``, with the original's
        config. A step that cannot be found on the page fails it with ``ReplayError`` — or,
        with ``repair`` and a model configured, that one step goes back to the model and the
        repaired trace is recorded.

        Args:
            execution_id: the LLM-planned execution whose recorded trace to follow.
            inputs: replace the recorded inputs (``{{input:name}}`` in the trace); default
                the recorded ones.
            secrets: typed where the recording typed secrets (secrets are never stored).
            repair: let the model redo a step that cannot be found (needs ``llm``).
            timeout: seconds to wait at most, as in
                [`execute_task`][aesoperator.client.Aesoperator.execute_task].

        Returns:
            The replay's result.

        Raises:
            NotFoundError: no execution has that id, or it has no recorded LLM trace.
            ReplayError: a recorded step could not be carried out, and was not repaired.
            TaskError: the replay failed otherwise (as in ``execute_task``).
            TimeoutError: it is still running after ``timeout`` seconds.
        """
        from .planning.llm import replay_task

        original = Task.model_validate_json(self._store.task_json(execution_id))
        task = replay_task(
            execution_id,
            inputs,
            name=f"{original.name}.replay",
            config=original.config,
            secrets=secrets,
            repair=repair,
        )
        return self.execute_task(task, timeout=timeout)

    def _check_webhook(self, task: Task) -> None:
        url = task.webhook_url or self.webhook_url
        if url is None:
            return
        if not task.webhook_url:
            try:
                check_webhook_url(url)
            except ValueError as exc:
                raise UserError(f"webhook_url: got {mask_userinfo(url)!r}; {exc}") from None
        if task.webhook_secret is None and not self.webhook_secret:
            raise UserError(
                f"webhook_secret: none for webhook_url {mask_userinfo(url)!r}; deliveries "
                "are signed with HMAC-SHA256: set Task(webhook_secret=...) or the client's "
                "(or server's) webhook_secret"
            )

    def _webhook_hook(self, task: Task) -> Hook | None:
        return hook_for(task, self.webhook_url, self.webhook_secret)

    def warmup(self, timeout: float = 60) -> None:
        """Start the worker pool now and wait until every worker is ready.

        Otherwise the pool starts with the first task, which then waits for it: call it
        before timing a first task, or to fail early when the workers cannot start.

        Args:
            timeout: seconds to wait for the workers at most.

        Raises:
            TimeoutError: the workers were not ready within ``timeout`` seconds.
            UserError: the client is closed.
        """
        backend = self._ensure_runtime()
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(backend.ready(), timeout), self._loop
        ).result()

    def _ensure_runtime(self) -> Backend:
        with self._lock:
            if self._closed:
                raise UserError("this Aesoperator client is closed; create a new one")
            if self._backend is not None:
                return self._backend
            self._futures: dict[str, concurrent.futures.Future[None]] = {}
            loop = asyncio.new_event_loop()
            backend = open_backend(
                self._temporal or self.isolation,
                self._store,
                pool_size=self.pool_size,
                owner=self._owner,
                handlers=self._handlers_snapshot,
                callbacks=self._callbacks,
                webhooks=self._webhook_hook,
            )
            thread = threading.Thread(
                target=loop.run_forever, name="aesoperator-runtime", daemon=True
            )
            thread.start()
            try:
                asyncio.run_coroutine_threadsafe(backend.start(), loop).result()
            except BaseException:  # nothing started: stop the loop thread, not leave it
                _stop_loop(loop, thread)
                raise
            self._loop, self._thread, self._backend = loop, thread, backend
            return backend

    def _future(self, execution_id: str) -> concurrent.futures.Future[None] | None:
        with self._lock:
            futures = getattr(self, "_futures", {})
            fut = futures.get(execution_id)
            if fut is not None and fut.done():
                futures.pop(execution_id, None)
            elif fut is not None and self._closed:
                return None  # nothing will resolve it now (a Temporal execution goes on): poll
            return fut

    def _on_runtime(self, method: str, *args: Any) -> Any:
        """Call a backend method on its loop; None if the runtime is not running (closed)."""
        with self._lock:
            backend, loop = (None, None) if self._closed else (self._backend, self._loop)
        if backend is None or loop is None:
            return None
        return asyncio.run_coroutine_threadsafe(
            _call(getattr(backend, method), *args), loop
        ).result()

    def _add_callback(self, execution_id: str, kind: str, fn: Callable[[Any], Any]) -> None:
        if not callable(fn):
            raise UserError(f"on_{kind} expects a function, got {fn!r}")
        added = self._on_runtime("add_callback", execution_id, kind, fn)
        if not added and kind == "alert":  # already finished, or run elsewhere: replay stored
            for alert in self._store.alerts(execution_id):
                self._callbacks.submit(fn, alert)

    # -- reading state --------------------------------------------------------------------------
    def get_task_status(self, execution_id: str) -> TaskStatus:
        """The state, progress, current action, error, result and alerts of an execution.

        Args:
            execution_id: the execution's id (``Execution.id``).

        Returns:
            A snapshot of the execution now.

        Raises:
            NotFoundError: no execution has that id.
        """
        return self._store.status(execution_id)

    def get_execution(self, execution_id: str) -> Execution:
        """A handle on an execution started earlier, by this process or another.

        Args:
            execution_id: the execution's id (``Execution.id``, ``aesop list``).

        Returns:
            The handle, to wait for it, read its result or cancel it.

        Raises:
            NotFoundError: no execution has that id.
        """
        status = self._store.status(execution_id, with_alerts=False)
        return Execution(self, execution_id, status.name)

    def cancel_task(self, execution_id: str) -> bool:
        """Cancel an execution: True if it ends ``cancelled`` because of this call.

        True means the cancel was accepted before the execution ended, and then it ends
        ``cancelled`` (within about a second; a task completing at that very moment still
        ends ``cancelled``, its result kept): the store decides which came first, atomically.
        False if it had already ended, in whatever state. Works for executions run by other
        processes on the same data directory too.

        Args:
            execution_id: the execution to cancel.

        Returns:
            True if it ends ``cancelled`` because of this call, False if it had ended.

        Raises:
            NotFoundError: no execution has that id.
        """
        self._store.status(execution_id, with_alerts=False)  # NotFoundError for unknown ids
        if not self._store.request_cancel(execution_id):
            return False
        if self._temporal is not None:
            self._ensure_runtime()  # any client cancels the workflow, not only its submitter
        mine = self._on_runtime("cancel", execution_id)  # ours: cancel it now, not at a poll
        owner = dict(self._store.unfinished()).get(execution_id)
        if not mine and owner is not None and not _owner_alive(owner):
            # Its process died after this client opened: nobody else would ever end it.
            with contextlib.suppress(NotFoundError, RuntimeError):
                self._store.transition(
                    execution_id, TaskState.CANCELLED, error=to_info(TaskCancelled("cancelled"))
                )
        return True

    def list_tasks(
        self, *, state: str | TaskState | None = None, name: str | None = None, limit: int = 50
    ) -> list[TaskStatus]:
        """Executions, newest first, optionally filtered by state and task name.

        Args:
            state: only those in this state (``"running"``, ``TaskState.FAILED``...).
            name: only those of tasks with this name.
            limit: how many at most.

        Returns:
            Their statuses, without results (read one with
            [`get_task_status`][aesoperator.client.Aesoperator.get_task_status]).

        Raises:
            UserError: ``state`` is not a state's name.
        """
        if state is not None:
            try:
                state = TaskState(state)
            except ValueError:
                raise UserError(
                    f"state: got {state!r}; use one of {[s.value for s in TaskState]}"
                ) from None
        return self._store.list_executions(
            state=state.value if state else None, name=name, limit=limit
        )

    def get_events(self, execution_id: str) -> list[Event]:
        """The execution's timeline: states, actions, pages, policy refusals, logs, alerts.

        Args:
            execution_id: the execution's id.

        Returns:
            Every event so far, in the order written (``seq`` ascending).

        Raises:
            NotFoundError: no execution has that id.
        """
        self._store.status(execution_id, with_alerts=False)  # NotFoundError for unknown ids
        return self._store.events(execution_id)

    def get_alerts(self, execution_id: str) -> list[Alert]:
        """The alerts an execution's handler raised (``ctx.alert``).

        Args:
            execution_id: the execution's id.

        Returns:
            Every alert so far, in the order raised.

        Raises:
            NotFoundError: no execution has that id.
        """
        self._store.status(execution_id, with_alerts=False)
        return self._store.alerts(execution_id)

    # -- lifecycle ------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Executions left ``pending``/``running`` by a process that is gone become failed.

        Their session memory goes with them, and any a killed process left behind.
        """

        def interrupted(owner: str | None) -> ErrorInfo:
            pid = owner.rsplit(":", 2)[1] if owner and owner.count(":") >= 2 else "?"
            return to_info(
                Interrupted(
                    f"the process that ran this execution (pid {pid}) exited before it finished"
                )
            )

        recover(self._store, lambda o: o == self._owner or _owner_alive(o), interrupted)

    def _memory(self, namespace: str) -> Memory:
        """Any namespace of this client's memory (the CLI's ``--task``: ``task:<name>``)."""
        return Memory(self._store, namespace)

    def close(self) -> None:
        """Cancel what is still running, stop the workers, release the store.

        Called by ``with Aesoperator(...) as client:`` on leaving, and for every open client
        at exit. Calling it again does nothing; a closed client refuses new tasks.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            backend, loop, thread = self._backend, self._loop, self._thread
        if backend is not None and loop is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(backend.shutdown(), loop).result(10)
            _stop_loop(loop, thread)
        self._callbacks.shutdown(wait=False)


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread | None) -> None:
    """Stop the runtime's loop and its thread; close the loop once the thread has ended."""
    loop.call_soon_threadsafe(loop.stop)
    if thread is not None:
        thread.join(5)
        if not thread.is_alive():
            loop.close()


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


@atexit.register
def _close_all() -> None:
    for client in list(_CLIENTS):
        with contextlib.suppress(Exception):
            client.close()
