"""Every REST route says what it does, and every parameter what it means.

The REST API page (``reference/rest-api.md``) is generated from the OpenAPI schema: a route
without ``summary=`` shows FastAPI's summary made from its function's name ("Get Task"), one
without a docstring no description, and a parameter without ``description=`` an empty
*meaning* column. This keeps a new route from landing that way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator
from aesoperator.service import ServiceSettings
from aesoperator.service.serve import build_app

METHODS = ("get", "post", "put", "delete", "patch")


@pytest.fixture(scope="module")
def operations(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict[str, Any]]]:
    data: Path = tmp_path_factory.mktemp("rest-docs")
    client = Aesoperator(data_dir=data, isolation="inline")
    try:
        schema = build_app(client, ServiceSettings()).openapi()
    finally:
        client.close()
    return [
        (f"{method.upper()} {path}", op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def _default_summary(where: str, op: dict[str, Any]) -> str:
    """FastAPI's summary when none is given: the function's name, title-cased. The name is
    the operationId less the path and method FastAPI appended to it."""
    method, path = where.split(" ", 1)
    suffix = re.sub(r"\W", "_", path) + "_" + method.lower()
    name = str(op.get("operationId", "")).removesuffix(suffix)
    return name.replace("_", " ").title()


def test_every_route_has_a_summary_and_a_description(
    operations: list[tuple[str, dict[str, Any]]],
) -> None:
    assert len(operations) >= 20
    bare = [
        where
        for where, op in operations
        if not (op.get("summary") or "").strip()
        or op["summary"] == _default_summary(where, op)
        or not (op.get("description") or "").strip()
    ]
    assert bare == [], "routes without summary= or a docstring:\n" + "\n".join(bare)


def test_every_parameter_has_a_description(
    operations: list[tuple[str, dict[str, Any]]],
) -> None:
    bare = [
        f"{where}: {p['name']} ({p['in']})"
        for where, op in operations
        for p in op.get("parameters", [])
        if not (p.get("description") or "").strip()
    ]
    assert bare == [], "parameters without description=:\n" + "\n".join(bare)


def test_the_default_summary_is_recognised() -> None:
    # The check above is only as good as this: FastAPI's own summary for get_task.
    op = {"operationId": "get_task_v1_tasks__execution_id__get"}
    assert _default_summary("GET /v1/tasks/{execution_id}", op) == "Get Task"
