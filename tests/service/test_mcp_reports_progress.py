"""Reports as resources, progress while run_task waits, and run_task's secrets and
output_schema: over stdio (``aesop mcp``) and streamable HTTP (``aesop serve``'s /mcp), each
driven by the SDK's own client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp_types import TextResourceContents

sys.path.insert(0, str(Path(__file__).parent))  # for _mcp (tests use importlib mode)

from _mcp import Transport, payload, text, transport

from aesoperator import Task, ValidationError

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(params=["stdio", "http"])
def mcp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Transport]:
    with transport(request.param, tmp_path) as served:
        yield served


def test_reports_are_listed_newest_first_and_readable(mcp: Transport) -> None:
    async def scenario(client: Client) -> None:
        ids = []
        for who in ("first", "second"):
            asked = {"name": "greet", "inputs": {"who": who}}
            ids.append(payload(await client.call_tool("run_task", asked))["id"])
        failed = payload(await client.call_tool("run_task", {"name": "boom"}))
        assert failed["state"] == "failed"
        listed = (await client.list_resources()).resources
        uris = [str(r.uri) for r in listed]
        assert uris == [f"aesop://tasks/{i}/report" for i in reversed(ids)]  # no failed one
        assert all(r.mime_type == "text/markdown" and "greet" in (r.title or "") for r in listed)
        for uri, who in zip(uris, ("second", "first"), strict=True):
            read = (await client.read_resource(uri)).contents[0]
            assert isinstance(read, TextResourceContents)
            assert read.text == f"# Hello\n\nhello {who}" and read.mime_type == "text/markdown"
        with pytest.raises(MCPError) as not_a_report:
            await client.read_resource(f"aesop://tasks/{failed['id']}/report")
        assert "boom" in str(not_a_report.value)

    mcp.run(scenario, "run")


def test_only_the_callers_project_s_reports_and_a_read_token_may_read(tmp_path: Path) -> None:
    with transport("http", tmp_path) as mcp:
        ids: list[str] = []

        async def in_default(client: Client) -> None:
            asked = {"name": "greet", "inputs": {"who": "default"}}
            ids.append(payload(await client.call_tool("run_task", asked))["id"])

        async def reader(client: Client) -> None:
            listed = (await client.list_resources()).resources
            assert [str(r.uri) for r in listed] == [f"aesop://tasks/{ids[0]}/report"]
            read = (await client.read_resource(str(listed[0].uri))).contents[0]
            assert isinstance(read, TextResourceContents) and read.text.endswith("hello default")

        async def in_other(client: Client) -> None:
            assert (await client.list_resources()).resources == []
            with pytest.raises(MCPError) as hidden:
                await client.read_resource(f"aesop://tasks/{ids[0]}/report")
            assert ids[0] in str(hidden.value) and "hello" not in str(hidden.value)

        mcp.run(in_default, "run")
        mcp.run(reader, "read")
        mcp.run(in_other, "other")


def test_run_task_reports_progress_until_the_end(mcp: Transport, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        if message == "waiting for the gate" and progress == 40:
            gate.touch()  # the handler goes on only once its 40 % has been reported

    async def scenario(client: Client) -> None:
        asked = {"name": "gated", "inputs": {"gate": str(gate)}, "wait_seconds": 120}
        status = payload(await client.call_tool("run_task", asked, progress_callback=on_progress))
        assert status["state"] == "completed", status

    mcp.run(scenario, "run")
    assert (40, 100, "waiting for the gate") in seen, seen
    assert seen[-1][0] == 100 and all(total == 100 for _, total, _ in seen)
    progresses = [p for p, _, _ in seen]
    assert progresses == sorted(progresses)  # never goes back


def test_without_a_progress_token_no_progress_and_wait_zero_sends_none(mcp: Transport) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async def scenario(client: Client) -> None:
        asked = {"name": "slow", "wait_seconds": 0}
        started = payload(await client.call_tool("run_task", asked, progress_callback=on_progress))
        assert started["state"] in ("pending", "running")
        await client.call_tool("cancel_task", {"execution_id": started["id"]})

    mcp.run(scenario, "run")
    assert seen == []


def test_secrets_reach_the_task_and_are_never_stored_or_echoed(mcp: Transport) -> None:
    answers: list[str] = []

    async def scenario(client: Client) -> None:
        asked = {"name": "signed_in", "secrets": {"password": PASSWORD}}
        answer = await client.call_tool("run_task", asked)
        status = payload(answer)
        answers.append(text(answer) + repr(answer.structured_content))
        assert status["state"] == "completed", status
        # The handler got it (it wrote it into its report), and the report shows the
        # placeholder in its place.
        assert status["result"]["content"] == "# Signed in\n\nwith [secret:password]"
        report = (await client.read_resource(f"aesop://tasks/{status['id']}/report")).contents
        assert isinstance(report[0], TextResourceContents) and PASSWORD not in report[0].text

    mcp.run(scenario, "run")
    assert all(PASSWORD not in a for a in answers)
    for stored in mcp.data_dir.rglob("*"):
        if stored.is_file():
            assert PASSWORD.encode() not in stored.read_bytes(), stored


@pytest.mark.parametrize(
    "secrets",
    [{"password": "q7"}, "hunter2-but-not-an-object", {"password": 12345678901234}],
)
def test_bad_secrets_get_the_python_api_message_without_the_value(
    mcp: Transport, secrets: Any
) -> None:
    with pytest.raises(ValidationError) as python_api:
        Task.model_validate({"name": "signed_in", "secrets": secrets})

    async def scenario(client: Client) -> None:
        bad = await client.call_tool("run_task", {"name": "signed_in", "secrets": secrets})
        assert bad.is_error and text(bad) == str(python_api.value)
        assert "secrets" in text(bad)
        for shown in (secrets, *(secrets.values() if isinstance(secrets, dict) else ())):
            assert str(shown) not in text(bad)

    mcp.run(scenario, "run")


def test_output_schema_is_the_tasks_and_a_bad_one_gets_the_python_api_message(
    mcp: Transport,
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with pytest.raises(ValidationError) as python_api:
        Task.model_validate({"name": "greet", "output_schema": "an integer"})

    async def scenario(client: Client) -> None:
        bad = await client.call_tool("run_task", {"name": "greet", "output_schema": "an integer"})
        assert bad.is_error and text(bad) == str(python_api.value)
        assert "output_schema" in text(bad)
        asked = {"name": "greet", "output_schema": schema}
        status = payload(await client.call_tool("run_task", asked))
        assert status["state"] == "completed", status

    mcp.run(scenario, "run")
    from aesoperator import Aesoperator

    with Aesoperator(data_dir=mcp.data_dir, url="") as local:
        (row,) = local._store.list_page(project="default", limit=5)[0]
        assert Task.model_validate_json(local._store.task_json(row.id)).output_schema == schema
