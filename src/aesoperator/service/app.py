"""The HTTP API (v1): the same client, runtime and store as the Python API, over HTTP.

Reads go to a store connection of the service's own, on the event loop (a status read is
an indexed SQLite read or two, cheaper than a thread hop); writes that may wait for
SQLite's write lock go to a second connection on the thread pool, so a busy writer never
stalls the loop. Submissions go through the client's own runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from .. import __version__
from ..client import Aesoperator
from ..errors import NoPlannerError
from ..execution import Alert, TaskResult, TaskState, TaskStatus
from ..skills._registry import SKILLS
from ..store import Store, open_store
from ..store.lifecycle import SESSION_PREFIX
from ..store.memory import Memory
from ..store.tokens import project_namespace
from ..task import Task
from . import _problems
from ._auth import RateLimiter, Reader, Runner
from ._events import EventHub, stream
from ._limits import BodyLimit
from ._models import (
    ArtifactInfo,
    CancelAnswer,
    EventPage,
    Handlers,
    Health,
    Keys,
    MemoryItem,
    MemoryValue,
    NotFinished,
    Ready,
    ReplayBody,
    RerunBody,
    TaskPage,
    served,
)
from ._problems import MEDIA, ProblemError, responses
from ._settings import ServiceSettings

MAX_WAIT = 300.0

# The path parameters most routes share, described once for the schema.
ExecutionId = Annotated[
    str, PathParam(description="the execution's id, as `POST /v1/tasks` answered it")
]
Namespace = Annotated[
    str,
    PathParam(
        description="`global`, `task:<name>` (a task's permanent memory) or "
        "`exec:<execution id>` (an execution's session memory)"
    ),
]
MemoryKey = Annotated[str, PathParam(description="the key within the namespace")]


@dataclass
class _State:
    client: Aesoperator
    settings: ServiceSettings
    reads: Store
    writes: Store
    hub: EventHub
    limiter: RateLimiter | None


def _state(request: Request) -> _State:
    state: _State = request.app.state.aesop
    return state


def create_app(client: Aesoperator, *, settings: ServiceSettings | None = None) -> FastAPI:
    """The service of ``client``: its handlers, runtime and data directory, over HTTP.

    Other parts add their routers to the app this returns (``app.include_router``), as
    :func:`aesoperator.service.serve.build_app` does for the optional ones.
    """
    settings = settings or ServiceSettings()
    reads, writes = open_store(client.store_url), open_store(client.store_url)
    limiter = RateLimiter(*settings.rate_per_token) if settings.rate_per_token else None
    state = _State(
        client, settings, reads, writes, EventHub(reads, settings.sse_poll_interval), limiter
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(client._ensure_runtime)
        try:
            yield
        finally:
            await state.hub.close()
            reads.close()
            writes.close()

    app = FastAPI(
        title="Aesoperator",
        version=__version__,
        description="Run tasks on the web under hard limits: the HTTP API (v1).",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc load their scripts from a CDN: a blank page offline and
        # a third-party script beside the tokens. The schema stays at /openapi.json, and the
        # reference is in the docs site (reference/rest-api.md).
        docs_url=None,
        redoc_url=None,
    )
    app.state.aesop = state
    _problems.install(app)
    app.add_middleware(BodyLimit, limit=settings.body_limit_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.include_router(_health)
    app.include_router(_v1)
    # Seam: the schedules router (h16-sched) and /mcp (h16-mcp) are added here by their parts.
    return app


# -- health -------------------------------------------------------------------------------------
_health = APIRouter(tags=["health"])


@_health.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Health:
    """Always `{"ok": true}` while the process serves HTTP; it checks nothing else and needs
    no token. Use `/readyz` to know whether tasks can run."""
    return Health()


@_health.get(
    "/readyz",
    summary="Readiness: the store answers and the workers run",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "`detail` says what is not ready"}},
)
async def readyz(request: Request) -> Any:
    """200 when the store answers a read and the worker pool is running, else 503 with
    `detail` naming what is not ready. Needs no token; a load balancer's health check."""
    state = _state(request)
    try:
        state.reads.last_seq("")
    except Exception as exc:
        return JSONResponse({"ready": False, "detail": f"store: {exc}"}, status_code=503)
    thread = state.client._thread
    if thread is None or not thread.is_alive() or state.client._closed:
        return JSONResponse({"ready": False, "detail": "the worker pool is not running"}, 503)
    return Ready(ready=True)


# -- tasks --------------------------------------------------------------------------------------
_v1 = APIRouter(prefix="/v1", responses=responses(401, 403, 429))


def _status(state: _State, execution_id: str, project: str, alerts: bool = True) -> TaskStatus:
    return served(state.reads.status(execution_id, with_alerts=alerts, project=project))


async def _wait(state: _State, execution_id: str, timeout: float) -> None:
    """Until the execution's end is stored, or ``timeout`` seconds.

    One loop future resolved from the runtime's thread: wait_for(shield(wrap_future()))
    made three futures, a task and their callbacks per waited request."""
    fut = state.client._future(execution_id)
    if fut is None or timeout <= 0:
        return
    loop = asyncio.get_running_loop()
    ended = loop.create_future()

    def resolve(_: object) -> None:
        loop.call_soon_threadsafe(_settle, ended)

    fut.add_done_callback(resolve)  # runs at once (here) if it has ended already
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await ended


def _settle(ended: asyncio.Future[None]) -> None:
    if not ended.done():
        ended.set_result(None)


def _created(status: TaskStatus, waited: bool) -> Response:
    # Serialised by pydantic-core in one call, as GET /v1/tasks/{id} does (model_dump then
    # json.dumps built the whole dict in Python first).
    return Response(
        status.model_dump_json(),
        status_code=200 if waited and status.state.finished else 201,
        media_type="application/json",
        headers={"Location": f"/v1/tasks/{status.id}"},
    )


@_v1.post(
    "/tasks",
    summary="Submit a task",
    status_code=201,
    response_model=TaskStatus,
    responses={200: {"model": TaskStatus}, **responses(400, 413, 422)},
)
async def submit_task(
    request: Request,
    who: Runner,
    task: Annotated[dict[str, Any], Body(description="a Task as JSON (Task.model_dump)")],
    wait: Annotated[
        bool,
        Query(description="hold the answer until the execution ends or `timeout` passes"),
    ] = False,
    timeout: Annotated[
        float, Query(ge=0, le=MAX_WAIT, description="seconds `wait` holds the answer at most")
    ] = 30.0,
) -> Any:
    """Start an execution of the task (`scope: run`) and answer its status, with `Location`
    naming it. 201 while it runs; with `wait`, 200 once it has ended within `timeout`. The
    task's `name` must be a handler, function or skill this server has registered (422
    lists them, as `GET /v1/handlers` does)."""
    state = _state(request)
    parsed = Task.model_validate(task)
    try:
        # On the event loop, not a thread: a submit is one short SQLite write, and 16 threads
        # contending for the client store's lock cost more than they saved.
        execution = state.client._submit(parsed, who.project)
    except NoPlannerError as exc:  # code never travels: say what this server can run
        known = _registered(state)
        raise ProblemError(
            422,
            f"{exc}. This server runs handlers {known.handlers}, functions "
            f"{known.functions} and skills {known.skills}; handlers are registered on the "
            "server (aesop serve --import MODULE)",
            field="name",
            value=parsed.name,
            registered=known.model_dump(),
        ) from None
    if wait:
        await _wait(state, execution.id, timeout)
    return _created(_status(state, execution.id, who.project), wait)


@_v1.get("/tasks", summary="List executions", response_model=TaskPage, responses=responses(422))
async def list_tasks(
    request: Request,
    who: Reader,
    state: Annotated[
        TaskState | None, Query(description="only the executions in this state")
    ] = None,
    name: Annotated[str | None, Query(description="only the executions of this task name")] = None,
    since: Annotated[
        datetime | None,
        Query(description="only the executions created at or after this time (ISO 8601)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="executions per page at most")] = 50,
    cursor: Annotated[
        str | None,
        Query(description="the `next_cursor` of the previous page; leave out for the first"),
    ] = None,
) -> TaskPage:
    """The project's executions, newest first, a page at a time and without their results
    (read one's result at `/v1/tasks/{execution_id}/result`). `next_cursor` is null on the
    last page."""
    items, next_cursor = _state(request).reads.list_page(
        project=who.project,
        state=state.value if state else None,
        name=name,
        since=since,
        limit=limit,
        cursor=cursor,
    )
    return TaskPage(items=items, next_cursor=next_cursor)


@_v1.get(
    "/tasks/{execution_id}",
    summary="An execution's status",
    response_model=TaskStatus,
    responses=responses(404),
)
async def get_task(request: Request, who: Reader, execution_id: ExecutionId) -> Response:
    """State, progress, current action, error, result and alerts of one execution: the
    call to poll while it runs. Another project's execution is 404, as a missing one is."""
    # Serialised here: returned as a model, FastAPI would validate it against the response
    # model again before serialising it (a third of this, the most polled route's, time).
    status = _status(_state(request), execution_id, who.project)
    return Response(status.model_dump_json(), media_type="application/json")


@_v1.post(
    "/tasks/{execution_id}/cancel",
    summary="Cancel an execution",
    response_model=CancelAnswer,
    responses=responses(404),
)
async def cancel_task(request: Request, who: Runner, execution_id: ExecutionId) -> CancelAnswer:
    """Stop the execution (`scope: run`) and answer its status after. `cancelled` is true
    if the cancel came first and it ends cancelled, false if it had already ended."""
    state = _state(request)
    _status(state, execution_id, who.project, alerts=False)  # 404 for another project's
    cancelled = await run_in_threadpool(state.client.cancel_task, execution_id)
    return CancelAnswer(cancelled=cancelled, status=_status(state, execution_id, who.project))


@_v1.get(
    "/tasks/{execution_id}/result",
    response_model=TaskResult,
    responses={
        **responses(404),
        409: {"model": NotFinished, "content": {MEDIA: {}}, "description": "no result"},
    },
    summary="A completed execution's result",
)
async def get_result(request: Request, who: Reader, execution_id: ExecutionId) -> Any:
    """The result of an execution that completed. One still running, failed or cancelled
    answers 409 with its status in `execution` and, for one that ended badly, the Python
    exception's class name in `error`."""
    status = _status(_state(request), execution_id, who.project)
    if status.state is TaskState.COMPLETED and status.result is not None:
        return status.result
    if not status.state.finished:
        detail = f"execution {execution_id} is {status.state.value}; wait for it to finish"
    elif status.error is not None:
        detail = f"execution {execution_id} {status.state.value}: {status.error.message}"
    else:
        detail = f"execution {execution_id} is {status.state.value} with no result"
    # ``status`` stays the HTTP code (RFC 9457); the execution's status is its own member,
    # and ``error`` names the exception the Python API raises here, for the remote client.
    error = None
    if status.state is TaskState.CANCELLED:
        error = "TaskCancelled"
    elif status.error is not None:
        error = status.error.type
    body = {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": detail,
        "error": error,
        "execution": status.model_dump(mode="json"),
    }
    return JSONResponse(body, status_code=409, media_type=MEDIA)


@_v1.get(
    "/tasks/{execution_id}/events",
    response_model=EventPage,
    responses={
        **responses(404),
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "a JSON page, or with `Accept: text/event-stream` the live stream",
        },
    },
    summary="An execution's timeline, as a page or a live stream",
)
async def get_events(
    request: Request,
    who: Reader,
    execution_id: ExecutionId,
    after: Annotated[
        int, Query(ge=0, description="only the events whose `seq` is greater than this")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="events per page at most")] = 1000,
    accept: Annotated[
        str,
        Header(description="`text/event-stream` for the live stream (SSE), else a JSON page"),
    ] = "application/json",
    last_event_id: Annotated[
        str | None,
        Header(description="a reconnecting stream's last `seq` seen: the stream resumes after it"),
    ] = None,
) -> Any:
    """The execution's events in the order written. As JSON, a page of them and the
    `next_after` to ask for the next page with. With `Accept: text/event-stream`, the events
    as they are written, each with its `seq` as the SSE id, until the execution ends."""
    state = _state(request)
    status = _status(state, execution_id, who.project, alerts=False)
    if "text/event-stream" in accept:
        if last_event_id is not None:
            try:
                after = max(after, int(last_event_id))
            except ValueError:
                raise ProblemError(
                    422,
                    f"Last-Event-ID: got {last_event_id[:40]!r}; send the id of the last "
                    "event received (a whole number)",
                    field="Last-Event-ID",
                    value=last_event_id[:40],
                ) from None
        body = stream(
            state.hub,
            state.reads,
            status,
            after,
            state.settings.keepalive_seconds,
            request.is_disconnected,
        )
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    items = state.reads.events(execution_id, after=after, limit=limit)
    return EventPage(items=items, next_after=items[-1].seq if items else after)


@_v1.get(
    "/tasks/{execution_id}/alerts",
    summary="An execution's alerts",
    response_model=list[Alert],
    responses=responses(404),
)
async def get_alerts(request: Request, who: Reader, execution_id: ExecutionId) -> list[Alert]:
    """The alerts the execution's handler raised (`ctx.alert`), in the order raised."""
    state = _state(request)
    _status(state, execution_id, who.project, alerts=False)
    return state.reads.alerts(execution_id)


def _artifact_file(folder: Path, name: str) -> Path | None:
    """The regular file ``name`` names under ``folder`` (a relative path, as ``ctx.add_file``
    keeps them: ``report.html``, ``pages/1.html``), else None. Every part must be a plain
    name (no ``..``, ``.``, empty part, backslash or NUL) and no part may be a symlink, so
    nothing outside the execution's folder can be named, however the request encoded it."""
    parts = name.split("/")
    if len(parts) > 16 or any(
        p in ("", ".", "..")
        or "\\" in p
        or "\x00" in p
        or len(p.encode("utf-8", "surrogatepass")) > 255
        for p in parts
    ):
        return None
    path = folder
    try:
        for part in parts:
            path = path / part
            if path.is_symlink():
                return None
        if not path.is_file() or not path.resolve().is_relative_to(folder.resolve()):
            return None
    except (OSError, ValueError):
        return None
    return path


@_v1.get(
    "/tasks/{execution_id}/artifacts",
    summary="An execution's files",
    response_model=list[ArtifactInfo],
    responses=responses(404),
)
async def list_artifacts(
    request: Request, who: Reader, execution_id: ExecutionId
) -> list[ArtifactInfo]:
    """Every file the execution kept (`ctx.add_file`, screenshots, reports), by the relative
    name to download it with, with its media type and size in bytes."""
    state = _state(request)
    _status(state, execution_id, who.project, alerts=False)
    folder = state.reads.artifacts_dir(execution_id)
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.rglob("*")):
        name = entry.relative_to(folder).as_posix()
        path = _artifact_file(folder, name)
        if path is not None:
            kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            found.append(ArtifactInfo(name=name, media_type=kind, size=path.stat().st_size))
    return found


@_v1.get(
    "/tasks/{execution_id}/artifacts/{name:path}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **responses(404)},
    summary="Download one of an execution's files",
)
async def get_artifact(
    request: Request,
    who: Reader,
    execution_id: ExecutionId,
    name: Annotated[str, PathParam(description="the file's name as listed, e.g. `pages/1.html`")],
) -> Any:
    """The file's bytes, with the media type its name suggests. A name that would leave the
    execution's folder (`..`, a symlink) is 404, as a missing file is."""
    state = _state(request)
    _status(state, execution_id, who.project, alerts=False)
    path = _artifact_file(state.reads.artifacts_dir(execution_id), name)
    if path is None:
        raise ProblemError(
            404,
            f"no artifact {name[:100]!r} in execution {execution_id}; list them at "
            f"/v1/tasks/{execution_id}/artifacts",
        )
    return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0])


@_v1.post(
    "/tasks/{execution_id}/rerun",
    summary="Run an execution's task again",
    status_code=201,
    response_model=TaskStatus,
    responses=responses(404, 422),
)
async def rerun(
    request: Request, who: Runner, execution_id: ExecutionId, body: RerunBody | None = None
) -> Any:
    """A new execution of the task as it was submitted (the dashboard's Re-run): same
    name, inputs, config and plan, in the caller's project (`scope: run`). Secrets are never
    stored: send them again in `secrets` if the task had any. Answers the new status."""
    state = _state(request)
    _status(state, execution_id, who.project, alerts=False)
    raw = json.loads(state.reads.task_json(execution_id))
    if body is not None and body.secrets:
        raw["secrets"] = body.secrets
    execution = await run_in_threadpool(state.client._submit, Task.model_validate(raw), who.project)
    return _created(_status(state, execution.id, who.project), False)


@_v1.post(
    "/tasks/{execution_id}/replay",
    summary="Replay an LLM-planned execution without the model",
    status_code=201,
    response_model=TaskStatus,
    responses=responses(404, 409, 422),
)
async def replay(
    request: Request, who: Runner, execution_id: ExecutionId, body: ReplayBody | None = None
) -> Any:
    """A new execution that follows the recorded LLM trace of this one step by step, with
    `inputs` replacing the recorded ones (`Aesoperator.replay` over HTTP). A step that cannot
    be found fails it, or with `repair` goes back to the model. Answers the new status."""
    from ..planning.llm import replay_task

    state = _state(request)
    _status(state, execution_id, who.project, alerts=False)
    body = body or ReplayBody()
    original = Task.model_validate_json(state.reads.task_json(execution_id))

    def build_and_submit() -> str:
        task = replay_task(
            execution_id,
            body.inputs,
            name=f"{original.name}.replay",
            config=original.config,
            secrets=body.secrets,
            repair=body.repair,
        )
        return state.client._submit(task, who.project).id

    new_id = await run_in_threadpool(build_and_submit)
    return _created(_status(state, new_id, who.project), False)


# -- memory -------------------------------------------------------------------------------------
def _namespace(state: _State, project: str, namespace: str) -> str:
    """A project's namespace in the store; another project's is absent (404)."""
    if not namespace or "/" in namespace or namespace.startswith("project:"):
        raise ProblemError(
            404,
            f"no memory namespace {namespace[:100]!r}; use 'global', 'task:<name>' or "
            "'exec:<execution id>'",
        )
    if namespace.startswith(SESSION_PREFIX):  # an execution's session memory: its project's
        _status(state, namespace[len(SESSION_PREFIX) :], project, alerts=False)
    return project_namespace(project, namespace)


@_v1.get(
    "/memory/{namespace}",
    summary="The keys in a memory namespace",
    response_model=Keys,
    responses=responses(404),
)
async def memory_keys(request: Request, who: Reader, namespace: Namespace) -> Keys:
    """The keys stored in the project's namespace; an empty list for one never written."""
    state = _state(request)
    return Keys(keys=state.reads.mem_keys(_namespace(state, who.project, namespace)))


@_v1.get(
    "/memory/{namespace}/{key}",
    summary="Read a memory value",
    response_model=MemoryItem,
    responses=responses(404, 422),
)
async def memory_get(
    request: Request, who: Reader, namespace: Namespace, key: MemoryKey
) -> MemoryItem:
    """The JSON value stored under the key, as a handler's `ctx.memory` reads it; 404 if
    there is none."""
    state = _state(request)
    memory = Memory(state.reads, _namespace(state, who.project, namespace))
    missing = object()
    value = memory.get(key, missing)
    if value is missing:
        raise ProblemError(404, f"no memory key {key[:100]!r} in {namespace[:100]!r}")
    return MemoryItem(key=key, value=value)


@_v1.put(
    "/memory/{namespace}/{key}",
    summary="Store a memory value",
    status_code=204,
    responses=responses(404, 409, 413, 422),
)
async def memory_put(
    request: Request, who: Runner, namespace: Namespace, key: MemoryKey, body: MemoryValue
) -> Response:
    """Store `value` (any JSON, at most 64 levels deep) under the key, replacing what was
    there (`scope: run`). The next execution that reads the key sees it."""
    state = _state(request)
    memory = Memory(state.writes, _namespace(state, who.project, namespace))
    try:
        await run_in_threadpool(memory.set, key, body.value)
    except TypeError as exc:
        raise ProblemError(422, str(exc), field="value") from None
    return Response(status_code=204)


@_v1.delete(
    "/memory/{namespace}/{key}",
    summary="Delete a memory value",
    status_code=204,
    responses=responses(404, 422),
)
async def memory_delete(
    request: Request, who: Runner, namespace: Namespace, key: MemoryKey
) -> Response:
    """Remove the key and its value (`scope: run`); 404 if there was none."""
    state = _state(request)
    memory = Memory(state.writes, _namespace(state, who.project, namespace))
    if not await run_in_threadpool(memory.delete, key):
        raise ProblemError(404, f"no memory key {key[:100]!r} in {namespace[:100]!r}")
    return Response(status_code=204)


# -- what the server can run ---------------------------------------------------------------------
@_v1.get("/handlers", summary="What this server can run", response_model=Handlers)
async def handlers(request: Request, who: Reader) -> Handlers:
    """The task names a submitted task may use: the handlers and `@aesop.function`s
    registered on this server (`aesop serve --import MODULE`) and the built-in skills."""
    return _registered(_state(request))


def _registered(state: _State) -> Handlers:
    registry = state.client._handlers_snapshot()[1]
    return Handlers(
        handlers=sorted(registry.handlers),
        functions=sorted(registry.functions),
        skills=sorted(SKILLS),
    )
