"""Local servers for the web layer's tests: an allowed one and a forbidden one that counts.

``allowed.test`` resolves (for the policy's resolver, via ``AESOP_HOSTS``) to 127.0.0.1 and
``forbidden.test`` to 127.0.0.2; the forbidden server counts every connection and request.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskConfig
from serving import running

Reply = tuple[int, dict[str, str], bytes]
Route = Callable[["Handler"], Reply]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.connections = 0
        self.lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn = super().get_request()
        with self.lock:
            self.connections += 1
        return conn

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def hits(self, prefix: str = "/") -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def count(self) -> int:
        with self.lock:
            return len(self.requests) + self.connections


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                    body, time.monotonic())  # fmt: skip
        with self.server.lock:
            self.server.requests.append(seen)
        path = self.path.split("?")[0]
        route = self.server.routes.get(path)
        if route is None:
            status, headers, payload = 404, {"content-type": "text/plain"}, b"not found"
        else:
            status, headers, payload = route(self)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_HEAD = do_PUT = _serve


def html(body: str, status: int = 200, **headers: str) -> Route:
    data = body.encode()
    return lambda _h: (status, {"content-type": "text/html; charset=utf-8", **headers}, data)


@pytest.fixture
def allowed() -> Iterator[Server]:
    with running(Server("127.0.0.1"), poll_interval=0.05) as srv:
        yield srv


@pytest.fixture
def forbidden() -> Iterator[Server]:
    with running(Server("127.0.0.2"), poll_interval=0.05) as srv:
        yield srv


@dataclass
class Web:
    """Runs a handler through the public API and gives back its value and timeline."""

    aesop: Aesoperator
    names: list[str] = field(default_factory=list)

    def run(self, fn: Callable[..., Any], config: TaskConfig, **inputs: Any) -> Any:
        name = f"{fn.__name__}_{len(self.names)}"
        self.names.append(name)
        self.aesop.handler(name)(fn)
        self.last_id: str | None = None
        task = Task(name=name, inputs=inputs, config=config)
        execution = self.aesop.execute_task_async(task)
        self.last_id = execution.id
        return execution.result(timeout=120)

    def events(self, kind: str | None = None) -> list[Any]:
        assert self.last_id is not None
        evs = self.aesop.get_events(self.last_id)
        return [e for e in evs if kind is None or e.kind == kind]


def local(**kw: Any) -> TaskConfig:
    base: dict[str, Any] = {
        "allow_private_network": True,
        "allowed_domains": ["allowed.test", "127.0.0.1"],
        "respect_robots_txt": False,
        "max_retries": 0,
        "request_timeout_seconds": 10,
    }
    base.update(kw)
    return TaskConfig(**base)


@pytest.fixture(scope="session", autouse=True)
def _hosts() -> Iterator[None]:
    old = os.environ.get("AESOP_HOSTS")
    os.environ["AESOP_HOSTS"] = (
        "allowed.test=127.0.0.1,forbidden.test=127.0.0.2,public.test=127.0.0.2"
    )
    yield
    if old is None:
        os.environ.pop("AESOP_HOSTS", None)
    else:
        os.environ["AESOP_HOSTS"] = old


@pytest.fixture(scope="session")
def aesop(tmp_path_factory: pytest.TempPathFactory, _hosts: None) -> Iterator[Aesoperator]:
    # One inline client for the session: one event loop, hence one shared Chromium.
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("aesop"), isolation="inline")
    yield client
    client.close()


@pytest.fixture
def web(aesop: Aesoperator) -> Web:
    return Web(aesop)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def _tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("allowed.test").configure_cert(server_ctx)
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    old = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(bundle)  # the client trusts this CA, like a private CA
    yield server_ctx
    if old is None:
        os.environ.pop("SSL_CERT_FILE", None)
    else:
        os.environ["SSL_CERT_FILE"] = old


@pytest.fixture
def secure(_tls: Any) -> Iterator[Server]:
    """An HTTPS server for ``allowed.test`` on 127.0.0.1, with a certificate from a test CA."""
    srv = Server("127.0.0.1")
    srv.socket = _tls.wrap_socket(srv.socket, server_side=True)
    with running(srv, poll_interval=0.05):
        yield srv


_COUNTING_SERVER = """
import asyncio, json, socket, sys, time
arrivals = []
class P(asyncio.Protocol):
    buf = b""
    def connection_made(self, t): self.t = t
    def data_received(self, data):
        self.buf += data
        while b"\\r\\n\\r\\n" in self.buf:
            head, self.buf = self.buf.split(b"\\r\\n\\r\\n", 1)
            path = head.split(b" ", 2)[1].decode()
            if path == "/__arrivals":
                body = json.dumps(arrivals).encode()
            else:
                arrivals.append(time.monotonic())
                body = b"<html><title>t</title><p>page</p></html>"
            self.t.write(b"HTTP/1.1 200 OK\\r\\nContent-Type: text/html\\r\\nContent-Length: "
                         + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
async def main():
    sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    server = await asyncio.get_running_loop().create_server(P, sock=sock)
    await server.serve_forever()
asyncio.run(main())
"""


@dataclass
class CountingServer:
    """A server in its own process (no GIL shared with the client): counts arrivals."""

    port: int

    def arrivals(self) -> list[float]:
        import json
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{self.port}/__arrivals", timeout=10) as resp:
            return list(json.loads(resp.read()))


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _COUNTING_SERVER], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        yield CountingServer(int(proc.stdout.readline()))
    finally:
        proc.kill()
        proc.wait()


class Kit:
    """Helpers for test modules (conftest is not importable under importlib mode)."""

    html = staticmethod(html)
    local = staticmethod(local)


@pytest.fixture
def kit() -> Kit:
    return Kit()
