"""``aesop mcp`` as an agent meets it: spawned over stdio, driven by the SDK's own client."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp_types import TextResourceContents

sys.path.insert(0, str(Path(__file__).parent))  # for _mcp (tests use importlib mode)

from _mcp import counting_site, forbidden_fetch, payload, text, write_handlers

from aesoperator import Task, ValidationError

Scenario = Callable[[Client], Awaitable[None]]


@pytest.fixture
def with_server(tmp_path: Path) -> Callable[[Scenario], None]:
    module = write_handlers(tmp_path)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "aesoperator.cli", "mcp", "--import", module, "--data-dir", f"{tmp_path}/d"],
        cwd=tmp_path,
        env={**os.environ, "AESOP_POOL_SIZE": "1"},
    )

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            async with Client(params, read_timeout_seconds=180) as client:
                await scenario(client)

        anyio.run(main)

    return run


def test_tools_have_precise_schemas(with_server: Callable[[Scenario], None]) -> None:
    async def scenario(client: Client) -> None:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) >= {
            "run_task", "get_task_status", "get_task_result", "cancel_task", "list_tasks",
            "memory_get", "memory_set",
        }  # fmt: skip
        wait = tools["run_task"].input_schema["properties"]["wait_seconds"]
        assert (wait["type"], wait["minimum"], wait["maximum"]) == ("number", 0, 300)
        limit = tools["list_tasks"].input_schema["properties"]["limit"]
        assert (limit["minimum"], limit["maximum"]) == (1, 200)
        assert tools["get_task_status"].input_schema["required"] == ["execution_id"]
        over = await client.call_tool("run_task", {"name": "greet", "wait_seconds": 301})
        assert over.is_error and "wait_seconds" in text(over)
        wrong = await client.call_tool("list_tasks", {"limit": "many"})
        assert wrong.is_error and "limit" in text(wrong)

    with_server(scenario)


def test_run_a_handler_read_status_result_report_and_list(
    with_server: Callable[[Scenario], None],
) -> None:
    async def scenario(client: Client) -> None:
        asked = {"name": "greet", "inputs": {"who": "mcp"}}
        status = payload(await client.call_tool("run_task", asked))
        assert status["state"] == "completed", status
        assert status["result"]["content"] == "# Hello\n\nhello mcp"
        execution_id = status["id"]
        again = payload(await client.call_tool("get_task_status", {"execution_id": execution_id}))
        assert again["state"] == "completed" and again["progress"] == 100
        result = payload(await client.call_tool("get_task_result", {"execution_id": execution_id}))
        assert result["planner"] == "handler:greet" and result["content"].endswith("hello mcp")
        report = await client.read_resource(f"aesop://tasks/{execution_id}/report")
        first = report.contents[0]
        assert isinstance(first, TextResourceContents)
        assert first.text == "# Hello\n\nhello mcp" and first.mime_type == "text/markdown"
        listed = payload(await client.call_tool("list_tasks", {"state": "completed"}))
        assert [s["id"] for s in listed["items"]] == [execution_id]
        assert listed["items"][0]["result"] is None  # status only
        unknown = await client.call_tool("get_task_status", {"execution_id": "nope"})
        assert unknown.is_error and "nope" in text(unknown)

    with_server(scenario)


def test_errors_carry_the_python_api_messages(with_server: Callable[[Scenario], None]) -> None:
    with pytest.raises(ValidationError) as invalid:
        Task.model_validate({"name": "greet", "config": {"max_pages": 0}})

    async def scenario(client: Client) -> None:
        bad = await client.call_tool("run_task", {"name": "greet", "config": {"max_pages": 0}})
        assert bad.is_error and text(bad) == str(invalid.value)
        assert "TaskConfig.max_pages: got 0" in text(bad)
        unserved = await client.call_tool("run_task", {"name": "no_such_handler"})
        assert unserved.is_error and "@aesop.handler('no_such_handler')" in text(unserved)
        nothing = await client.call_tool("run_task", {})
        assert nothing.is_error and "give a name" in text(nothing)
        plan = await client.call_tool("run_task", {"plan": [{"action": "teleport"}]})
        assert plan.is_error and "teleport" in text(plan)

    with_server(scenario)


def test_policy_holds_a_forbidden_domain_gets_no_request(
    with_server: Callable[[Scenario], None],
) -> None:
    with counting_site() as (url, hits):

        async def scenario(client: Client) -> None:
            status = payload(await client.call_tool("run_task", forbidden_fetch(url + "/secret")))
            assert status["state"] == "failed", status
            assert status["error"]["type"] == "PolicyViolation", status["error"]
            assert "allowed_domains" in status["error"]["message"]
            result = await client.call_tool("get_task_result", {"execution_id": status["id"]})
            assert result.is_error and text(result) == status["error"]["message"]
            # A handler's own fetch goes through the same gate.
            handler = payload(
                await client.call_tool(
                    "run_task",
                    {
                        "name": "fetch_it",
                        "inputs": {"url": url + "/again"},
                        "config": {"allowed_domains": ["allowed.example"]},
                        "wait_seconds": 120,
                    },
                )
            )
            assert handler["state"] == "failed" and handler["error"]["type"] == "PolicyViolation"

        with_server(scenario)
        assert hits == []


def test_wait_zero_returns_the_id_then_cancel(with_server: Callable[[Scenario], None]) -> None:
    async def scenario(client: Client) -> None:
        started = payload(await client.call_tool("run_task", {"name": "slow", "wait_seconds": 0}))
        assert started["state"] in ("pending", "running") and started["id"]

        async def state() -> str:
            asked = {"execution_id": started["id"]}
            got = payload(await client.call_tool("get_task_status", asked))
            return str(got["state"])

        with anyio.fail_after(60):
            while await state() != "running":
                await anyio.sleep(0.05)
        early = await client.call_tool("get_task_result", {"execution_id": started["id"]})
        assert early.is_error and "running" in text(early)
        answer = payload(await client.call_tool("cancel_task", {"execution_id": started["id"]}))
        assert answer["cancelled"] is True
        with anyio.fail_after(60):
            while await state() != "cancelled":
                await anyio.sleep(0.05)
        again = payload(await client.call_tool("cancel_task", {"execution_id": started["id"]}))
        assert again["cancelled"] is False and again["status"]["state"] == "cancelled"

    with_server(scenario)


def test_memory_set_get_and_bounds(with_server: Callable[[Scenario], None]) -> None:
    async def scenario(client: Client) -> None:
        value: Any = {"urls": ["https://a.example/"], "n": 3}
        stored = payload(await client.call_tool("memory_set", {"key": "seen", "value": value}))
        assert stored["stored"] is True
        got = payload(await client.call_tool("memory_get", {"key": "seen"}))
        assert got["value"] == value and got["namespace"] == "global"
        missing = await client.call_tool("memory_get", {"key": "absent"})
        assert missing.is_error and "absent" in text(missing)
        other = await client.call_tool("memory_get", {"key": "seen", "namespace": "../x"})
        assert other.is_error and "namespace" in text(other)
        deep: Any = 0
        for _ in range(80):
            deep = [deep]
        too_deep = await client.call_tool("memory_set", {"key": "deep", "value": deep})
        assert too_deep.is_error and "64" in text(too_deep)

    with_server(scenario)


def test_stdout_stays_the_protocol_s_when_an_import_prints(tmp_path: Path) -> None:
    (tmp_path / "noisy.py").write_text("print('hello from an import')\n")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "aesoperator.cli", "mcp", "--import", "noisy", "--data-dir", f"{tmp_path}/d"],
        cwd=tmp_path,
        env={**os.environ, "AESOP_POOL_SIZE": "1"},
    )

    async def main() -> list[str]:
        async with Client(params, read_timeout_seconds=60) as client:
            return [t.name for t in (await client.list_tools()).tools]

    assert "run_task" in anyio.run(main)
