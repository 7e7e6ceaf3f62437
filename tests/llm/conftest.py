"""Fixtures: the local shop, a forbidden server, a scripted model server, and clients.

One inline client per test process (one event loop, hence one shared Chromium) drives the real
``openai`` SDK against the scripted server; ``anthropic_aesop`` does the same over the
Anthropic protocol.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from llm_protocol import ModelServer
from llm_protocol import serve as serve_model
from llm_webapp import ShopServer
from llm_webapp import serve as serve_shop

from aesoperator import Aesoperator
from serving import running


class Counting(ThreadingHTTPServer):
    """A server on 127.0.0.2 that only counts: any hit there is a leak."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.2", 0), _Count)
        self.hits = 0
        self.connections = 0

    def get_request(self) -> Any:
        conn = super().get_request()
        self.connections += 1
        return conn


class _Count(BaseHTTPRequestHandler):
    server: Counting

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits += 1
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture(scope="session")
def shop_server() -> Iterator[ShopServer]:
    with serve_shop() as srv:
        yield srv


@pytest.fixture
def shop(shop_server: ShopServer) -> ShopServer:
    shop_server.reset()
    return shop_server


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    with serve_model() as srv:
        yield srv


@pytest.fixture
def model(model_server: ModelServer) -> ModelServer:
    model_server.reset([])
    return model_server


@pytest.fixture
def forbidden() -> Iterator[Counting]:
    with running(Counting(), poll_interval=0.05) as srv:
        yield srv


@pytest.fixture(scope="session")
def aesop(
    tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer
) -> Iterator[Aesoperator]:
    llm = f"openai:gpt-4.1-mini?base_url={model_server.base_url}/v1"
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("llm"), isolation="inline", llm=llm)
    yield client
    client.close()


@pytest.fixture(scope="session")
def anthropic_aesop(
    tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer
) -> Iterator[Aesoperator]:
    llm = f"anthropic:claude-sonnet-4-20250514?base_url={model_server.base_url}"
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("llm-a"), isolation="inline", llm=llm)
    yield client
    client.close()
