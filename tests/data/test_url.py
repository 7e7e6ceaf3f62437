"""Files given as URLs are fetched through the web layer, under the task's policy."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from _datahelpers import run

from aesoperator import Aesoperator, PolicyViolation
from serving import running

CSV = b"date,customer,amount\n2024-01-02,Ann,10.50\n2024-02-03,Bob,20.00\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.paths: list[str] = []

    @property
    def base(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        files = {
            "/sales.csv": (CSV, "text/csv"),
            "/export": (CSV, "text/csv"),
            "/sales.csv.gz": (gzip.compress(CSV), "application/gzip"),
        }
        body, kind = files.get(self.path, (b"not found", "text/plain"))
        self.send_response(200 if self.path in files else 404)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def allowed() -> Iterator[_Server]:
    with running(_Server("127.0.0.1")) as server:
        yield server


@pytest.fixture(scope="module")
def forbidden() -> Iterator[_Server]:
    with running(_Server("127.0.0.2")) as server:
        yield server


def test_csv_and_gzip_over_http(inline: Aesoperator, allowed: _Server) -> None:
    urls = [f"{allowed.base}/sales.csv", f"{allowed.base}/sales.csv.gz", f"{allowed.base}/export"]
    result = run(
        inline,
        {"data_files": urls, "metrics": ["revenue"], "duplicates": "keep"},
        allow_private_network=True,
    )
    assert result.data["metrics"]["revenue"] == pytest.approx(3 * 30.5)
    assert result.data["files"] == urls
    assert result.pages_visited == 3
    assert {"/sales.csv", "/sales.csv.gz", "/export"} <= set(allowed.paths)


def test_a_forbidden_url_is_never_requested(
    inline: Aesoperator, allowed: _Server, forbidden: _Server
) -> None:
    before = list(forbidden.paths)
    with pytest.raises(PolicyViolation):
        run(
            inline,
            {"data_files": [f"{allowed.base}/sales.csv", f"{forbidden.base}/sales.csv"]},
            allow_private_network=True,
            allowed_domains=["127.0.0.1"],
        )
    assert forbidden.paths == before == []
    with pytest.raises(PolicyViolation):
        run(inline, {"data_files": [f"{allowed.base}/sales.csv"]})  # private network refused
