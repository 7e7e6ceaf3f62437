"""Hostile servers against the fetcher, through the public API: compression bombs (stacked
codings too), endless or stalled responses, absurd headers, lying charsets, Retry-After
abuse, names that never resolve. Each is bounded: bombs are built at test time from a few
kilobytes, servers stop when the client goes or after a few seconds."""

from __future__ import annotations

import itertools
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aesoperator import Aesoperator, FetchError, Task, TaskConfig

_MB = 1 << 20


# -- bombs ------------------------------------------------------------------------------------
def _zeros(wbits: int, megabytes: int) -> Iterator[bytes]:
    """A zlib/gzip/raw-deflate stream of ``megabytes`` MB of zeros, ~1 KB per MB, made from
    1 MB of zeros: after a full flush the compressor is back where it was, so every further
    megabyte compresses to the same bytes. No trailer: a decoder stops at the limit anyway."""
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zero = bytes(_MB)
    first = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    return itertools.chain([first], itertools.repeat(again, megabytes - 1))


def _gzip(parts: Iterator[bytes]) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress(p) for p in parts]
    return b"".join(out) + c.flush()


def _brotli_zeros(megabytes: int) -> bytes:
    brotli = pytest.importorskip("brotli")
    c = brotli.Compressor(quality=5)
    zero = bytes(_MB)
    first, again = c.process(zero) + c.flush(), c.process(zero) + c.flush()
    return first + again * (megabytes - 1)


def _zstd_zeros(megabytes: int) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        zstd = pytest.importorskip("backports.zstd")
    c = zstd.ZstdCompressor()
    zero = bytes(_MB)
    first = c.compress(zero, c.FLUSH_BLOCK)
    again = c.compress(zero, c.FLUSH_BLOCK)
    return bytes(first + again * (megabytes - 1))


_GB = 4096  # megabytes: 4 GB of zeros behind each bomb, as in the report (5 GB in 8 KB)
BOMBS: dict[str, Callable[[], bytes]] = {
    "gzip": lambda: b"".join(_zeros(31, 256)),  # one layer, as before: 256 KB for 256 MB
    "x-gzip": lambda: b"".join(_zeros(31, 256)),
    "gzip, gzip": lambda: _gzip(_zeros(31, _GB)),  # ~10 KB on the wire
    "deflate, gzip": lambda: _gzip(_zeros(15, _GB)),
    "deflate,gzip": lambda: _gzip(_zeros(-15, _GB)),  # raw deflate, no space
    "br": lambda: _brotli_zeros(_GB),
    "br, gzip": lambda: _gzip(iter([_brotli_zeros(_GB)])),
    "zstd": lambda: _zstd_zeros(64),  # zstd's blocks are at most 128 KB: 64 MB is ~2 MB
    "zstd, gzip": lambda: _gzip(iter([_zstd_zeros(_GB)])),
    # An inner layer of nothing but empty deflate blocks: it decodes to no byte at all, and
    # only the count of each layer's output stops it.
    "deflate, gzip ": lambda: _gzip(
        itertools.chain([b"x\xda"], itertools.repeat(b"\x00\x00\x00\xff\xff", 800_000))
    ),
}


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory, _hosts: None) -> Iterator[Aesoperator]:
    """A client whose executions run in a worker process: a bomb that went off would end in
    MemoryLimitExceeded there, not take the test process down."""
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("hostile"), isolation="process",
                         pool_size=1)  # fmt: skip
    yield client
    client.close()


_ids = itertools.count()


def _run(client: Aesoperator, cfg: TaskConfig, url: str, **kw: Any) -> Any:
    """Fetch ``url`` in an execution of ``client``; what the page was, or the error."""

    async def fetch(ctx, url, kw):  # nested: pickled by value for the worker process
        page = await ctx.web.fetch(url, **kw)
        return {"status": page.status, "size": len(page.body), "text": page.text[:300],
                "encoding": page.encoding, "charset_refused": page.charset_refused}  # fmt: skip

    name = f"hostile_{next(_ids)}"
    client.handler(name)(fetch)
    task = Task(name=name, inputs={"url": url, "kw": {"mode": "http", **kw}}, config=cfg)
    return client.execute_task_async(task).result(timeout=120).data


@pytest.mark.parametrize("coding", list(BOMBS))
def test_stacked_encoding_bombs_stop_at_max_response_bytes(isolated, allowed, kit, coding):
    body = BOMBS[coding]()
    assert len(body) < 3 * _MB
    headers = {"content-type": "text/html", "content-encoding": coding.strip()}
    allowed.routes["/bomb"] = lambda _h: (200, headers, body)
    cfg = kit.local(max_response_bytes=_MB, max_memory_mb=400)
    with pytest.raises(FetchError, match=f"max_response_bytes={_MB}"):
        _run(isolated, cfg, f"http://allowed.test:{allowed.port}/bomb")


@pytest.mark.browser
@pytest.mark.parametrize("where", ["document", "fetch"])
def test_bombs_stop_at_the_limit_in_the_browser_too(isolated, allowed, kit, where):
    # The browser's requests are answered by the session's own HTTP stack (routes).
    body = BOMBS["gzip, gzip"]()
    headers = {"content-type": "text/html", "content-encoding": "gzip, gzip"}
    allowed.routes["/bomb"] = lambda _h: (200, headers, body)
    allowed.routes["/page"] = kit.html(
        "<p id=out>waiting</p><script>fetch('/bomb').then(r => r.text())"
        ".then(t => out.textContent = 'got ' + t.length, e => out.textContent = 'failed')"
        "</script>"
    )
    cfg = kit.local(max_response_bytes=_MB, max_memory_mb=800)
    base = f"http://allowed.test:{allowed.port}"
    if where == "document":
        with pytest.raises(FetchError, match=f"max_response_bytes={_MB}"):
            _run(isolated, cfg, base + "/bomb", mode="browser")
    else:
        page = _run(isolated, cfg, base + "/page", mode="browser", wait_until="networkidle")
        assert '<p id="out">failed</p>' in page["text"]


def test_codings_that_are_not_decoded(web, allowed, kit):
    def gz(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()

    page = b"<p>hello</p>"
    routes = {
        # An unknown coding anywhere in the chain: nothing is decoded, the body stays as sent.
        "/unknown": ("gzip, x-custom", gz(page)),
        "/identity": ("identity, gzip, identity", gz(page)),
        "/five": ("gzip, gzip, gzip, gzip, gzip", gz(gz(gz(gz(gz(page)))))),
        "/corrupt": ("gzip", b"\x1f\x8b\x08\x00 this is no gzip stream"),
    }
    for path, (coding, body) in routes.items():
        allowed.routes[path] = lambda _h, c=coding, b=body: (
            200, {"content-type": "text/html", "content-encoding": c}, b
        )  # fmt: skip

    async def get(ctx, base):
        out = {}
        for path in routes:
            try:
                out[path] = (await ctx.web.fetch(base + path, mode="http")).body.hex()
            except FetchError as exc:
                out[path] = str(exc)
        return out

    data = web.run(get, kit.local(), base=f"http://allowed.test:{allowed.port}").data
    assert data["/unknown"] == gz(page).hex()
    assert data["/identity"] == page.hex()
    assert data["/five"].endswith("stacks 5 codings; at most 4 are decoded")
    assert "the body is not valid gzip" in data["/corrupt"]
    # Only what is decoded is offered.
    offered = allowed.hits("/unknown")[0].headers["accept-encoding"]
    assert "gzip" in offered and "compress" not in offered


# -- hostile servers on a raw socket ------------------------------------------------------------
class RawServer:
    """A TCP server on 127.0.0.1 that reads a request head and lets ``behave`` answer with
    whatever bytes it likes. Bounded: a behaviour stops when the client goes (the write
    fails), when the server is closed, or at its own cap."""

    def __init__(self, behave: Callable[[socket.socket, RawServer], None]) -> None:
        self.behave = behave
        self.sent = 0
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.behave(conn, self)
        except OSError:
            pass  # the client went away: what these servers wait for
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for thread in self.threads:
            thread.join(timeout=15)


def _endless_chunks(gzip: bool) -> Callable[[socket.socket, RawServer], None]:
    def behave(conn: socket.socket, srv: RawServer) -> None:
        coding = b"Content-Encoding: gzip\r\n" if gzip else b""
        srv.send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + coding
                 + b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        blocks = _zeros(31, 1 << 30) if gzip else itertools.repeat(b"x" * 65536)
        for block in blocks:
            if srv.stop.is_set() or srv.sent > 256 * _MB:
                return
            srv.send(conn, b"%x\r\n%s\r\n" % (len(block), block))

    return behave


def _stall(conn: socket.socket, srv: RawServer) -> None:
    srv.stop.wait(10)  # never a byte of response


def _drip(conn: socket.socket, srv: RawServer) -> None:
    srv.send(conn, b"HTTP/1.1 200 OK\r\n")
    while not srv.stop.wait(0.05):
        srv.send(conn, b"X")  # a header that never ends, a byte at a time


def _huge_header(conn: socket.socket, srv: RawServer) -> None:
    srv.send(conn, b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (4 * _MB) + b"\r\n\r\n")


def _endless_headers(conn: socket.socket, srv: RawServer) -> None:
    srv.send(conn, b"HTTP/1.1 200 OK\r\n")
    while not srv.stop.is_set() and srv.sent < 64 * _MB:
        srv.send(conn, b"X-Again: and again\r\n" * 1000)


def _head_then(head: bytes) -> Callable[[socket.socket, RawServer], None]:
    def behave(conn: socket.socket, srv: RawServer) -> None:
        srv.send(conn, head)

    return behave


HOSTILE: dict[str, tuple[Callable[[socket.socket, RawServer], None], str]] = {
    "endless chunked body": (_endless_chunks(gzip=False), "max_response_bytes"),
    "endless chunked gzip": (_endless_chunks(gzip=True), "max_response_bytes"),
    "no response at all": (_stall, "no response within request_timeout_seconds=1"),
    "a header a byte at a time": (_drip, "no response within request_timeout_seconds=1"),
    "a 4 MB header": (_huge_header, "RemoteProtocolError"),
    "endless headers": (_endless_headers, "RemoteProtocolError"),
    "garbage status line": (_head_then(b"HTTP/1.1 OK fine\r\n\r\n"), "RemoteProtocolError"),
    "body shorter than its length": (
        _head_then(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"),
        "RemoteProtocolError",
    ),
    "a length past the limit": (
        _head_then(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n"),
        "max_response_bytes",
    ),
    "a length of 40 digits": (
        _head_then(b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 40 + b"\r\n\r\n"),
        "bad Content-Length",
    ),
    "negative length": (
        _head_then(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
        "RemoteProtocolError",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_servers_end_in_a_fetch_error(web, kit, case):
    behave, needle = HOSTILE[case]
    server = RawServer(behave)

    async def get(ctx, url):
        await ctx.web.fetch(url, mode="http")

    cfg = kit.local(max_response_bytes=_MB, request_timeout_seconds=1)
    try:
        with pytest.raises(FetchError, match=needle):
            web.run(get, cfg, url=f"http://allowed.test:{server.port}/")
    finally:
        server.close()
    assert server.sent < 64 * _MB  # the client hung up long before the servers' own caps


# -- charsets -----------------------------------------------------------------------------------
_UTF7 = b"<html><body><p>+ADw-script+AD4-alert(1)+ADw-/script+AD4-</p></body></html>"


@pytest.mark.parametrize(
    ("header", "meta", "refused"),
    [
        ("text/html; charset=utf-7", "", "utf-7"),
        ("text/html; charset=UTF7", "", "UTF7"),
        ("text/html; charset=unicode-1-1-utf-7", "", "unicode-1-1-utf-7"),
        ("text/html; charset=csUnicode11UTF7", "", "csUnicode11UTF7"),
        ("text/html", "<meta charset='utf-7'>", "utf-7"),
        (
            "text/html",
            '<meta http-equiv="Content-Type" content="text/html;charset=utf-7">',
            "utf-7",
        ),
        # Python codecs no browser has: escapes that make markup, or no text encoding at all.
        ("text/html; charset=unicode_escape", "", "unicode_escape"),
        ("text/html; charset=rot13", "", "rot13"),
        ("text/html; charset=zlib", "", "zlib"),
        ("text/html", "<meta charset=undefined>", "undefined"),
        ("text/html; charset=no-such-charset", "", "no-such-charset"),
    ],
)
def test_charsets_browsers_refuse_are_refused(web, allowed, kit, header, meta, refused):
    body = meta.encode() + _UTF7 + rb"\u003cscript>"
    allowed.routes["/p"] = lambda _h: (200, {"content-type": header}, body)
    page = _run(web.aesop, kit.local(), f"http://allowed.test:{allowed.port}/p")
    assert "<script>" not in page["text"]
    assert "+ADw-script+AD4-" in page["text"] and r"\u003cscript>" in page["text"]
    assert page["charset_refused"] == refused and page["encoding"] == "utf-8"


def test_charsets_browsers_know_are_used(web, allowed, kit):
    text = "<p>Привет, мир</p>"
    allowed.routes["/koi"] = lambda _h: (200, {"content-type": "text/html; charset=koi8-r"},
                                         text.encode("koi8-r"))  # fmt: skip
    # A label of the web's standard that Python spells otherwise.
    allowed.routes["/thai"] = lambda _h: (200, {"content-type": "text/html; charset=windows-874"},
                                          "<p>สวัสดี</p>".encode("cp874"))  # fmt: skip
    base = f"http://allowed.test:{allowed.port}"
    koi = _run(web.aesop, kit.local(), base + "/koi")
    thai = _run(web.aesop, kit.local(), base + "/thai")
    assert (koi["text"], koi["encoding"], koi["charset_refused"]) == (text, "koi8-r", None)
    assert (thai["text"], thai["encoding"]) == ("<p>สวัสดี</p>", "cp874")


# -- Retry-After ----------------------------------------------------------------------------------
def _limited(server, path: str, value: str, status: int = 429) -> None:
    """``path`` answers ``status`` with ``Retry-After: value`` once, then 200."""
    calls: list[int] = []

    def route(_h):
        calls.append(1)
        if len(calls) == 1:
            return status, {"retry-after": value, "content-type": "text/plain"}, b"slow down"
        return 200, {"content-type": "text/plain"}, b"ok"

    server.routes[path] = route


@pytest.mark.parametrize("value", ["999999", "9" * 5000, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_huge_retry_after_fails_the_next_request_fast(web, allowed, kit, value):
    _limited(allowed, "/r", value)

    allowed.routes["/other"] = kit.html("<p>other host</p>")

    async def twice(ctx, url, other):
        first = (await ctx.web.fetch(url)).status  # the server's answer: no time to wait
        try:
            await ctx.web.fetch(url)
        except FetchError as exc:
            # max_pages=2: the request that never left gave its page back.
            return [first, str(exc), (await ctx.web.fetch(other)).status]

    cfg = kit.local(max_retries=2, retry_delay_seconds=0.01, max_duration_seconds=20, max_pages=2)
    first, error, other = web.run(twice, cfg, url=f"http://allowed.test:{allowed.port}/r",
                                  other=f"http://127.0.0.1:{allowed.port}/other").data  # fmt: skip
    assert first == 429 and other == 200
    assert f"Retry-After: {value}"[:60] in error and "allowed.test asks to wait" in error
    assert "of max_duration_seconds=20 are left" in error
    assert len(allowed.hits("/r")) == 1  # the second request never left


@pytest.mark.parametrize("value", ["-5", "1.5", "soon", "²", "", "Fri, 31 Feb 2024 99:00:00 GMT"])
def test_unusable_retry_after_values_fall_back_to_the_backoff(web, allowed, kit, value):
    _limited(allowed, "/r", value, status=503)

    async def get(ctx, url):
        return (await ctx.web.fetch(url)).status

    cfg = kit.local(max_retries=1, retry_delay_seconds=0.01)
    assert web.run(get, cfg, url=f"http://allowed.test:{allowed.port}/r").data == 200
    (retry,) = web.events("retry")
    assert retry.data["delay"] < 1 and retry.data.get("retry_after", "") == value
    assert web.events("host_wait") == []


def test_a_retry_after_wait_is_in_the_timeline(web, allowed, kit):
    _limited(allowed, "/r", "1")

    async def twice(ctx, url):
        first = (await ctx.web.fetch(url)).status  # no retries: the 429 is the answer
        return [first, (await ctx.web.fetch(url)).status]  # waits for the host's turn

    cfg = kit.local(max_retries=0)
    assert web.run(twice, cfg, url=f"http://allowed.test:{allowed.port}/r").data == [429, 200]
    (wait,) = web.events("host_wait")
    assert wait.data["host"] == "allowed.test" and wait.data["reason"] == "Retry-After: 1"
    assert 0 < wait.data["seconds"] <= 1
    first, second = (r.at for r in allowed.hits("/r"))
    assert second - first >= 0.95


def test_a_huge_crawl_delay_fails_the_next_request_fast(web, allowed, kit):
    allowed.routes["/robots.txt"] = lambda _h: (
        200, {"content-type": "text/plain"}, b"User-agent: *\nCrawl-delay: 999999\n"
    )  # fmt: skip
    allowed.routes["/p"] = kit.html("<p>p</p>")

    async def twice(ctx, url):
        first = (await ctx.web.fetch(url)).status
        try:
            await ctx.web.fetch(url)
        except FetchError as exc:
            return [first, str(exc)]

    cfg = kit.local(respect_robots_txt=True, max_duration_seconds=20)
    first, error = web.run(twice, cfg, url=f"http://allowed.test:{allowed.port}/p").data
    assert first == 200 and "(robots.txt Crawl-delay: 999999)" in error
    assert [e.data["seconds"] for e in web.events("crawl_delay")] == [999999]
    assert len(allowed.hits("/p")) == 1


# -- DNS ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["http", pytest.param("browser", marks=pytest.mark.browser)])
def test_a_name_that_does_not_resolve_is_retried_then_a_transient_fetch_error(web, kit, mode):
    url = "http://no-such-host.invalid/"  # .invalid never resolves (RFC 6761)

    async def get(ctx, url, mode):
        await ctx.web.fetch(url, mode=mode)

    cfg = kit.local(max_retries=2, retry_delay_seconds=0.01, allowed_domains=[])
    with pytest.raises(
        FetchError, match=r"no-such-host\.invalid:80: the name does not resolve"
    ) as info:
        web.run(get, cfg, url=url, mode=mode)
    assert info.value.transient
    assert len(web.events("retry")) == 2
    assert web.events("policy_refused") == []
