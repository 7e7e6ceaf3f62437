"""Shared by the MCP tests: the handler module a server imports, a page server that counts the
requests it gets, the MCP server over HTTP on a real socket, and reading tool answers."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from mcp_types import CallToolResult, TextContent

from serving import QuietHandler, site
from waiting import eventually

HANDLERS = """
import time
import aesoperator as aesop

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


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free 127.0.0.1 port, on a thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, timeout=30, what="uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
