"""The supervisor: a warm pool of worker processes, the limits, and stored state.

It runs on the client's runtime thread (an asyncio loop of its own). Workers report what
happens as messages; the supervisor turns them into stored state, callbacks and futures.
Limits the task code cannot be trusted to keep — time, memory, cancellation of blocking
code, crashes — are enforced here, from outside the worker, by killing its process group.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import importlib.machinery
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cloudpickle
import psutil

from ..errors import (
    ErrorInfo,
    MemoryLimitExceeded,
    TaskCancelled,
    TimeLimitExceeded,
    WorkerCrashed,
    to_info,
)
from ..execution import Alert, TaskState, TaskStatus, utcnow
from ..store.base import (
    AlertRecord,
    Create,
    CurrentAction,
    EventRecord,
    Op,
    Progress,
    Store,
    Transition,
)
from ..task import Task
from .protocol import pack, unpack
from .runner import CancelToken, Job, Registry, Runner

log = logging.getLogger("aesoperator.runtime")
T = TypeVar("T")

CANCEL_GRACE_S = 1.0  # cooperative cancel first; after this the worker is killed
TIME_GRACE_S = 1.5  # past max_duration_seconds, before the hard kill
MEMORY_SAMPLE_S = 0.15
CANCEL_POLL_S = 0.25  # cancel requests from other processes (CLI) arrive through the store
LABEL_WRITE_S = 0.2  # set_current_action is stored at most this often
# State writes wait this long to share a transaction with what else comes in the meantime.
FLUSH_DELAY_S = 0.001
_PKG_ROOT = str(Path(__file__).resolve().parents[2])


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
    worker: _Worker | None = None
    token: CancelToken | None = None
    deadline: float | None = None
    kill_at: float | None = None
    kill_reason: tuple[TaskState, ErrorInfo] | None = None
    time_notice_sent: bool = False
    parent: str | None = None
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None

    label: str | None = None  # set_current_action: overrides the open actions while set
    label_dirty: bool = False

    @property
    def current_action(self) -> str | None:
        if self.label is not None:
            return self.label
        return self.open_actions[max(self.open_actions)] if self.open_actions else None


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    writer: asyncio.StreamWriter
    ready: bool = False
    busy: str | None = None
    handlers_version: str | None = None
    kill_reason: tuple[TaskState, ErrorInfo] | None = None
    ps: psutil.Process | None = None
    memory_floor: int = 0  # below this RSS sum no limit can be crossed: PSS is not needed

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, msg: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(pack(msg))


class Supervisor:
    def __init__(
        self,
        store: Store,
        *,
        pool_size: int,
        isolation: str,
        owner: str,
        handlers: Callable[[], tuple[str, Registry]],
        callbacks: concurrent.futures.Executor,
    ) -> None:
        self.store = store
        self.pool_size = pool_size
        self.inline = isolation == "inline"
        self.owner = owner
        self._handlers = handlers
        self._callbacks = callbacks
        self._records: dict[str, Record] = {}
        self._queue: collections.deque[Record] = collections.deque()
        self._workers: list[_Worker] = []
        self._blob_cache: tuple[str, bytes] | None = None
        self._closing = False
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inline_runner: Runner | None = None
        self.pool_ready = asyncio.Event()
        # Write-behind: state changes of one loop turn go to SQLite in one transaction, and
        # futures resolve only after it, so a waiter always reads the final state.
        self._ops: list[Op] = []
        self._ended: list[Record] = []
        self._flush_scheduled = False

    # -- start and stop ----------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        if self.inline:
            self._inline_runner = Runner(self._inline_send, self._loop)
            self.pool_ready.set()
        else:
            await asyncio.gather(*(self._spawn() for _ in range(self.pool_size)))
        self._spawn_task(self._watchdog())

    def _write(self, op: Op) -> None:
        self._ops.append(op)
        self._schedule_flush()

    def _after_flush(self, rec: Record) -> None:
        self._ended.append(rec)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_later(FLUSH_DELAY_S, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        ops, self._ops = self._ops, []
        ended, self._ended = self._ended, []
        stored: dict[str, TaskState] = {}
        try:
            stored = self.store.apply(ops)
        except Exception:
            log.exception("aesoperator: could not write execution state")
        for rec in ended:
            # The store has the last word: a cancel accepted first makes a completion cancelled.
            rec.state = stored.get(rec.id, rec.state)
            _resolve(rec.future)
            self._notify_progress(rec)

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        self._closing = True
        for rec in list(self._queue):
            self._finish(rec, TaskState.CANCELLED, None, to_info(TaskCancelled("client closed")))
        self._queue.clear()
        running = [r for r in self._records.values() if r.parent is None]
        for rec in running:
            self.cancel(rec.id)
        end = time.monotonic() + CANCEL_GRACE_S + 0.5
        while any(not r.state.finished for r in running) and time.monotonic() < end:
            await asyncio.sleep(0.02)
        for rec in running:
            if not rec.state.finished and rec.worker is not None:
                self._kill(rec.worker, TaskState.CANCELLED, to_info(TaskCancelled("client closed")))
        for worker in list(self._workers):
            worker.send({"type": "shutdown"})
            _end(worker)
        end = time.monotonic() + 2  # each read loop reaps its worker: no process left behind
        while self._workers and time.monotonic() < end:
            await asyncio.sleep(0.01)
        if self.inline and "aesoperator.web._browser" in sys.modules:
            # Inline tasks share this process's Chromium: close it with the client.
            from ..web import shutdown_browser

            with contextlib.suppress(Exception):
                await asyncio.wait_for(shutdown_browser(), 5)
        self._flush()  # the last states are stored before the loop stops
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:  # let them end here, rather than be destroyed pending at exit
            await asyncio.wait(tasks, timeout=1)

    # -- workers ------------------------------------------------------------------------------
    async def _spawn(self) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, env.get("PYTHONPATH", "")) if p)
        # polars' allocator (jemalloc) keeps freed pages for seconds by default, so a worker's
        # RSS would overstate what a data task holds; return them within half a second.
        env.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:0")
        argv = [sys.executable, "-m", "aesoperator.runtime.worker", str(child.fileno())]
        proc = subprocess.Popen(
            [*argv, str(os.getpid())],  # our pid: the worker checks it still has us as parent
            pass_fds=(child.fileno(),),
            start_new_session=True,  # its own process group: one killpg ends its browser too
            env=env,
            stdin=subprocess.DEVNULL,
        )
        child.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent)
        worker = _Worker(proc=proc, writer=writer)
        with contextlib.suppress(psutil.Error):
            worker.ps = psutil.Process(proc.pid)
        self._workers.append(worker)
        self._spawn_task(self._read_loop(worker, reader))
        if self._closing:  # shutdown began while it started: its read loop reaps it
            _killpg(proc.pid)

    async def _read_loop(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(head, "big"))
                try:
                    self._on_message(worker, unpack(body))
                except Exception:
                    log.exception("aesoperator: error handling a worker message")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        await self._worker_gone(worker)

    async def _worker_gone(self, worker: _Worker) -> None:
        # Its socket closed: it is exiting, or (hostile code) it closed the socket and lives
        # on, which ends it too. Polled, not waited for in a thread: at interpreter exit no
        # executor takes new work, and this runs then too.
        polls = 0
        while (code := worker.proc.poll()) is None:
            if polls == 100:
                _end(worker)
            polls += 1
            await asyncio.sleep(0.01)
        _killpg(worker.pid)  # anything it left behind in its group (a browser) goes too
        with contextlib.suppress(Exception):
            worker.writer.close()
        if worker in self._workers:
            self._workers.remove(worker)
        rec = self._records.get(worker.busy) if worker.busy else None
        if rec is not None and not rec.state.finished:
            if worker.kill_reason is not None:
                state, error = worker.kill_reason
            else:
                state, error = (
                    TaskState.FAILED,
                    to_info(
                        WorkerCrashed(
                            f"the worker process (pid {worker.pid}) died while running this "
                            f"execution: {_describe_exit(code)}"
                        )
                    ),
                )
            self._finish(rec, state, None, error)
        if not self._closing:
            await self._spawn()

    def _kill(self, worker: _Worker, state: TaskState, error: ErrorInfo) -> None:
        """Kill a worker and its whole process tree; the execution ends as given now."""
        worker.kill_reason = (state, error)
        for proc in _tree(worker):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _killpg(worker.pid)
        rec = self._records.get(worker.busy) if worker.busy else None
        if rec is not None:
            self._finish(rec, state, None, error)

    # -- submitting ---------------------------------------------------------------------------
    def submit(self, rec: Record) -> None:
        """Queue an execution (called on the loop). Its row already exists, as pending."""
        self._records[rec.id] = rec
        self._queue.append(rec)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and not self._closing:
            if self.inline:
                busy = sum(1 for r in self._records.values() if r.token and not r.state.finished)
                if busy >= self.pool_size:
                    return
                self._start(self._queue.popleft(), None)
            else:
                idle = next((w for w in self._workers if w.ready and w.busy is None), None)
                if idle is None:
                    return
                self._start(self._queue.popleft(), idle)

    def _start(self, rec: Record, worker: _Worker | None) -> None:
        if rec.state is not TaskState.PENDING:
            return
        self._write(Transition(rec.id, TaskState.RUNNING, owner=self.owner))
        rec.state = TaskState.RUNNING
        rec.started = time.monotonic()
        rec.deadline = rec.started + rec.task.config.max_duration_seconds + TIME_GRACE_S
        rec.token = CancelToken()
        if worker is None:
            assert self._inline_runner is not None
            _version, registry = self._handlers()
            job = Job(**{**rec.job.__dict__, "registry": registry})
            self._spawn_task(self._inline_runner.run(job, rec.token))
            return
        rec.worker = worker
        worker.busy = rec.id
        worker.memory_floor = rec.task.config.max_memory_mb * 1024 * 1024
        msg: dict[str, Any] = {
            "type": "run",
            "job": {k: v for k, v in rec.job.__dict__.items() if k != "registry"},
            "sys_path": sys.path,
        }
        try:
            version, blob = self._handlers_blob()
        except Exception as exc:
            worker.busy = None
            self._finish(
                rec, TaskState.FAILED, None,
                to_info(WorkerCrashed(
                    f"the registered handlers could not be sent to a worker process ({exc}); "
                    "make them importable or picklable, or use Aesoperator(isolation='inline')"
                )),
            )  # fmt: skip
            self._dispatch()
            return
        msg["handlers_version"] = version
        if worker.handlers_version != version:
            msg["handlers_blob"] = blob
            worker.handlers_version = version
        worker.send(msg)

    def _handlers_blob(self) -> tuple[str, bytes]:
        version, registry = self._handlers()
        if self._blob_cache is None or self._blob_cache[0] != version:
            for fn in (*registry.handlers.values(), *registry.functions.values()):
                _by_value_if_unimportable(fn)
            self._blob_cache = (version, cloudpickle.dumps(registry))
        return self._blob_cache

    def _inline_send(self, msg: dict[str, Any]) -> None:
        assert self._loop is not None
        # RuntimeError: the client is closed; a handler thread abandoned then may still report.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_message, None, msg)

    # -- cancellation ---------------------------------------------------------------------------
    def cancel(self, execution_id: str, reason: str = "cancel") -> bool:
        rec = self._records.get(execution_id)
        if rec is None or rec.state.finished:
            return False
        if rec.state is TaskState.PENDING:
            with contextlib.suppress(ValueError):
                self._queue.remove(rec)
            self._finish(rec, TaskState.CANCELLED, None, to_info(TaskCancelled("cancelled")))
            return True
        if rec.parent is not None:
            return self.cancel(rec.parent, reason)
        if rec.worker is not None:
            rec.worker.send({"type": "cancel", "id": rec.id, "reason": reason})
        elif rec.token is not None:
            rec.token.cancel(reason)
            if rec.token.task is not None:
                rec.token.task.cancel()
        if reason == "cancel":
            rec.kill_reason = (TaskState.CANCELLED, to_info(TaskCancelled("cancelled")))
        rec.kill_at = min(rec.kill_at or float("inf"), time.monotonic() + CANCEL_GRACE_S)
        return True

    # -- messages from workers ------------------------------------------------------------------
    def _on_message(self, worker: _Worker | None, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "ready":
            assert worker is not None
            worker.ready = True
            if all(w.ready for w in self._workers) and len(self._workers) >= self.pool_size:
                self.pool_ready.set()
            self._dispatch()
            return
        if kind == "idle":
            assert worker is not None
            worker.busy = None
            self._dispatch()
            return
        if kind == "retire":
            assert worker is not None
            worker.ready = False  # it exits now; _worker_gone replaces it
            return
        rec = self._records.get(msg["id"])
        if kind == "subtask":
            self._subtask(msg)
            return
        if rec is None or rec.state.finished:
            return
        if kind == "finished":
            error = ErrorInfo.model_validate(msg["error"]) if msg["error"] else None
            self._finish(rec, TaskState(msg["state"]), msg["result"], error)
            if worker is None:
                self._dispatch()
        elif kind == "progress":
            rec.progress = max(rec.progress, msg["value"])
            self._write(Progress(rec.id, rec.progress))
            if msg.get("message"):
                data = {"progress": rec.progress, "message": msg["message"]}
                self._write(EventRecord(rec.id, "progress", data))
            self._notify_progress(rec)
        elif kind == "action":
            if msg["phase"] == "start":
                rec.open_actions[msg["index"]] = _action_label(msg["name"], msg.get("details"))
                data = {"index": msg["index"], "name": msg["name"], "details": msg.get("details")}
                self._write(EventRecord(rec.id, "action", data))
            else:
                rec.open_actions.pop(msg["index"], None)
                data = {k: msg.get(k) for k in ("index", "ok", "error", "attempts")}
                self._write(EventRecord(rec.id, "action_end", data))
            self._write(CurrentAction(rec.id, rec.current_action))
            self._notify_progress(rec)
        elif kind == "current":
            label = msg["label"]
            rec.label = label[:200] if isinstance(label, str) else None
            rec.label_dirty = True  # the watchdog stores it, a few times a second at most
        elif kind == "page":
            data = {k: v for k, v in msg.items() if k not in ("type", "id")}
            self._write(EventRecord(rec.id, "page", data))
        elif kind == "alert":
            alert = Alert.model_validate(msg["alert"])
            rec.alerts.append(alert)
            self._write(AlertRecord(rec.id, alert))
            self._write(EventRecord(rec.id, "alert", alert.model_dump(mode="json")))
            for fn in list(rec.alert_cbs):
                self._callback(fn, alert)
        elif kind == "event":
            self._write(EventRecord(rec.id, msg["kind"], msg["data"]))

    def _subtask(self, msg: dict[str, Any]) -> None:
        parent = self._records.get(msg["parent"])
        task = Task.model_validate_json(msg["task"])
        now = utcnow()
        self._write(Create(msg["id"], msg["name"], msg["task"], self.owner, msg["parent"], now))
        self._write(Transition(msg["id"], TaskState.RUNNING, owner=self.owner, at=now))
        job = parent.job if parent else Job(msg["id"], msg["task"], ("", ""), "")
        job = Job(**{**job.__dict__, "secrets": {}})  # a record never keeps secrets
        rec = Record(
            id=msg["id"], task=task, job=job, state=TaskState.RUNNING, parent=msg["parent"]
        )
        self._records[rec.id] = rec
        data = {"execution_id": msg["id"], "name": msg["name"]}
        self._write(EventRecord(msg["parent"], "subtask", data, now))

    def _finish(
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
        self._write(Transition(rec.id, state, error=error, result=result))
        self._records.pop(rec.id, None)
        if rec.parent is None:
            for child in [r for r in self._records.values() if r.parent == rec.id]:
                self._finish(child, state if state is not TaskState.COMPLETED else
                             TaskState.FAILED, None, error)  # fmt: skip
        self._after_flush(rec)  # waiters wake, and callbacks hear of it, once it is stored

    def _notify_progress(self, rec: Record) -> None:
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

    def add_callback(self, execution_id: str, kind: str, fn: Callable[[Any], Any]) -> bool:
        """Register an on_progress/on_alert callback; alerts so far are replayed to it."""
        rec = self._records.get(execution_id)
        if rec is None:
            return False
        if kind == "alert":
            rec.alert_cbs.append(fn)
            for alert in rec.alerts:
                self._callback(fn, alert)
        else:
            rec.progress_cbs.append(fn)
        return True

    # -- the watchdog: time, memory, cancel requests --------------------------------------------
    async def _watchdog(self) -> None:
        last_mem = last_cancel = last_label = 0.0
        while not self._closing:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if now - last_label >= LABEL_WRITE_S:
                last_label = now
                for rec in self._records.values():
                    if rec.label_dirty and not rec.state.finished:
                        rec.label_dirty = False
                        self._write(CurrentAction(rec.id, rec.current_action))
                        self._notify_progress(rec)
            for rec in list(self._records.values()):
                if rec.state is not TaskState.RUNNING or rec.parent is not None:
                    continue
                if rec.kill_at is not None and now >= rec.kill_at:
                    self._force_end(rec)
                elif rec.deadline is not None and now >= rec.deadline:
                    rec.kill_reason = (TaskState.FAILED, to_info(TimeLimitExceeded(
                        f"max_duration_seconds={rec.task.config.max_duration_seconds:g} reached "
                        "(the task did not stop by itself and was killed)")))  # fmt: skip
                    self.cancel(rec.id, reason="time")
                    rec.kill_at = now + CANCEL_GRACE_S
                    rec.deadline = None
            if not self.inline and now - last_mem >= MEMORY_SAMPLE_S:
                last_mem = now
                await self._check_memory()
            if now - last_cancel >= CANCEL_POLL_S:
                last_cancel = now
                ids = [r.id for r in self._records.values() if r.parent is None]
                try:
                    requested = await _blocking(self.store.cancel_requests, ids)
                except Exception:  # a database locked for long: the limits must hold anyway
                    log.exception("aesoperator: could not read cancel requests")
                    requested = []
                for eid in requested:
                    self.cancel(eid)

    def _force_end(self, rec: Record) -> None:
        reason = rec.kill_reason or (TaskState.CANCELLED, to_info(TaskCancelled("cancelled")))
        rec.kill_at = None
        if rec.worker is not None and rec.worker.busy == rec.id:
            self._kill(rec.worker, *reason)
        else:  # inline: nothing to kill; the execution is given up on
            self._finish(rec, reason[0], None, reason[1])

    async def _check_memory(self) -> None:
        busy = [w for w in self._workers if w.busy and w.busy in self._records]
        if not busy:
            return
        usage = await _blocking(lambda: [(w, _tree_memory(w)) for w in busy])
        for worker, used in usage:
            rec = self._records.get(worker.busy or "")
            if rec is None or rec.state.finished:
                continue
            limit = rec.task.config.max_memory_mb
            if used > limit * 1024 * 1024:
                error = MemoryLimitExceeded(
                    f"the execution's processes used {used / 1048576:.0f} MB, over "
                    f"max_memory_mb={limit}; raise the limit or process less at once"
                )
                self._kill(worker, TaskState.FAILED, to_info(error))


async def _blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work off the loop; on it, once the interpreter is exiting.

    From then on ``concurrent.futures`` refuses new work, and the runtime still has to end
    its executions and reap its workers (the ``atexit`` close of a script that never closed).
    """
    try:
        fut = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
        return fn(*args)
    return await fut


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


def _tree(worker: _Worker) -> list[psutil.Process]:
    if worker.ps is None:
        return []
    try:
        return [worker.ps, *worker.ps.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_memory(worker: _Worker) -> int:
    """Memory of a worker's process tree: the sum of PSS, where RSS is not conclusive.

    Summing RSS counts pages that processes share (a browser's renderers share most of theirs)
    once per process. PSS splits shared pages between their sharers, so the sum is the tree's
    real footprint. PSS costs a read of smaps per process, so it is only taken when the cheap
    RSS sum (never below PSS) is over the smallest limit that could apply.
    """
    procs = _tree(worker)
    rss = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            rss += proc.memory_info().rss
    if rss <= worker.memory_floor:
        return rss
    pss = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error, AttributeError):
            pss += proc.memory_full_info().pss
    return pss or rss


def _end(worker: _Worker) -> None:
    """Kill a worker: its group, and itself should it have left the group (setsid)."""
    _killpg(worker.pid)
    with contextlib.suppress(OSError):
        worker.proc.kill()


def _killpg(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: possibly out of memory)" if name == "SIGKILL" else ""
        return f"terminated by {name}{hint}"
    return f"exited with code {code}"


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


def _resolve(fut: concurrent.futures.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
