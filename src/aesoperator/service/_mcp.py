"""The MCP server: Aesoperator's tasks as tools for an agent, over stdio or streamable HTTP.

Built on the official ``mcp`` SDK (``MCPServer``, mcp >= 2). Every tool goes through the
same ``Aesoperator`` and store calls as a Python caller and the /v1 routes, so a task asked
for over MCP is validated by the same code and runs under the same policy gate and limits; its
errors come back as MCP tool errors carrying exactly the Python API's message.

Who is calling: over stdio the caller is the local user who started ``aesop mcp`` (the data
directory's owner: project ``default``, every scope). Over HTTP every request must carry
``Authorization: Bearer <token>``; ``verify`` turns a token into a ``Principal`` (its project
and scope) or ``None`` (refused: 401). By default that is the store's own token check, so
``/mcp`` takes exactly the tokens ``/v1`` does. Tools act within the token's project: another
project's ids are as absent as unknown ones.

This module imports the SDK at import time: import it only where the ``service`` extra is
installed (``aesop mcp``, the service).
"""

# No ``from __future__ import annotations``: the SDK reads the tools' signatures at run time
# (type hints, the Context parameter), and they must resolve without this module's locals.

import contextlib
import functools
import hashlib
import inspect
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import anyio
import anyio.to_thread
from mcp import MCPError
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import (
    INVALID_PARAMS,
    Annotations,
    CallToolResult,
    ListResourcesResult,
    PaginatedRequestParams,
    TextContent,
)
from mcp_types import Resource as McpResource
from pydantic import Field, WithJsonSchema
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..client import Aesoperator, _result_or_raise
from ..errors import AesoperatorError
from ..execution import TaskState, TaskStatus
from ..store.base import TokenStore
from ..store.lifecycle import SESSION_PREFIX
from ..store.memory import Memory
from ..store.tokens import project_namespace
from ..task import Task

__all__ = [
    "McpHttpApp",
    "Principal",
    "TokenVerifier",
    "create_mcp_server",
    "mcp_http_app",
    "mount",
    "serve_stdio",
]

ScopeName = Literal["read", "run", "admin"]


class Limiter(Protocol):
    """The service's per-token rate limit: 0 if a request may go, else seconds to wait."""

    def take(self, key: str) -> float: ...


_PRINCIPAL_KEY = "aesop.principal"  # where the HTTP app leaves the caller in the ASGI scope
MAX_WAIT_SECONDS = 300
REPORTS_PER_PAGE = 50  # resources/list: the newest completed executions' reports, paged
PROGRESS_EVERY = 0.25  # seconds between status reads while run_task reports progress
REPORT_URI = "aesop://tasks/{execution_id}/report"


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a project and what the token may do there."""

    project: str = "default"
    scope: ScopeName = "admin"
    token_id: str | None = None  # the rate limit's key (else a hash of the token)


TokenVerifier = Callable[[str], Principal | Awaitable[Principal | None] | None]
"""``verify(token)``: the token's ``Principal``, or ``None`` for a missing/bad/revoked one.
May be sync or async (an async one keeps a store read off the event loop)."""

_INSTRUCTIONS = (
    "Aesoperator runs web tasks under hard limits (pages, time, memory, allowed domains, "
    "rate). run_task starts one (a registered handler by name, a built-in skill such as "
    "'research' or 'summarize', or an explicit plan) and waits up to wait_seconds; then poll "
    "get_task_status and read get_task_result or the resource aesop://tasks/{id}/report."
)


def _principal(ctx: Context) -> Principal:
    """The caller: the HTTP app's ``Principal``; the local user over stdio (no request)."""
    return _principal_of(ctx.request_context.request)


def _principal_of(request: Any) -> Principal:
    if request is None:
        return Principal()
    found = getattr(request, "scope", {}).get(_PRINCIPAL_KEY)
    if not isinstance(found, Principal):  # an HTTP request that skipped the auth wrapper
        raise ToolError("not authenticated: send Authorization: Bearer <token>")
    return found


def _may_run(principal: Principal, tool: str) -> None:
    if principal.scope == "read":
        raise ToolError(
            f"{tool}: this token's scope is 'read', which cannot run, cancel or write memory; "
            "use a token with scope 'run' (aesop token create NAME --scope run)"
        )


def _status_json(status: TaskStatus, *, with_result: bool = True) -> dict[str, Any]:
    if not with_result:
        status = status.model_copy(update={"result": None})
    out: dict[str, Any] = status.model_dump(mode="json")
    return out


def _user_error(exc: Exception) -> ToolError:
    return ToolError(str(exc))


_Tool = Callable[..., Awaitable[dict[str, Any]]]


def _answering(fn: _Tool) -> _Tool:
    """Errors become a tool error whose text is exactly the Python API's message.

    (The SDK would prefix a raised ``ToolError`` with "Error executing tool NAME: ", so an
    agent or a test could not compare it with what ``execute_task`` raises.) The signature
    stays ``fn``'s, so the input schema is derived from it.
    """

    @functools.wraps(fn)
    async def tool(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except (ToolError, AesoperatorError, RuntimeError, TypeError) as exc:
            return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)

    return tool


def _answering_tool(server: MCPServer, *, description: str) -> Callable[[_Tool], _Tool]:
    def register(fn: _Tool) -> _Tool:
        server.tool(description=description)(_answering(fn))
        return fn

    return register


@dataclass(frozen=True)
class _Acting:
    """``client`` acting for ``principal``: within its project, as the /v1 routes do."""

    client: Aesoperator
    principal: Principal

    def status(self, execution_id: str, *, alerts: bool = True) -> TaskStatus:
        """Another project's execution is as absent as one that never existed."""
        return self.client._store.status(
            execution_id, with_alerts=alerts, project=self.principal.project
        )

    def memory(self, namespace: str) -> Memory:
        if namespace.startswith(SESSION_PREFIX):  # an execution's session memory: its project's
            self.status(namespace[len(SESSION_PREFIX) :], alerts=False)
        return Memory(self.client._store, project_namespace(self.principal.project, namespace))


def create_mcp_server(client: Aesoperator) -> MCPServer:
    """The MCP server's tools and resources, acting through ``client`` within the caller's
    project."""

    def acting(ctx: Context) -> _Acting:
        return _Acting(client, _principal(ctx))

    def tool(description: str) -> Callable[[_Tool], _Tool]:
        return _answering_tool(server, description=description)

    server: MCPServer = _Server(
        client,
        "aesoperator",
        title="Aesoperator",
        instructions=_INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )

    @tool("Start a task and wait up to wait_seconds for it to finish.")
    async def run_task(
        ctx: Context,
        name: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=200,
                description="The task's name: a registered handler's, or any name for a "
                "skill or a plan (default: the skill's name, or 'plan').",
            ),
        ] = None,
        skill: Annotated[
            str | None,
            Field(min_length=1, max_length=100, description="A built-in skill, e.g. 'research'."),
        ] = None,
        plan: Annotated[
            list[dict[str, Any]] | None,
            Field(
                min_length=1,
                max_length=1000,
                description="Explicit steps: {action, args, save_as}; actions are built-ins "
                "(fetch, crawl, screenshot, memory_get, memory_set, summarize, subtask) or "
                "registered functions.",
            ),
        ] = None,
        inputs: Annotated[
            dict[str, Any] | None, Field(description="The task's inputs (JSON).")
        ] = None,
        config: Annotated[
            dict[str, Any] | None,
            Field(
                description="TaskConfig fields: max_pages, max_duration_seconds, "
                "allowed_domains, blocked_domains, require_https, requests_per_second..."
            ),
        ] = None,
        description: Annotated[str, Field(max_length=10_000)] = "",
        memory_scope: Literal["session", "permanent"] = "session",
        # Typed Any (schema given by hand) so that Task validation, which never echoes a
        # secret, judges every value; the SDK's argument check would print it.
        secrets: Annotated[
            Any,
            WithJsonSchema(
                {
                    "type": ["object", "null"],
                    "additionalProperties": {"type": "string"},
                    "description": "Values the task may type into pages by placeholder "
                    "({{secret:NAME}}); never stored, never echoed, redacted from events "
                    "and results.",
                }
            ),
        ] = None,
        output_schema: Annotated[
            Any,
            WithJsonSchema(
                {
                    "type": ["object", "null"],
                    "description": "JSON schema the result's data must match.",
                }
            ),
        ] = None,
        wait_seconds: Annotated[
            float,
            Field(
                ge=0,
                le=MAX_WAIT_SECONDS,
                description="How long to wait for the end; 0 returns at once with the id.",
            ),
        ] = 30,
    ) -> dict[str, Any]:
        me = acting(ctx)
        _may_run(me.principal, "run_task")
        if name is None and skill is None and plan is None:
            raise ToolError("run_task: give a name (a registered handler), a skill or a plan")
        spec: dict[str, Any] = {
            "name": name or skill or "plan",
            "description": description,
            "inputs": inputs or {},
            "config": config or {},
            "memory_scope": memory_scope,
        }
        if skill is not None:
            spec["skill"] = skill
        if plan is not None:
            spec["plan"] = plan
        if secrets is not None:
            spec["secrets"] = secrets
        if output_schema is not None:
            spec["output_schema"] = output_schema
        try:
            task = Task.model_validate(spec)  # the Python API's validation and messages
            execution = client._submit(task, me.principal.project)
        except AesoperatorError as exc:
            raise _user_error(exc) from None
        meta = ctx.request_context.meta
        if wait_seconds > 0 and meta is not None and meta.get("progress_token") is not None:
            await _report_progress(ctx, me, execution.id, wait_seconds)
        elif wait_seconds > 0:
            with contextlib.suppress(TimeoutError):
                await anyio.to_thread.run_sync(execution.wait, wait_seconds, abandon_on_cancel=True)
        return _status_json(me.status(execution.id))

    @tool("An execution's state, progress, current action, error, result.")
    async def get_task_status(
        ctx: Context, execution_id: Annotated[str, Field(min_length=1, max_length=100)]
    ) -> dict[str, Any]:
        try:
            return _status_json(acting(ctx).status(execution_id))
        except AesoperatorError as exc:
            raise _user_error(exc) from None

    @_answering_tool(
        server,
        description="A completed execution's result; an error (the execution's own) if it "
        "failed, was cancelled or has not finished.",
    )
    async def get_task_result(
        ctx: Context, execution_id: Annotated[str, Field(min_length=1, max_length=100)]
    ) -> dict[str, Any]:
        try:
            result = _result_or_raise(acting(ctx).status(execution_id))
        except (AesoperatorError, RuntimeError) as exc:
            raise _user_error(exc) from None
        out: dict[str, Any] = result.model_dump(mode="json")
        return out

    @tool("Cancel an execution; cancelled is true if it ends cancelled.")
    async def cancel_task(
        ctx: Context, execution_id: Annotated[str, Field(min_length=1, max_length=100)]
    ) -> dict[str, Any]:
        me = acting(ctx)
        _may_run(me.principal, "cancel_task")
        try:
            me.status(execution_id, alerts=False)  # another project's: not found
            cancelled = client.cancel_task(execution_id)
            status = me.status(execution_id)
        except AesoperatorError as exc:
            raise _user_error(exc) from None
        return {"cancelled": cancelled, "status": _status_json(status, with_result=False)}

    @tool("Executions, newest first (status only, without results).")
    async def list_tasks(
        ctx: Context,
        state: Literal["pending", "running", "completed", "failed", "cancelled"] | None = None,
        name: Annotated[str | None, Field(min_length=1, max_length=200)] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        project = acting(ctx).principal.project
        try:
            rows, _ = client._store.list_page(project=project, state=state, name=name, limit=limit)
        except AesoperatorError as exc:
            raise _user_error(exc) from None
        return {"items": [_status_json(s, with_result=False) for s in rows]}

    namespace_field = Field(
        pattern=r"^(global|task:[^/]+|exec:[^/]+)$",
        max_length=300,
        description="'global' (aesop.memory), 'task:NAME' (a permanent task's memory) or "
        "'exec:ID' (an execution's session memory).",
    )
    key_field = Field(min_length=1, max_length=1000)

    @tool("Read a memory value (JSON).")
    async def memory_get(
        ctx: Context,
        key: Annotated[str, key_field],
        namespace: Annotated[str, namespace_field] = "global",
    ) -> dict[str, Any]:
        try:
            memory = acting(ctx).memory(namespace)
            if key not in memory:
                raise ToolError(f"no memory key {key!r} in namespace {namespace!r}")
            return {"key": key, "namespace": namespace, "value": memory.get(key)}
        except (AesoperatorError, TypeError) as exc:
            raise _user_error(exc) from None

    @tool("Store a JSON value in memory (at most 64 levels, 16 MiB).")
    async def memory_set(
        ctx: Context,
        key: Annotated[str, key_field],
        value: Annotated[Any, Field(description="Any JSON value.")],
        namespace: Annotated[str, namespace_field] = "global",
    ) -> dict[str, Any]:
        me = acting(ctx)
        _may_run(me.principal, "memory_set")
        try:
            me.memory(namespace).set(key, value)
        except (AesoperatorError, TypeError) as exc:
            raise _user_error(exc) from None
        return {"key": key, "namespace": namespace, "stored": True}

    @server.resource(
        REPORT_URI,
        name="report",
        description="A completed execution's report (its markdown content).",
        mime_type="text/markdown",
    )
    async def report(execution_id: str, ctx: Context) -> str:
        try:
            result = _result_or_raise(acting(ctx).status(execution_id))
        except (AesoperatorError, RuntimeError, ToolError) as exc:
            raise ResourceError(str(exc)) from None
        if result.content:
            return result.content
        body = json.dumps(result.data, ensure_ascii=False, indent=2, default=str)
        return f"# {result.task_name}\n\n{result.summary}\n\n```json\n{body}\n```\n"

    return server


async def _report_progress(
    ctx: Context, me: _Acting, execution_id: str, wait_seconds: float
) -> None:
    """Until the execution ends or ``wait_seconds`` pass: a progress notification (0-100, the
    current action as its message) whenever the stored status moves, read at most every
    ``PROGRESS_EVERY`` seconds. Progress never goes back (the protocol wants it increasing)."""
    last: tuple[float, str | None] | None = None
    with anyio.move_on_after(wait_seconds):
        while True:
            status = await anyio.to_thread.run_sync(
                functools.partial(me.status, execution_id, alerts=False)
            )
            progress = max(status.progress, last[0] if last else 0.0)
            if status.state == TaskState.COMPLETED:
                progress = 100.0
            now = (progress, status.current_action)
            if now != last:
                await ctx.report_progress(progress, 100, status.current_action)
                last = now
            if status.state.finished:
                return
            await anyio.sleep(PROGRESS_EVERY)


class _Server(MCPServer):
    """``MCPServer`` whose resources/list names the caller's reports.

    The SDK lists only resources registered ahead and gives ``list_resources`` no caller; a
    report exists per completed execution and belongs to a project, so the list handler
    (which gets the request) is overridden. Reading goes through the report template.
    """

    def __init__(self, client: Aesoperator, *args: Any, **kwargs: Any) -> None:
        self._aesop = client
        super().__init__(*args, **kwargs)

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        principal = _principal_of(ctx.request)
        cursor = params.cursor if params is not None else None
        try:
            rows, next_cursor = await anyio.to_thread.run_sync(
                functools.partial(
                    self._aesop._store.list_page,
                    project=principal.project,
                    state="completed",
                    limit=REPORTS_PER_PAGE,
                    cursor=cursor,
                )
            )
        except AesoperatorError as exc:  # a cursor that is not one of ours
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        reports = [_report_entry(status) for status in rows]
        static = await self.list_resources() if cursor is None else []
        return ListResourcesResult(resources=[*static, *reports], next_cursor=next_cursor)


def _report_entry(status: TaskStatus) -> McpResource:
    finished = status.finished_at.isoformat() if status.finished_at else None
    return McpResource(
        uri=REPORT_URI.format(execution_id=status.id),
        name=f"report-{status.id}",
        title=f"{status.name}: report",
        description=f"The report of execution {status.id} ({status.name}), completed"
        + (f" {finished}" if finished else ""),
        mime_type="text/markdown",
        annotations=Annotations(last_modified=finished) if finished else None,
    )


class McpHttpApp:
    """The streamable HTTP ASGI app, behind the service's bearer tokens.

    Path-agnostic: serve it at ``/mcp`` however the host app routes (a Starlette ``Route`` or
    ``Mount``). The SDK's session manager needs a running task group: a host that mounts this
    app enters ``async with app.lifespan():`` in its own lifespan (a mounted app's lifespan
    events are not forwarded); served on its own, the ASGI lifespan protocol does it.
    """

    def __init__(
        self, server: MCPServer, verify: TokenVerifier, *, limiter: Limiter | None = None
    ) -> None:
        # DNS-rebinding protection guards cookie- or network-authenticated servers; every
        # request here carries a bearer token a rebinding page cannot read, and the host
        # header check would refuse the service on a non-loopback --host.
        server.streamable_http_app(
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
        )
        self._manager = server.session_manager
        self._verify = verify
        self._limiter = limiter

    def lifespan(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        principal = await self._authenticate(scope)
        if principal is None:
            await _refuse(send)
            return
        token = _bearer(scope) or ""
        key = principal.token_id or hashlib.sha256(token.encode()).hexdigest()
        wait = self._limiter.take(key) if self._limiter is not None else 0.0
        if wait > 0:
            await _too_many(send, wait)
            return
        scope = dict(scope)
        scope[_PRINCIPAL_KEY] = principal
        # The SDK binds a session to the credential that opened it (client_id): another
        # token presenting that session id gets 404, as if the session did not exist.
        scope["user"] = AuthenticatedUser(
            AccessToken(
                token="",  # never kept in the scope
                client_id=key,
                scopes=[principal.scope],
            )
        )
        await self._manager.handle_request(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Principal | None:
        token = _bearer(scope)
        if not token:
            return None
        found = self._verify(token)
        if inspect.isawaitable(found):
            found = await found
        return found if isinstance(found, Principal) else None

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        async with self.lifespan():
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


def _bearer(scope: Scope) -> str | None:
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _problem(send: Send, status: int, title: str, detail: str, header: bytes) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    name = b"www-authenticate" if status == 401 else b"retry-after"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (name, header),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send) -> None:
    detail = (
        "missing, unknown or revoked token: send Authorization: Bearer <token> "
        "(create one with `aesop token create NAME`)"
    )
    await _problem(send, 401, "Unauthorized", detail, b"Bearer")


async def _too_many(send: Send, wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    detail = f"this token is over its rate limit; retry after {seconds} s (Retry-After)"
    await _problem(send, 429, "Too Many Requests", detail, str(seconds).encode())


def store_verifier(store: TokenStore) -> TokenVerifier:
    """The service's tokens: ``store.token_check`` (a revoked token fails at once)."""

    def verify(token: str) -> Principal | None:
        info = store.token_check(token)
        return None if info is None else Principal(info.project, info.scope, info.id)

    return verify


def mcp_http_app(
    client: Aesoperator, verify: TokenVerifier | None = None, *, limiter: Limiter | None = None
) -> McpHttpApp:
    """The ASGI app for ``/mcp``: ``create_mcp_server`` behind ``verify`` (default: the
    tokens of ``client``'s store) and the per-token ``limiter``."""
    verify = verify or store_verifier(client._store)
    return McpHttpApp(create_mcp_server(client), verify, limiter=limiter)


def mount(app: Starlette, client: Aesoperator) -> McpHttpApp:
    """Serve MCP at ``/mcp`` in the service's ``app``, with its tokens, inside its lifespan."""
    # create_app's per-token rate limit: one bucket per token for /v1 and /mcp together.
    mcp = mcp_http_app(client, limiter=app.state.aesop.limiter)
    app.router.routes.append(Route("/mcp", endpoint=mcp))
    outer = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(host: Starlette) -> AsyncIterator[Any]:
        async with outer(host) as state, mcp.lifespan():
            yield state

    app.router.lifespan_context = lifespan
    return mcp


async def serve_stdio(client: Aesoperator) -> None:
    """Serve MCP on this process's stdin/stdout until the client closes them (``aesop mcp``)."""
    await create_mcp_server(client).run_stdio_async()
