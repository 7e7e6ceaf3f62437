"""A real served instance for the service tests (and the other service parts' tests).

``serving(tmp_path)`` starts ``create_app`` on uvicorn on a free 127.0.0.1 port, on a
thread of the test process, with a fresh data directory and the handlers below; ``Served``
makes tokens (``served.token(scope, project)``) and httpx clients that carry them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from aesoperator import Aesoperator, TaskContext
from aesoperator.service import ServiceSettings, create_app
from aesoperator.store import open_store
from serving import uvicorn_app


def register_handlers(client: Aesoperator) -> None:
    @client.handler("echo")
    def echo(ctx: TaskContext, **inputs: Any) -> dict[str, Any]:
        return inputs

    @client.handler("ticker")
    async def ticker(ctx: TaskContext, n: int = 20, pause: float = 0.02) -> str:
        for i in range(n):
            ctx.emit("tick", i=i)
            ctx.progress(100 * (i + 1) / (n + 1))
            await ctx.sleep(pause)
        return f"ticked {n}"

    @client.handler("slow")
    async def slow(ctx: TaskContext, seconds: float = 60) -> str:
        ctx.progress(1, "sleeping")
        await ctx.sleep(seconds)
        return "woke"

    @client.handler("remember")
    def remember(ctx: TaskContext, key: str, value: Any) -> str:
        ctx.memory.set(key, value)
        return ctx.memory.namespace

    @client.handler("files")
    def files(ctx: TaskContext) -> str:
        ctx.add_file("report.txt", "the report")
        ctx.add_file("nested/inner.txt", "inside")
        return "ok"

    @client.handler("boom")
    def boom(ctx: TaskContext) -> str:
        raise ValueError("it broke")


@dataclass
class Served:
    url: str
    app: FastAPI
    client: Aesoperator
    data_dir: Path
    _names: Iterator[int]

    def token(self, scope: str = "run", project: str = "default") -> str:
        store = open_store(self.data_dir)
        try:
            return store.token_create(f"t{next(self._names)}", scope=scope, project=project)[1]
        finally:
            store.close()

    def revoke(self, token: str) -> None:
        store = open_store(self.data_dir)
        try:
            info = store.token_check(token)
            assert info is not None
            store.token_revoke(info.id)
        finally:
            store.close()

    def http(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def submit(self, token: str, name: str, wait: bool = False, **inputs: Any) -> dict[str, Any]:
        with self.http(token) as http:
            answer = http.post(
                "/v1/tasks",
                params={"wait": str(wait).lower()},
                json={"name": name, "inputs": inputs},
            )
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        return body


@contextlib.contextmanager
def serving(
    tmp_path: Path,
    settings: ServiceSettings | None = None,
    register: Callable[[Aesoperator], None] = register_handlers,
    build: Callable[..., FastAPI] = create_app,
) -> Iterator[Served]:
    """``build``'s app (the core API; ``serve.build_app`` for all ``aesop serve`` mounts) on a
    free local port, with a client on a fresh data directory."""
    data_dir = tmp_path / "served"
    client = Aesoperator(data_dir=data_dir, pool_size=2)
    register(client)
    app = build(client, settings=settings)
    try:
        with uvicorn_app(app) as url:
            yield Served(url, app, client, data_dir, iter(range(10**9)))
    finally:
        client.close()


def check_against_schema(operations: list[Any], headers: dict[str, str], max_examples: int) -> None:
    """schemathesis on ``operations``: no 5xx, answers match the schema, its content types
    and its documented status codes; ``max_examples`` derandomized examples each."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        response_schema_conformance,
        content_type_conformance,
        status_code_conformance,
    ]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=max_examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, timeout=30, checks=checks)

        run()
