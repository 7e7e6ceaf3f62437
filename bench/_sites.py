"""A generated local static site and a fast server for it, for the web benchmarks.

``build_site(directory, pages=1200)`` writes a deterministic site: articles of varied sizes
(about 2 KB to 60 KB), dense same-host links (navigation, related articles, in-text links, a
few off-site ones), a ``robots.txt``. ``SiteServer(directory)`` serves it from memory with a
small asyncio HTTP/1.1 server (keep-alive) in a separate process, so the client under test has
the other core; it records the arrival time (``time.monotonic()``, comparable across processes
on Linux) of every request, read back with ``arrivals()``.

    with SiteServer(build_site(tmp)) as site:
        site.url("/index.html")
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import socket
import time
import urllib.request
from pathlib import Path
from types import TracebackType

_VOCABULARY = (
    "task page crawl policy rate limit browser request server domain network robots text "
    "budget worker memory retry timeout archive research signal market river mountain city "
    "history science energy garden language music theory design record engine ocean forest "
)
_WORDS = _VOCABULARY.split()


def _para(rng: random.Random, words: int, links: list[str]) -> str:
    out = []
    for i in range(words):
        w = rng.choice(_WORDS)
        if links and i % 37 == 19:
            out.append(f'<a href="{links.pop()}">{w} {rng.choice(_WORDS)}</a>')
        else:
            out.append(w)
    return "<p>" + " ".join(out).capitalize() + ".</p>"


def build_site(directory: str | Path, pages: int = 1200, seed: int = 7) -> Path:
    """Write ``pages`` HTML pages (plus index and robots.txt) into ``directory``."""
    root = Path(directory)
    (root / "a").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = [f"/a/{i:05d}-{rng.choice(_WORDS)}.html" for i in range(pages)]
    nav = "".join(f'<li><a href="{names[i]}">Section {i}</a></li>' for i in range(0, pages, 97))
    for i, name in enumerate(names):
        size = rng.choice([150, 300, 600, 1200, 2500, 5000])  # words: ~1 KB to ~35 KB of text
        related = [*rng.sample(names, 25), names[(i + 1) % pages], names[(i * 7 + 3) % pages]]
        inline = rng.sample(names, 15)
        paras = []
        left = size
        while left > 0:
            n = min(left, rng.randint(40, 160))
            paras.append(_para(rng, n, inline))
            left -= n
        body = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>Article {i}: {rng.choice(_WORDS)} and {rng.choice(_WORDS)}</title>"
            "<link rel=stylesheet href=/style.css></head><body>"
            f"<header><nav><ul>{nav}</ul></nav></header><main><article><h1>Article {i}</h1>"
            + "".join(paras)
            + "</article><aside><h2>Related</h2><ul>"
            + "".join(f'<li><a href="{r}">Related {r[3:8]}</a></li>' for r in related)
            + "</ul></aside></main><footer><a href='https://example.org/about'>About</a>"
            "<a href='/private/admin.html'>Admin</a></footer></body></html>"
        )
        (root / name.lstrip("/")).write_text(body, encoding="utf-8")
    index = "<!doctype html><title>Index</title>" + "".join(
        f'<a href="{n}">{n}</a> ' for n in names[:60]
    )
    (root / "index.html").write_text(index, encoding="utf-8")
    (root / "style.css").write_text("body{font-family:sans-serif}", encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n", encoding="utf-8")
    return root


_TYPES = {".html": "text/html; charset=utf-8", ".txt": "text/plain", ".css": "text/css"}


def _load(root: Path) -> dict[str, bytes]:
    files = {}
    for path in root.rglob("*"):
        if path.is_file():
            rel = "/" + path.relative_to(root).as_posix()
            files[rel] = path.read_bytes()
            if path.name == "index.html":  # a directory URL serves its index, as servers do
                files[rel[: -len("index.html")]] = files[rel]
    return files


class _Protocol(asyncio.Protocol):
    def __init__(self, files: dict[str, bytes], arrivals: list[float]) -> None:
        self.files, self.arrivals, self.buf = files, arrivals, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            path = line.split(" ")[1].split("?")[0] if " " in line else "/"
            if path == "/__arrivals":
                body, ctype, status = json.dumps(self.arrivals).encode(), "application/json", 200
            else:
                self.arrivals.append(time.monotonic())
                data_ = self.files.get(path)
                name = path.rsplit("/", 1)[-1] or "index.html"  # a directory: its index
                suffix = name[name.rfind(".") :] if "." in name else ""
                if data_ is None:
                    body, ctype, status = b"not found", "text/plain", 404
                else:
                    body, ctype, status = data_, _TYPES.get(suffix, "text/plain"), 200
            reason = "OK" if status == 200 else "Not Found"
            self.transport.write(  # type: ignore[attr-defined]
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )


def _serve(root: str, sock: socket.socket) -> None:
    files = _load(Path(root))
    arrivals: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Protocol(files, arrivals), sock=sock)
        await server.serve_forever()

    asyncio.run(main())


class SiteServer:
    """Serve ``root`` on ``host`` (port 0: a free port) from a separate process."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1") -> None:
        self.root, self.host = str(root), host
        self._proc: multiprocessing.Process | None = None
        self.port = 0

    def __enter__(self) -> SiteServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        ctx = multiprocessing.get_context("fork")
        self._proc = ctx.Process(target=_serve, args=(self.root, sock), daemon=True)
        self._proc.start()
        sock.close()
        urllib.request.urlopen(self.url("/robots.txt"), timeout=10).read()
        return self

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def arrivals(self) -> list[float]:
        with urllib.request.urlopen(self.url("/__arrivals"), timeout=10) as resp:
            return list(json.loads(resp.read()))

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(5)
