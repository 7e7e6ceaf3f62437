"""The reading browser (``fetch(mode="browser")``): what it drives itself over the DevTools
protocol must hold like Playwright's route did — frames in their own process, workers, popups,
dialogs, downloads, one cookie jar with ``open_page`` — and its Chromium has no network."""

from __future__ import annotations

import pytest

from aesoperator import FetchError

pytestmark = pytest.mark.browser


def _refused(web):
    return [e.data["url"] for e in web.events("policy_refused")]


def _sets_cookie(cookie):
    """A route answering a small page that sets ``cookie``."""
    headers = {"content-type": "text/html", "set-cookie": f"{cookie}; Path=/"}
    return lambda _h: (200, headers, b"<p>set</p>")


def _echo_cookie(handler):
    """A route answering with the Cookie header it got (``none`` without one)."""
    return 200, {"content-type": "text/plain"}, handler.headers.get("cookie", "none").encode()


def test_a_cross_site_frame_and_a_worker_pass_the_gate(web, allowed, forbidden, kit):
    # allowed.test's page holds a frame from 127.0.0.1 (another site: its own renderer, its
    # own DevTools target) and starts a worker; each asks the forbidden host for something
    # and the allowed one for something else.
    f = f"http://forbidden.test:{forbidden.port}"
    a = f"http://127.0.0.1:{allowed.port}"
    allowed.routes["/p"] = kit.html(
        f"<p id=out>waiting</p><iframe src='{a}/frame'></iframe><script>"
        "const w = new Worker('/w.js');"
        "w.onmessage = (e) => { document.getElementById('out').textContent = e.data; };"
        "</script>"
    )
    allowed.routes["/frame"] = kit.html(
        f"<img src='{f}/frame-img'><script>fetch('{f}/frame-fetch').catch(() => 0);"
        "fetch('/frame-ok')</script>"
    )
    allowed.routes["/frame-ok"] = lambda _h: (200, {"content-type": "text/plain"}, b"ok")
    allowed.routes["/w.js"] = lambda _h: (
        200, {"content-type": "text/javascript"},
        f"fetch('{f}/worker-fetch').catch(() => 0).then(() => fetch('/from-worker'))"
        ".then(r => r.text()).then(t => postMessage('worker:' + t));".encode(),
    )  # fmt: skip
    allowed.routes["/from-worker"] = lambda _h: (200, {"content-type": "text/plain"}, b"hi")

    async def get(ctx, url):
        return {"text": (await ctx.web.fetch(url, mode="browser", wait_until="networkidle")).text}

    cfg = kit.local(block_resources=[])
    text = web.run(get, cfg, url=f"http://allowed.test:{allowed.port}/p").data["text"]
    assert "worker:hi" in text  # the worker ran, its allowed request answered by us
    assert len(allowed.hits("/frame-ok")) == 1  # so did the frame's
    assert forbidden.count() == 0
    refused = _refused(web)
    for path in ("/frame-img", "/frame-fetch", "/worker-fetch"):
        assert f + path in refused, refused


def test_one_cookie_jar_across_open_page_and_fetch(web, allowed, kit):
    # A cookie set while a Playwright tab (open_page) shows a page goes with the reading
    # browser's next request, and one set there goes with the next open_page navigation.
    allowed.routes["/set-a"] = _sets_cookie("a=1")
    allowed.routes["/set-b"] = _sets_cookie("b=2")
    allowed.routes["/echo"] = _echo_cookie

    async def get(ctx, base):
        assert ctx.budget.try_reserve_page()
        tab = await ctx.web.open_page()
        await tab.goto(base + "/set-a")
        read = await ctx.web.fetch(base + "/echo", mode="browser")
        await ctx.web.fetch(base + "/set-b", mode="browser")
        assert ctx.budget.try_reserve_page()
        await tab.goto(base + "/echo")
        shown = await tab.content()
        await tab.close()
        return {"read": read.text, "shown": shown}

    data = web.run(get, kit.local(), base=f"http://allowed.test:{allowed.port}").data
    assert ">a=1<" in data["read"]
    assert "a=1; b=2" in data["shown"]


def test_dialogs_are_dismissed_and_downloads_refused(web, allowed, kit):
    allowed.routes["/dialogs"] = kit.html(
        "<p id=out>start</p><script>alert('x'); const ok = confirm('sure?');"
        "document.getElementById('out').textContent = 'confirm:' + ok;</script>"
    )
    allowed.routes["/file"] = lambda _h: (
        200,
        {"content-type": "application/octet-stream",
         "content-disposition": "attachment; filename=x.bin"},
        b"\0" * 1000,
    )  # fmt: skip
    allowed.routes["/after"] = kit.html("<p>after</p>")

    async def get(ctx, base):
        dialogs = (await ctx.web.fetch(base + "/dialogs", mode="browser")).text
        try:
            await ctx.web.fetch(base + "/file", mode="browser")
            download = "read"
        except FetchError as exc:
            download = str(exc)
        after = (await ctx.web.fetch(base + "/after", mode="browser")).text
        return {"dialogs": dialogs, "download": download, "after": after}

    cfg = kit.local(request_timeout_seconds=10, concurrent_requests=1)
    data = web.run(get, cfg, base=f"http://allowed.test:{allowed.port}").data
    assert "confirm:false" in data["dialogs"]
    assert "ERR_ABORTED" in data["download"] or data["download"] == "read", data
    assert "<p>after</p>" in data["after"]  # the same tab goes on


def test_a_popup_is_checked_never_loaded_and_closed(web, allowed, forbidden, kit):
    f = f"http://forbidden.test:{forbidden.port}/popup"
    allowed.routes["/p"] = kit.html(
        f"<p>opener</p><script>window.open('{f}'); window.open('/allowed-popup');"
        "window.open('/noopener-popup', '_blank', 'noopener')</script>"
    )

    async def get(ctx, url):
        page = await ctx.web.fetch(url, mode="browser", wait_until="networkidle")
        return {"text": page.text}

    result = web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/p")
    assert "opener" in result.data["text"]
    assert forbidden.count() == 0
    assert f in _refused(web)
    # Allowed, but a popup loads nothing, one without an opener neither.
    assert allowed.hits("/allowed-popup") == allowed.hits("/noopener-popup") == []
    assert len(web.events("popup_closed")) == 3


def test_the_reading_chromium_has_no_network_of_its_own(web, allowed, kit):
    # A tab of the reading browser whose requests nobody pauses: Chromium must fail them.
    allowed.routes["/p"] = kit.html("<p>x</p>")

    async def raw(ctx, url):
        from aesoperator.web._reader import _get_browser

        await ctx.web.fetch(url, mode="browser")  # the reading browser is up
        cdp = (await _get_browser()).cdp
        context = (await cdp.send("Target.createBrowserContext"))["browserContextId"]
        try:
            target = await cdp.send(
                "Target.createTarget", {"url": "about:blank", "browserContextId": context}
            )
            session = await cdp.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )
            sid = session["sessionId"]
            nav = await cdp.send("Page.navigate", {"url": url}, sid)
            return {"error": nav.get("errorText", "loaded")}
        finally:
            await cdp.send("Target.disposeBrowserContext", {"browserContextId": context})

    error = web.run(raw, kit.local(), url=f"http://127.0.0.1:{allowed.port}/p").data["error"]
    assert "ERR_PROXY_CONNECTION_FAILED" in error or "ERR_NAME_NOT_RESOLVED" in error, error
    assert len(allowed.hits("/p")) == 1  # only the gated fetch reached the server


def test_websocket_binary_messages_and_a_page_faking_the_shim(web, allowed, kit):
    # Binary frames both ways through the page-side WebSocket; a page that calls the session's
    # binding itself with a forbidden URL is refused like any WebSocket.
    from .test_websocket import EchoServer

    echo = EchoServer()
    try:
        ws_url = f"ws://allowed.test:{echo.port}/bin"
        allowed.routes["/p"] = kit.html(
            "<p id=out>waiting</p><script>"
            f"const w = new WebSocket('{ws_url}'); w.binaryType = 'arraybuffer';"
            "w.onopen = () => w.send(new Uint8Array([0, 1, 255]));"
            "w.onmessage = (e) => { document.getElementById('out').textContent ="
            " 'bytes:' + Array.from(new Uint8Array(e.data)).join(','); w.close(); };"
            "try { __aesopWs(JSON.stringify({op: 'open', id: 'x', url:"
            " 'ws://forbidden.test:1/fake', protocols: []})); } catch (e) {}"
            "</script>"
        )

        async def get(ctx, url):
            page = await ctx.web.fetch(url, mode="browser", wait_until="networkidle")
            return {"text": page.text}

        url = f"http://allowed.test:{allowed.port}/p"
        text = web.run(get, kit.local(), url=url).data["text"]
        assert "bytes:0,1,255" in text
        assert echo.connections == 1
    finally:
        echo.stop()


def test_a_browser_that_dies_fails_the_page_in_flight_and_the_next_one_gets_a_new_one(
    web, allowed, kit
):
    # The reading Chromium is killed while a page is loading (its server holds the answer):
    # that fetch ends in a transient FetchError, and the execution's next fetch starts another
    # browser and reads its page.
    import os
    import signal
    import threading

    release = threading.Event()

    def slow(_h):
        release.wait(10)
        return 200, {"content-type": "text/html"}, b"<p>late</p>"

    allowed.routes["/slow"] = slow
    allowed.routes["/ok"] = kit.html("<p>fine</p>")

    async def get(ctx, base):
        import asyncio

        from aesoperator.web._reader import _get_browser

        await ctx.web.fetch(base + "/ok", mode="browser")
        pid = (await _get_browser()).cdp.pid
        loading = asyncio.ensure_future(ctx.web.fetch(base + "/slow", mode="browser"))
        while not allowed.hits("/slow"):
            await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        try:
            await loading
            first = "read"
        except FetchError as exc:
            first = f"transient={exc.transient}"
        release.set()
        again = await ctx.web.fetch(base + "/ok", mode="browser")
        return {"first": first, "again": again.text, "new": (await _get_browser()).cdp.pid != pid}

    data = web.run(get, kit.local(), base=f"http://allowed.test:{allowed.port}").data
    assert data["first"] == "transient=True"
    assert "<p>fine</p>" in data["again"]
    assert data["new"]


def test_a_service_worker_never_registers(web, allowed, forbidden, kit):
    allowed.routes["/p"] = kit.html(
        "<p id=out>waiting</p><script>navigator.serviceWorker.register('/sw.js')"
        ".then(() => 'registered', (e) => 'refused:' + e.name)"
        ".then((t) => { document.getElementById('out').textContent = t; });</script>"
    )
    allowed.routes["/sw.js"] = lambda _h: (
        200, {"content-type": "text/javascript"},
        f"fetch('http://forbidden.test:{forbidden.port}/from-sw');".encode(),
    )  # fmt: skip

    async def get(ctx, url):
        return {"text": (await ctx.web.fetch(url, mode="browser", wait_until="networkidle")).text}

    text = web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/p").data["text"]
    assert "refused:" in text, text
    assert allowed.hits("/sw.js") == []
    assert forbidden.count() == 0


def test_a_redirect_loop_ends_in_a_fetch_error_after_chromiums_limit(web, allowed, kit):
    allowed.routes["/loop"] = lambda _h: (302, {"location": "/loop"}, b"")

    async def get(ctx, url):
        try:
            await ctx.web.fetch(url, mode="browser")
        except FetchError as exc:
            return {"error": str(exc)}
        return {"error": None}

    cfg = kit.local(max_pages=1)
    result = web.run(get, cfg, url=f"http://allowed.test:{allowed.port}/loop")
    assert "ERR_TOO_MANY_REDIRECTS" in result.data["error"]
    assert 2 <= len(allowed.hits("/loop")) <= 21  # every hop checked; Chromium's limit is 20
    assert result.pages_visited <= 1


def test_executions_sharing_the_reading_browser_share_no_cookies(web, allowed, kit):
    # Inline executions share this process's reading Chromium; each has its own context.
    allowed.routes["/set"] = _sets_cookie("mine=1")
    allowed.routes["/echo"] = _echo_cookie
    base = f"http://allowed.test:{allowed.port}"

    async def first(ctx, base):
        await ctx.web.fetch(base + "/set", mode="browser")
        return {"own": (await ctx.web.fetch(base + "/echo", mode="browser")).text}

    async def second(ctx, base):
        return {"other": (await ctx.web.fetch(base + "/echo", mode="browser")).text}

    assert ">mine=1<" in web.run(first, kit.local(), base=base).data["own"]
    assert ">none<" in web.run(second, kit.local(), base=base).data["other"]


def test_a_page_opening_a_hundred_popups_and_dozens_of_frames_does_not_stall_the_session(
    web, allowed, kit
):
    a = f"http://127.0.0.1:{allowed.port}"
    allowed.routes["/storm"] = kit.html(
        "<p>storm</p><script>for (let i = 0; i < 100; i++) window.open('/pop' + i);"
        f"for (let i = 0; i < 40; i++) {{ const f = document.createElement('iframe');"
        f" f.src = '{a}/frame?' + i; document.body.appendChild(f); }}</script>"
    )
    allowed.routes["/frame"] = kit.html("<p>frame</p>")
    allowed.routes["/after"] = kit.html("<p>after</p>")

    async def get(ctx, base):
        storm = await ctx.web.fetch(base + "/storm", mode="browser")
        after = await ctx.web.fetch(base + "/after", mode="browser")
        return {"storm": storm.status, "after": after.text}

    result = web.run(get, kit.local(), base=f"http://allowed.test:{allowed.port}")
    assert result.data["storm"] == 200
    assert "<p>after</p>" in result.data["after"]
    assert [h for h in allowed.requests if h.path.startswith("/pop")] == []
