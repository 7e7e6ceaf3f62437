"""The MCP server over streamable HTTP: uvicorn on a real socket serving the ASGI app the
service mounts at /mcp, behind bearer tokens, driven by the SDK's own client."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import TextResourceContents

sys.path.insert(0, str(Path(__file__).parent))  # for _mcp (tests use importlib mode)

from _mcp import counting_site, forbidden_fetch, payload, serving, text

from aesoperator import Aesoperator
from aesoperator.service import ServiceSettings
from aesoperator.service._mcp import mcp_http_app
from aesoperator.service.serve import build_app

TEXT = (
    "Aesoperator runs tasks on the web under hard limits. Every request passes one policy "
    "gate. Tasks run in isolated worker processes. A refused request never leaves the machine."
)

Scenario = Callable[[Client], Awaitable[None]]


@dataclass
class Served:
    url: str
    tokens: dict[str, str]  # what each is: "run", "read", "other" (project other, admin)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    client = Aesoperator(data_dir=tmp_path / "d", pool_size=1)
    store = client._store
    tokens = {
        "run": store.token_create("runner", scope="run")[1],
        "read": store.token_create("reader", scope="read")[1],
        "other": store.token_create("elsewhere", scope="admin", project="other")[1],
    }
    try:
        with serving(mcp_http_app(client)) as base:  # the store's own tokens
            yield Served(base + "/mcp", tokens)
    finally:
        client.close()


def connect(url: str, token: str, scenario: Scenario) -> None:
    async def main() -> None:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            await scenario(client)

    anyio.run(main)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic aesop_x", "Bearer"])
def test_no_or_bad_token_is_refused(served: Served, authorization: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    answer = httpx.post(served.url, json=INITIALIZE, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 401


def test_the_sdk_client_with_a_bad_token_cannot_connect(served: Served) -> None:
    ran: list[bool] = []

    async def scenario(client: Client) -> None:
        ran.append(True)

    with pytest.raises(BaseExceptionGroup) as refused:  # the SDK: "error response"
        connect(served.url, "aesop_" + "x" * 43, scenario)
    assert refused.group_contains(MCPError)
    assert ran == []


def test_run_a_skill_read_its_report_and_list(served: Served) -> None:
    async def scenario(client: Client) -> None:
        asked = {"skill": "summarize", "inputs": {"text": TEXT, "max_length": 120}}
        status = payload(await client.call_tool("run_task", asked))
        assert status["state"] == "completed", status
        report = await client.read_resource(f"aesop://tasks/{status['id']}/report")
        first = report.contents[0]
        assert isinstance(first, TextResourceContents) and first.text.strip()
        assert len(status["result"]["content"]) <= 120
        listed = payload(await client.call_tool("list_tasks", {}))
        assert [s["id"] for s in listed["items"]] == [status["id"]]

    connect(served.url, served.tokens["run"], scenario)


def test_policy_holds_over_http_a_forbidden_domain_gets_no_request(served: Served) -> None:
    with counting_site() as (site, hits):

        async def scenario(client: Client) -> None:
            status = payload(await client.call_tool("run_task", forbidden_fetch(site + "/x")))
            assert status["state"] == "failed" and status["error"]["type"] == "PolicyViolation"

        connect(served.url, served.tokens["run"], scenario)
        assert hits == []


def test_a_read_token_reads_but_cannot_run_cancel_or_write(served: Served) -> None:
    async def scenario(client: Client) -> None:
        for tool, args in (
            ("run_task", {"skill": "summarize", "inputs": {"text": TEXT}}),
            ("cancel_task", {"execution_id": "x"}),
            ("memory_set", {"key": "k", "value": 1}),
        ):
            refused = await client.call_tool(tool, args)
            assert refused.is_error and "scope is 'read'" in text(refused), text(refused)
        assert payload(await client.call_tool("list_tasks", {})) == {"items": []}

    connect(served.url, served.tokens["read"], scenario)


def test_another_project_s_executions_and_memory_are_invisible(served: Served) -> None:
    ids: list[str] = []

    async def in_default(client: Client) -> None:
        asked = {"skill": "summarize", "inputs": {"text": TEXT}}
        ids.append(payload(await client.call_tool("run_task", asked))["id"])
        await client.call_tool("memory_set", {"key": "mine", "value": "default's"})

    async def in_other(client: Client) -> None:
        for tool in ("get_task_status", "get_task_result", "cancel_task"):
            hidden = await client.call_tool(tool, {"execution_id": ids[0]})
            assert hidden.is_error and ids[0] in text(hidden), (tool, text(hidden))
        assert payload(await client.call_tool("list_tasks", {})) == {"items": []}
        memory = await client.call_tool("memory_get", {"key": "mine"})
        assert memory.is_error and "no memory key 'mine'" in text(memory)

    connect(served.url, served.tokens["run"], in_default)
    connect(served.url, served.tokens["other"], in_other)


def test_a_session_answers_only_the_token_that_opened_it(served: Served) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    mine = {**headers, "Authorization": f"Bearer {served.tokens['run']}"}
    opened = httpx.post(served.url, json=INITIALIZE, headers=mine)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    theirs = {**headers, "Authorization": f"Bearer {served.tokens['other']}"}
    stolen = httpx.post(served.url, json=listing, headers={**theirs, "Mcp-Session-Id": session})
    assert stolen.status_code == 404
    assert "run_task" not in stolen.text


def test_the_service_serves_mcp_with_its_tokens_and_revocation_holds(tmp_path: Path) -> None:
    """``aesop serve``'s app: /mcp next to /v1, one token for both; revoked, refused at once."""
    client = Aesoperator(data_dir=tmp_path / "d", pool_size=1)
    info, token = client._store.token_create("agent", scope="run")

    async def scenario(session: Client) -> None:
        asked = {"skill": "summarize", "inputs": {"text": TEXT}}
        status = payload(await session.call_tool("run_task", asked))
        assert status["state"] == "completed", status
        rest = httpx.get(
            f"{base}/v1/tasks/{status['id']}", headers={"Authorization": f"Bearer {token}"}
        )
        assert rest.status_code == 200 and rest.json()["state"] == "completed"

    try:
        with serving(build_app(client)) as base:
            connect(base + "/mcp", token, scenario)
            client._store.token_revoke(info.id)
            headers = {"Accept": "application/json, text/event-stream"}
            revoked = {**headers, "Authorization": f"Bearer {token}"}
            assert httpx.post(base + "/mcp", json=INITIALIZE, headers=revoked).status_code == 401
    finally:
        client.close()


def test_the_service_s_body_and_rate_limits_hold_on_mcp(tmp_path: Path) -> None:
    client = Aesoperator(data_dir=tmp_path / "d", pool_size=1)
    _, token = client._store.token_create("agent", scope="run")
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
    settings = ServiceSettings(rate_per_token=(0.001, 3))  # 3 requests, then none for ages
    try:
        with serving(build_app(client, settings)) as base:
            huge = (
                b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "'
                + (b"a" * 20 * 2**20)
                + b'"}}'
            )
            too_big = httpx.post(base + "/mcp", content=huge, headers=headers)
            assert too_big.status_code == 413
            answers = [
                httpx.post(base + "/mcp", json=INITIALIZE, headers=headers).status_code
                for _ in range(3)
            ]
            assert answers == [200, 200, 200]  # the burst
            limited = httpx.post(base + "/mcp", json=INITIALIZE, headers=headers)
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            # The bucket is the token's, shared with /v1.
            rest = httpx.get(base + "/v1/tasks", headers={"Authorization": f"Bearer {token}"})
            assert rest.status_code == 429
    finally:
        client.close()
