"""Shared by the MCP tests: the handler module a server imports, a page server that counts the
requests it gets, the MCP server over HTTP on a real socket, and reading tool answers."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
from mcp_types import CallToolResult, TextContent

from serving import QuietHandler, site, uvicorn_app

if TYPE_CHECKING:
    from mcp import Client

HANDLERS = """
import os
import time
import aesoperator as aesop

@aesop.handler("gated")
def gated(ctx, gate):
    # Holds at 40 % until the test, having seen that progress, creates the gate file.
    with ctx.action("waiting for the gate"):
        ctx.progress(40)
        while not os.path.exists(gate):
            ctx.check_cancelled()
            time.sleep(0.02)
    ctx.progress(90)
    return "# Gated\\n\\nthrough"

@aesop.handler("signed_in")
def signed_in(ctx):
    return f"# Signed in\\n\\nwith {ctx.secrets['password']}"

@aesop.handler("boom")
def boom(ctx):
    raise ValueError("boom")

@aesop.handler("greet")
def greet(ctx, who="world"):
    with ctx.action("greeting", who=who):
        ctx.progress(50)
    return f"# Hello\\n\\nhello {who}"

@aesop.handler("slow")
def slow(ctx):
    for i in range(1200):
        ctx.check_cancelled()
        ctx.progress(i / 12)
        time.sleep(0.05)
    return "done"

@aesop.handler("fetch_it")
async def fetch_it(ctx, url):
    page = await ctx.web.fetch(url)
    return page.text
"""


def write_handlers(folder: Path) -> str:
    """Write the handler module into ``folder``; return its module name."""
    (folder / "mcp_handlers.py").write_text(textwrap.dedent(HANDLERS))
    return "mcp_handlers"


class Counting(QuietHandler):
    """Answers every GET with a small page and counts it: the proof a request left."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.reply(200, "<html><body><p>counted</p></body></html>")


@contextmanager
def counting_site() -> Iterator[tuple[str, list[str]]]:
    """A local page server; yields its base URL and the list of paths it was asked for."""
    handler = type("CountingHere", (Counting,), {"hits": []})
    with site(handler) as url:
        yield url, handler.hits


def forbidden_fetch(url: str) -> dict[str, Any]:
    """run_task arguments for a plan that fetches ``url`` under a policy that forbids its
    domain (private addresses allowed, so the refusal is the domain rule's)."""
    return {
        "name": "forbidden",
        "plan": [{"action": "fetch", "args": {"url": url}}],
        "config": {"allowed_domains": ["allowed.example"], "allow_private_network": True},
        "wait_seconds": 120,
    }


def payload(result: CallToolResult) -> Any:
    """A tool's JSON answer (structured content, else its text)."""
    assert not result.is_error, text(result)
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(text(result))


def text(result: CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


serving = uvicorn_app  # the tests' name for it


Scenario = Callable[["Client"], Awaitable[None]]


@dataclass
class Transport:
    """One MCP server (``aesop mcp`` over stdio, or ``aesop serve``'s /mcp) on a data dir
    with the handler module; ``run(scenario, who)`` drives it with the SDK's own client as
    ``who``: "run", and over HTTP also "read" and "other" (another project's admin token)."""

    name: str
    data_dir: Path
    run: Callable[[Scenario, str], None]


@contextmanager
def transport(name: str, tmp_path: Path) -> Iterator[Transport]:
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    module = write_handlers(tmp_path)
    data_dir = tmp_path / "d"
    if name == "stdio":
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "aesoperator.cli", "mcp", "--import", module, "--data-dir", str(data_dir)],
            cwd=tmp_path,
            env={**os.environ, "AESOP_POOL_SIZE": "2"},
        )

        def run_stdio(scenario: Scenario, who: str) -> None:
            assert who == "run", "stdio is the local user's: no tokens"

            async def main() -> None:
                async with Client(params, read_timeout_seconds=180) as client:
                    await scenario(client)

            anyio.run(main)

        yield Transport(name, data_dir, run_stdio)
        return
    from _remote import make_token, served

    tokens = {
        "run": make_token(data_dir, "runner", "--scope", "run"),
        "read": make_token(data_dir, "reader", "--scope", "read"),
        "other": make_token(data_dir, "elsewhere", "--scope", "admin", "--project", "other"),
    }
    with served(data_dir, imports=(module,), cwd=tmp_path) as base:

        def run_http(scenario: Scenario, who: str) -> None:
            async def main() -> None:
                http = create_mcp_http_client(headers={"Authorization": f"Bearer {tokens[who]}"})
                url = base + "/mcp"
                async with http, Client(streamable_http_client(url, http_client=http)) as client:
                    await scenario(client)

            anyio.run(main)

        yield Transport(name, data_dir, run_http)
