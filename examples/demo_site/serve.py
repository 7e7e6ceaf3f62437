"""Serve the demo site on 127.0.0.1 (static files, a search page, sitemap.xml).

    python examples/demo_site/serve.py [--port 8000] [--dir DIR]

Without ``--dir`` the site is generated into a temporary directory first. In code::

    with DemoServer(site_dir) as server:
        print(server.url, server.hits)   # hits: requests served, by path
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

_WORD = re.compile(r"[a-z0-9]+")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        with self.server.lock:
            self.server.hits[path] += 1
        if path == "/search":
            query = parse_qs(parts.query).get("q", [""])[0]
            self._send(200, self.server.search_page(query).encode("utf-8"))
            return
        if path == "/sitemap.xml":
            host = self.headers.get("Host", "127.0.0.1")
            body = self.server.sitemap.replace("{base}", f"http://{host}")
            self._send(200, body.encode("utf-8"), "application/xml")
            return
        target = (self.server.root / path.lstrip("/")).resolve()
        if not str(target).startswith(str(self.server.root)):
            self._send(404, b"not found", "text/plain")
            return
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or target.name in ("manifest.json", "search-index.json"):
            self._send(404, b"<h1>Not found</h1>")
            return
        kind = "text/html; charset=utf-8"
        if target.suffix == ".txt":
            kind = "text/plain; charset=utf-8"
        elif target.suffix == ".css":
            kind = "text/css"
        self._send(200, target.read_bytes(), kind)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = root.resolve()
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.index = json.loads((root / "search-index.json").read_text(encoding="utf-8"))
        self.sitemap = (root / "sitemap.xml.tmpl").read_text(encoding="utf-8")

    def search_page(self, query: str) -> str:
        terms = set(_WORD.findall(query.lower()))
        scored = []
        for item in self.index:
            words = _WORD.findall((item["title"] + " " + item["summary"]).lower())
            score = sum(1 for w in words if w in terms)
            if score:
                scored.append((score, item))
        scored.sort(key=lambda s: -s[0])
        lis = "".join(
            f'<li><a href="{i["path"]}">{escape(i["title"])}</a> '
            f'<span class="date">{i["date"] or ""}</span><p>{escape(i["summary"])}</p></li>'
            for _, i in scored[:20]
        )
        return (
            f"<!doctype html><html lang='en'><head><title>Search: {escape(query)}</title></head>"
            f"<body><h1>Search results for {escape(query)}</h1><ul class='results'>{lis}</ul>"
            "</body></html>"
        )


class DemoServer:
    """The demo site served from a background thread on 127.0.0.1 (port 0 = any free port)."""

    def __init__(self, root: str | Path, port: int = 0) -> None:
        self._server = _Server(Path(root), port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def hits(self) -> Counter[str]:
        return self._server.hits

    def start(self) -> DemoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class DemoServerProcess:
    """The demo site served by a child process (keeps the server off the caller's GIL)."""

    def __init__(self, root: str | Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--dir", str(root), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self._proc.kill()
            raise RuntimeError(f"demo server did not start: {line!r}")
        self.url = line

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> DemoServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dir", default=None)
    opts = parser.parse_args()
    tmp = None
    root = opts.dir
    if root is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from generate import build_site  # type: ignore

        tmp = tempfile.mkdtemp(prefix="aesop-demo-")
        build_site(tmp)
        root = tmp
    server = _Server(Path(root), opts.port)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
