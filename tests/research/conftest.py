"""Fixtures: the generated demo site served on 127.0.0.1, a forbidden server on 127.0.0.2."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from aesoperator import Aesoperator
from serving import QuietHandler, running

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


class _Counter(QuietHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = b"<html><body><p>Quantum computing hardware secrets.</p></body></html>"
        self.reply(200, body, "text/html")


class Forbidden:
    """A server on 127.0.0.2 that counts every request it receives."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.2", 0), _Counter)
        self.server.hits = []  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}"

    @property
    def hits(self) -> list[str]:
        return self.server.hits  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="session")
def forbidden() -> Iterator[Forbidden]:
    server = Forbidden()
    with running(server.server):
        yield server


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
