"""Local test servers, started and stopped one way (many test files had their own copy)."""

from __future__ import annotations

import fcntl
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseServer
from typing import Any, ClassVar, TypeVar

S = TypeVar("S", bound=BaseServer)


@contextmanager
def default_ports() -> Iterator[None]:
    """Hold 127.0.0.1's ports 80 and 443 for this test (a file lock across test workers):
    the tests that need the default ports wait for each other instead of failing."""
    with open(Path(tempfile.gettempdir()) / "aesop-offline-web.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def free_port() -> int:
    """A port free on 127.0.0.1 now (for servers that take a port number, not a socket)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(server: S, poll_interval: float = 0.5) -> Iterator[S]:
    """Serve on a daemon thread for the block; then shut down and close, so no port is left."""
    threading.Thread(target=server.serve_forever, args=(poll_interval,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing (pytest output stays clean) and sends a body in one call."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(
        self, status: int, body: bytes | str, kind: str = "text/html; charset=utf-8",
        extra: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class PagesHandler(QuietHandler):
    """Serves ``pages`` (a path, query ignored, to its HTML); 404 for any other path."""

    pages: ClassVar[dict[str, str]] = {}  # set by each subclass

    def do_GET(self) -> None:
        page = self.pages.get(self.path.split("?", 1)[0])
        if page is None:
            return self.reply(404, "<html><body><h1>Not Found</h1></body></html>")
        self.reply(200, page)


@contextmanager
def site(handler: type[BaseHTTPRequestHandler] | dict[str, str]) -> Iterator[str]:
    """``handler`` served on 127.0.0.1 for the block (a dict of pages: a ``PagesHandler``
    serving them); yields the base URL."""
    if isinstance(handler, dict):
        handler = type("Pages", (PagesHandler,), {"pages": handler})
    with running(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


@contextmanager
def uvicorn_app(app: Any, timeout: float = 60) -> Iterator[str]:
    """An ASGI ``app`` under uvicorn on a thread, on a socket bound to a free 127.0.0.1 port
    before it starts (no window for another process to take the port); yields the base URL."""
    import socket

    import uvicorn

    from waiting import eventually

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, timeout=timeout, what="uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
