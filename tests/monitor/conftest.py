"""Local sites for the monitor's tests: one the test can make slow, fail, stop and restart;
HTTPS sites with ``trustme`` certificates (valid, expiring, expired, wrong host); a webhook
receiver; a forbidden server on 127.0.0.2 that counts every connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from aesoperator import Aesoperator
from serving import running
from waiting import eventually


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], site: Site) -> None:
        self.site = site
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that aborts a TLS handshake (on purpose, in these tests) is no news

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self.site.lock:
            self.site.connections += 1
        if self.site.tls is not None:
            # Handshake in the handler thread: a client that aborts (a failed verification)
            # must not stall the accept loop.
            conn = self.site.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(5)
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError):
                self.request.close()
                raise
        super().setup()

    def handle(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        site = self.server.site
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        with site.lock:
            site.requests.append(
                Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            n = len(site.requests)
        status, payload = site.reply(n, body)
        if site.delay:
            time.sleep(site.delay)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.close_connection = True

    do_GET = do_POST = do_HEAD = _serve


class Site:
    """A local HTTP(S) server whose behaviour a test changes while a monitor watches it."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.tls = tls
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        self.connections = 0
        self.status = 200
        self.delay = 0.0
        self.body = b"<html><body>All systems operational</body></html>"
        self.script: Callable[[int, bytes], tuple[int, bytes]] | None = None
        self.port = 0
        self._serving = contextlib.ExitStack()
        self.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/"

    def reply(self, n: int, body: bytes) -> tuple[int, bytes]:
        if self.script is not None:
            return self.script(n, body)
        return self.status, self.body

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def start(self) -> None:
        server = self._serving.enter_context(running(_Server((self.host, self.port), self)))
        self.port = int(server.server_address[1])

    def stop(self) -> None:
        """Close the listening socket: connections are refused until ``start()``."""
        self._serving.close()

    def wait_requests(self, n: int, timeout: float = 10.0) -> None:
        def enough() -> bool:
            seen = self.count()
            assert seen >= n, f"{self.url} saw {seen} requests, expected {n}"
            return True

        eventually(enough, timeout=timeout)


@pytest.fixture(scope="session")
def aesop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aesoperator]:
    """One process-isolated client per test process (monitors run in its worker pool)."""
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("aesop-monitor"), pool_size=2)
    client.warmup()
    yield client
    client.close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.stop()


@pytest.fixture
def make_site() -> Iterator[Callable[..., Site]]:
    made: list[Site] = []

    def make(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Site:
        s = Site(host, tls)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> trustme.CA:
    return trustme.CA(organization_name="Aesoperator Test CA")


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


CERTS = {
    # name: (identities, not_before offset, not_after offset)
    "valid": (("127.0.0.1", "localhost"), dt.timedelta(days=-1), dt.timedelta(days=365)),
    "expiring": (("127.0.0.1", "localhost"), dt.timedelta(days=-1), dt.timedelta(days=3)),
    "expired": (("127.0.0.1", "localhost"), dt.timedelta(days=-30), dt.timedelta(days=-2)),
    "wrong_host": (("wrong.example",), dt.timedelta(days=-1), dt.timedelta(days=365)),
}


def server_context(ca: trustme.CA, kind: str) -> ssl.SSLContext:
    identities, before, after = CERTS[kind]
    now = dt.datetime.now(dt.UTC)
    leaf = ca.issue_cert(*identities, not_before=now + before, not_after=now + after)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    return ctx


@pytest.fixture
def tls_site(ca: trustme.CA) -> Iterator[Callable[[str], Site]]:
    made: list[Site] = []

    def make(kind: str) -> Site:
        s = Site(tls=server_context(ca, kind))
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
