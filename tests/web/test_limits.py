"""Rate ceiling, page budget, retries, Retry-After, robots.txt, size cap, through the public API."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from aesoperator import FetchError, PolicyViolation


def _pages(server, kit, n, prefix="/p"):
    for i in range(n):
        links = "".join(f'<a href="{prefix}{j}">{j}</a>' for j in range(n))
        server.routes[f"{prefix}{i}"] = kit.html(f"<title>{i}</title><p>page {i}</p>{links}")


def _max_in_window(times, window=1.0):
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_rate_ceiling_holds_under_concurrency(web, counting_server, kit):
    # The server runs in its own process, so its clock reads arrivals, not our GIL.
    async def many(ctx, urls):
        pages = await asyncio.gather(*(ctx.web.fetch(u, mode="http") for u in urls))
        return [p.status for p in pages]

    urls = [f"http://127.0.0.1:{counting_server.port}/p{i}" for i in range(12)]
    cfg = kit.local(requests_per_second=5, concurrent_requests=8)
    assert web.run(many, cfg, urls=urls).data == [200] * 12
    times = counting_server.arrivals()
    assert len(times) == 12
    assert _max_in_window(times) <= 5


def test_concurrency_bound(web, allowed, kit):
    state = {"now": 0, "max": 0}
    lock = threading.Lock()
    gate = threading.Event()

    def slow(_h):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        gate.wait(0.2)
        with lock:
            state["now"] -= 1
        return 200, {"content-type": "text/plain"}, b"ok"

    for i in range(9):
        allowed.routes[f"/s{i}"] = slow

    async def many(ctx, urls):
        return [p.status for p in await asyncio.gather(*(ctx.web.fetch(u) for u in urls))]

    urls = [f"http://allowed.test:{allowed.port}/s{i}" for i in range(9)]
    assert web.run(many, kit.local(concurrent_requests=3), urls=urls).data == [200] * 9
    assert state["max"] == 3


def test_max_pages_is_exact_under_concurrency(web, allowed, kit):
    _pages(allowed, kit, 40)

    async def crawl(ctx, url):
        return [p.url async for p in ctx.web.crawl([url])]

    cfg = kit.local(max_pages=7, concurrent_requests=8)
    result = web.run(crawl, cfg, url=f"http://allowed.test:{allowed.port}/p0")
    assert len(result.data) == 7
    assert len(allowed.requests) == 7
    assert result.pages_visited == 7


def test_max_pages_with_parallel_fetches(web, allowed, kit):
    _pages(allowed, kit, 20)

    async def many(ctx, urls):
        out = await asyncio.gather(*(ctx.web.fetch(u) for u in urls), return_exceptions=True)
        return sorted(type(x).__name__ for x in out)

    urls = [f"http://allowed.test:{allowed.port}/p{i}" for i in range(20)]
    data = web.run(many, kit.local(max_pages=5, concurrent_requests=8), urls=urls).data
    assert data.count("Page") == 5 and data.count("PageLimitExceeded") == 15
    assert len(allowed.requests) == 5


def test_refused_fetch_gives_its_page_back(web, allowed, forbidden, kit):
    _pages(allowed, kit, 2)

    async def two(ctx, bad, good):
        with contextlib.suppress(PolicyViolation):
            await ctx.web.fetch(bad)
        return (await ctx.web.fetch(good)).status

    result = web.run(two, kit.local(max_pages=1), bad=f"http://forbidden.test:{forbidden.port}/",
                     good=f"http://allowed.test:{allowed.port}/p0")  # fmt: skip
    assert result.data == 200
    assert forbidden.count() == 0


def test_crawl_max_pages_and_depth(web, allowed, kit):
    _pages(allowed, kit, 30)

    async def crawl(ctx, url):
        return [p.url async for p in ctx.web.crawl([url], max_pages=4)]

    assert len(web.run(crawl, kit.local(), url=f"http://allowed.test:{allowed.port}/p0").data) == 4


def test_crawl_fetches_max_pages_when_some_fail_at_the_limit(web, allowed, kit):
    # The links to a dead server are in flight when the limit is reached; when they fail,
    # their places go to the next pages, so the crawl still yields max_pages pages.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    dead = f"http://allowed.test:{sock.getsockname()[1]}"
    allowed.routes["/"] = kit.html(
        f'<a href="{dead}/x">x</a><a href="{dead}/y">y</a>'
        + "".join(f'<a href="/ok{i}">{i}</a>' for i in range(6))
    )
    for i in range(6):
        allowed.routes[f"/ok{i}"] = kit.html(f"<p>{i}</p>")

    async def crawl(ctx, url):  # same_host=False: a port of its own is another host
        return [p.url async for p in ctx.web.crawl([url], max_pages=4, same_host=False)]

    cfg = kit.local(concurrent_requests=4, max_retries=2, retry_delay_seconds=0.05)
    try:
        urls = web.run(crawl, cfg, url=f"http://allowed.test:{allowed.port}/").data
    finally:
        sock.close()
    assert len(urls) == 4 and not any(u.startswith(dead) for u in urls)
    assert sorted(e.data["url"] for e in web.events("crawl_skipped")) == [dead + "/x", dead + "/y"]


def test_same_host_means_the_same_port_too(web, allowed, counting_server, kit):
    # Documentation links to a development server on the same host (127.0.0.1:8000): another
    # server, not followed by a same-host crawl; followed when same_host=False.
    other = f"http://allowed.test:{counting_server.port}/p1"
    allowed.routes["/"] = kit.html(f'<a href="{other}">dev server</a><a href="/a">a</a>')
    allowed.routes["/a"] = kit.html("<p>a</p>")

    async def crawl(ctx, url, same_host):
        return [p.url async for p in ctx.web.crawl([url], same_host=same_host)]

    start = f"http://allowed.test:{allowed.port}/"
    assert web.run(crawl, kit.local(), url=start, same_host=True).data == [start, start + "a"]
    assert counting_server.arrivals() == []
    followed = web.run(crawl, kit.local(), url=start, same_host=False).data
    assert other in followed and len(counting_server.arrivals()) == 1


def test_best_first_follows_the_score(web, allowed, kit):
    allowed.routes["/"] = kit.html(
        '<a href="/a">boring</a><a href="/b">apple pie</a>'
        '<a href="/c">apple pie, more apple pie</a>'
    )
    for p in ("/a", "/b", "/c"):
        allowed.routes[p] = kit.html("<p>leaf</p>")

    async def crawl(ctx, url):
        score = lambda link: link.text.count("apple") + link.text.count("pie")  # noqa: E731
        pages = ctx.web.crawl([url], strategy="best_first", score=score)
        return [p.url.rsplit("/", 1)[1] async for p in pages]

    cfg = kit.local(concurrent_requests=1)
    assert web.run(crawl, cfg, url=f"http://allowed.test:{allowed.port}/").data == [
        "",
        "c",
        "b",
        "a",
    ]


def test_retries_with_backoff_on_5xx(web, allowed, kit):
    calls = []

    def flaky(_h):
        calls.append(1)
        if len(calls) < 3:
            return 503, {"content-type": "text/plain"}, b"busy"
        return 200, {"content-type": "text/plain"}, b"ok"

    allowed.routes["/f"] = flaky

    async def get(ctx, url):
        return (await ctx.web.fetch(url)).status

    cfg = kit.local(max_retries=3, retry_delay_seconds=0.05)
    assert web.run(get, cfg, url=f"http://allowed.test:{allowed.port}/f").data == 200
    assert len(calls) == 3
    delays = [e.data["delay"] for e in web.events("retry")]
    assert len(delays) == 2 and delays[1] > delays[0]  # exponential: x2 with ±20% jitter


def test_retries_run_out_and_4xx_is_not_retried(web, allowed, kit):
    allowed.routes["/down"] = lambda _h: (500, {"content-type": "text/plain"}, b"no")
    allowed.routes["/gone"] = lambda _h: (404, {"content-type": "text/plain"}, b"no")

    async def get(ctx, down, gone):
        return [(await ctx.web.fetch(down)).status, (await ctx.web.fetch(gone)).status]

    cfg = kit.local(max_retries=2, retry_delay_seconds=0.01)
    base = f"http://allowed.test:{allowed.port}"
    assert web.run(get, cfg, down=base + "/down", gone=base + "/gone").data == [500, 404]
    assert len(allowed.hits("/down")) == 3
    assert len(allowed.hits("/gone")) == 1


def test_connection_errors_are_retried_then_fail(web, kit):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = sock.getsockname()[1]

    async def get(ctx, url):
        await ctx.web.fetch(url)

    try:
        with pytest.raises(FetchError) as info:
            web.run(get, kit.local(max_retries=2, retry_delay_seconds=0.01),
                    url=f"http://allowed.test:{port}/")  # fmt: skip
    finally:
        sock.close()
    assert info.value.transient
    assert len(web.events("retry")) == 2


def test_a_server_that_refused_every_attempt_gets_one_attempt_until_it_answers(web, allowed, kit):
    # A crawl meets links to a server that is down (docs linking to a development server):
    # one backoff series finds it down, the next links to it get one attempt each (no
    # backoff), other servers are unaffected; once it listens again (a monitor's next check),
    # it answers at once.
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = sock.getsockname()[1]
    dead = f"http://allowed.test:{port}"
    allowed.routes["/ok"] = kit.html("<p>fine</p>")

    class Back(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"up")

        def log_message(self, *args):
            pass

    servers = []

    def revive():
        sock.close()
        srv = ThreadingHTTPServer(("127.0.0.1", port), Back)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)

    async def get(ctx, urls):
        out = []
        for url in urls:
            if url == "revive":
                revive()
                continue
            try:
                out.append((await ctx.web.fetch(url, mode="http")).status)
            except FetchError as exc:
                out.append(str(exc))
        return out

    urls = [dead + "/a", dead + "/b", f"http://allowed.test:{allowed.port}/ok", "revive",
            dead + "/c"]  # fmt: skip
    try:
        first, second, ok, back = web.run(
            get, kit.local(max_retries=2, retry_delay_seconds=0.01), urls=urls
        ).data
    finally:
        sock.close()
        for srv in servers:
            srv.shutdown()
            srv.server_close()
    assert "ConnectError" in first
    assert "ConnectError" in second and "refused lately: not retried" in second, second
    assert ok == 200 and back == 200
    assert [e.data["url"] for e in web.events("retry")] == [dead + "/a"] * 2


def test_a_bot_challenge_is_not_retried(web, allowed, kit):
    # Cloudflare answers 503 (or 403) with cf-mitigated: challenge: the same on every retry.
    allowed.routes["/wall"] = lambda _h: (
        503, {"content-type": "text/html", "cf-mitigated": "challenge"}, b"<p>Just a moment...</p>"
    )  # fmt: skip

    async def get(ctx, url):
        return (await ctx.web.fetch(url, mode="http")).status

    url = f"http://allowed.test:{allowed.port}/wall"
    assert web.run(get, kit.local(max_retries=3, retry_delay_seconds=0.01), url=url).data == 503
    assert len(allowed.hits("/wall")) == 1 and web.events("retry") == []


def test_retry_after_is_honoured(web, allowed, kit):
    calls = []

    def limited(_h):
        calls.append(1)
        if len(calls) == 1:
            return 429, {"retry-after": "1", "content-type": "text/plain"}, b"slow down"
        return 200, {"content-type": "text/plain"}, b"ok"

    allowed.routes["/r"] = limited

    async def get(ctx, url):
        return (await ctx.web.fetch(url)).status

    cfg = kit.local(max_retries=2, retry_delay_seconds=0.01)
    assert web.run(get, cfg, url=f"http://allowed.test:{allowed.port}/r").data == 200
    first, second = (r.at for r in allowed.hits("/r"))
    assert second - first >= 0.95  # waited as told, not the 0.01 s retry delay


def test_robots_txt_disallow_and_crawl_delay(web, allowed, kit):
    allowed.routes["/robots.txt"] = lambda _h: (
        200, {"content-type": "text/plain"},
        b"User-agent: *\nDisallow: /private\nCrawl-delay: 1\n",
    )  # fmt: skip
    allowed.routes["/private"] = kit.html("<p>secret</p>")
    _pages(allowed, kit, 2)

    async def get(ctx, base):
        try:
            await ctx.web.fetch(base + "/private")
        except PolicyViolation as exc:
            rule = exc.rule
        a = await ctx.web.fetch(base + "/p0")
        b = await ctx.web.fetch(base + "/p1")
        return [rule, a.status, b.status]

    base = f"http://allowed.test:{allowed.port}"
    assert web.run(get, kit.local(respect_robots_txt=True), base=base).data == [
        "robots_txt",
        200,
        200,
    ]
    assert allowed.hits("/private") == []
    assert len(allowed.hits("/robots.txt")) == 1
    t0, t1 = (r.at for r in allowed.hits("/p"))
    assert t1 - t0 >= 0.95  # crawl-delay: 1


def test_robots_txt_can_be_ignored(web, allowed, kit):
    allowed.routes["/robots.txt"] = lambda _h: (
        200, {"content-type": "text/plain"}, b"User-agent: *\nDisallow: /\n"
    )  # fmt: skip
    allowed.routes["/x"] = kit.html("<p>x</p>")

    async def get(ctx, url):
        return (await ctx.web.fetch(url)).status

    url = f"http://allowed.test:{allowed.port}/x"
    assert web.run(get, kit.local(respect_robots_txt=False), url=url).data == 200
    assert allowed.hits("/robots.txt") == []


def test_response_size_cap(web, allowed, kit):
    allowed.routes["/big"] = lambda _h: (200, {"content-type": "text/plain"}, b"x" * 5000)

    async def get(ctx, url):
        await ctx.web.fetch(url)

    with pytest.raises(FetchError, match="max_response_bytes=2048"):
        web.run(
            get, kit.local(max_response_bytes=2048), url=f"http://allowed.test:{allowed.port}/big"
        )


def test_non_html_is_reported_not_parsed(web, allowed, kit):
    allowed.routes["/d.json"] = lambda _h: (200, {"content-type": "application/json"}, b'{"a": 1}')
    allowed.routes["/i.png"] = lambda _h: (200, {"content-type": "image/png"}, b"\x89PNG\r\n")

    async def get(ctx, base):
        j = await ctx.web.fetch(base + "/d.json")
        i = await ctx.web.fetch(base + "/i.png")
        ex = await ctx.web.extract(i)
        return [j.content_type, j.text, i.content_type, i.text, len(i.body), ex.is_html]

    base = f"http://allowed.test:{allowed.port}"
    assert web.run(get, kit.local(), base=base).data == [
        "application/json",
        '{"a": 1}',
        "image/png",
        "",
        6,
        False,
    ]


def test_charset_is_detected(web, allowed, kit):
    body = "<html><head><meta charset='iso-8859-1'></head><p>café crème</p></html>".encode(
        "latin-1"
    )
    allowed.routes["/l"] = lambda _h: (200, {"content-type": "text/html"}, body)

    async def get(ctx, url):
        page = await ctx.web.fetch(url)
        return [page.encoding, "café crème" in page.text]

    data = web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/l").data
    assert data[1] is True and data[0] in ("cp1252", "windows-1252", "latin-1")


def test_crawl_depth_and_follow_filter(web, allowed, kit):
    # A chain /d0 -> /d1 -> /d2 -> /d3, each page also linking to /skip-N.
    for i in range(4):
        allowed.routes[f"/d{i}"] = kit.html(
            f'<a href="/d{i + 1}">next</a><a href="/skip-{i}">s</a>'
        )
        allowed.routes[f"/skip-{i}"] = kit.html("<p>skip</p>")

    async def crawl(ctx, url):
        pages = ctx.web.crawl([url], max_depth=2, follow=lambda u: "skip" not in u)
        return sorted([p.url.rsplit("/", 1)[1] async for p in pages])

    cfg = kit.local(concurrent_requests=2)
    assert web.run(crawl, cfg, url=f"http://allowed.test:{allowed.port}/d0").data == [
        "d0",
        "d1",
        "d2",
    ]
    assert not allowed.hits("/skip")


def test_bad_arguments_name_the_fix(web, kit):
    from aesoperator import UserError

    async def bad(ctx, what):
        if what == "mode":
            await ctx.web.fetch("http://allowed.test/", mode="firefox")
        elif what == "strategy":
            async for _ in ctx.web.crawl(["http://allowed.test/"], strategy="dfs"):
                pass
        else:
            async for _ in ctx.web.crawl("http://allowed.test/"):
                pass

    cases = [
        ("mode", "'auto', 'http' or 'browser'"),
        ("strategy", "'bfs' or 'best_first'"),
        ("start", "pass a list"),
    ]
    for what, needle in cases:
        with pytest.raises(UserError, match=needle):
            web.run(bad, kit.local(), what=what)
