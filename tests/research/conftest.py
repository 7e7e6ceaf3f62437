"""Fixtures: the generated demo site served on 127.0.0.1, a forbidden server on 127.0.0.2."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from demo_site.generate import build_site
from demo_site.serve import DemoServer


def _bait_page(forbidden: str) -> str:
    # A page about the research topic whose best links point at a host the task may not touch.
    links = "".join(
        f'<li><a href="{forbidden}/quantum-computing-hardware-{i}.html">Quantum computing '
        f"hardware breakthrough {i}</a></li>"
        for i in range(5)
    )
    body = " ".join(
        "Quantum computing hardware keeps improving as superconducting qubits gain fidelity."
        for _ in range(5)
    )
    return (
        "<html><head><title>Quantum computing links</title></head><body><article>"
        f"<h1>Quantum computing reading list</h1><p>{body}</p><ul>{links}</ul>"
        '<p>See also <a href="/topics/quantum-computing/">quantum computing news</a>.</p>'
        "</article></body></html>"
    )


class _Counter(BaseHTTPRequestHandler):
    hits: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = b"<html><body><p>Quantum computing hardware secrets.</p></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Forbidden:
    """A server on 127.0.0.2 that counts every request it receives."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.2", 0), _Counter)
        self.server.hits = []  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> list[str]:
        return self.server.hits  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def forbidden() -> Iterator[Forbidden]:
    server = Forbidden()
    yield server
    server.close()


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory, forbidden: Forbidden) -> Path:
    root = tmp_path_factory.mktemp("demo-site")
    build_site(root, articles=300, seed=11)
    (root / "bait.html").write_text(_bait_page(forbidden.url), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def site(site_dir: Path) -> Iterator[DemoServer]:
    with DemoServer(site_dir) as server:
        yield server


@pytest.fixture(scope="session")
def aesop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aesoperator]:
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("aesop-research"), isolation="inline")
    yield client
    client.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
