"""WebSockets in browser mode: an allowed one is connected by the session and relayed; a
refused one never connects anywhere and is in the timeline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser


class EchoServer:
    """A WebSocket server on 127.0.0.1 (``allowed.test``): echoes, closes on request."""

    def __init__(self, ssl_context: Any = None) -> None:
        from websockets.sync.server import serve

        self.connections = 0
        self.origins: list[str | None] = []
        self.hosts: list[str | None] = []
        self.cookies: list[str | None] = []
        self.close_codes: list[int | None] = []
        self.closed = threading.Event()
        self._server = serve(self._handle, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, conn: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        self.connections += 1
        self.origins.append(conn.request.headers.get("Origin"))
        self.hosts.append(conn.request.headers.get("Host"))
        self.cookies.append(conn.request.headers.get("Cookie"))
        try:
            for message in conn:
                if message == "close-me":
                    conn.close(4001, "asked to")
                    break
                conn.send(message)
        except ConnectionClosed:
            pass
        self.close_codes.append(conn.close_code)
        self.closed.set()

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    srv = EchoServer()
    yield srv
    srv.stop()


# The page opens two sockets: on the first it sends text and bytes, reads both echoes, then
# closes it itself (code 4000); on the second it asks the server to close (code 4001).
PAGE = """<html><body><p id=out></p><script>
document.cookie = 'js=2; path=/';
const out = (s) => { document.getElementById('out').textContent += s + ';'; };
const a = new WebSocket('WS_URL');
a.binaryType = 'arraybuffer';
a.onopen = () => { a.send('hello'); a.send(new Uint8Array([1, 2, 3])); };
a.onmessage = (e) => {
  if (typeof e.data === 'string') out('echo:' + e.data);
  else { out('bin:' + Array.from(new Uint8Array(e.data)).join(',')); a.close(4000, 'done'); }
};
a.onclose = () => {
  const b = new WebSocket('WS_URL');
  b.onopen = () => b.send('close-me');
  b.onclose = (e) => out('closed:' + e.code + ':' + e.reason);
};
</script></body></html>"""


def test_browser_websocket_is_relayed_both_ways(web, allowed, echo, kit):
    ws_url = f"ws://allowed.test:{echo.port}/echo"
    allowed.routes["/ws"] = kit.html(PAGE.replace("WS_URL", ws_url), **{"set-cookie": "srv=1"})

    result = web.run(text_once_closed, kit.local(), url=f"http://allowed.test:{allowed.port}/ws")
    text = result.data["text"]
    assert "echo:hello;bin:1,2,3;closed:4001:asked to;" in text
    assert echo.connections == 2
    assert echo.closed.wait(5)
    assert 4000 in echo.close_codes  # the page's own close reached the server
    # Connected to the pinned address with the page's Host and Origin, as Chromium would.
    assert echo.hosts[0] == f"allowed.test:{echo.port}"
    assert echo.origins[0] == f"http://allowed.test:{allowed.port}"
    assert echo.cookies[0] == "srv=1; js=2"  # the server's cookie and the script's
    assert not web.events("policy_refused")


async def text_once_closed(ctx, url):
    """The page's HTML once its second socket has closed: WebSocket traffic is not network
    activity to ``networkidle``, so on a loaded machine the close could land after it."""
    assert ctx.budget.try_reserve_page()
    page = await ctx.web.open_page()
    try:
        await page.goto(url)
        await page.locator("#out", has_text="closed:").wait_for(timeout=30_000)
        return {"text": await page.content()}
    finally:
        await page.close()


async def page_text(ctx, url):
    """The handler of these tests: the page's HTML once the network is idle."""
    page = await ctx.web.fetch(url, mode="browser", wait_until="networkidle")
    return {"text": page.text}


REFUSED = """<html><body><p id=out></p><script>
const w = new WebSocket('WS_URL');
w.onopen = () => { document.getElementById('out').textContent += 'open;'; };
w.onclose = (e) => { document.getElementById('out').textContent += 'closed:' + e.code; };
</script></body></html>"""


def test_browser_websocket_to_forbidden_host_never_connects(web, allowed, forbidden, kit):
    ws_url = f"ws://forbidden.test:{forbidden.port}/ws"
    allowed.routes["/p"] = kit.html(REFUSED.replace("WS_URL", ws_url))

    text = web.run(page_text, kit.local(), url=f"http://allowed.test:{allowed.port}/p").data["text"]
    assert '<p id="out">closed:1008</p>' in text  # never open
    assert forbidden.count() == 0
    [event] = [e for e in web.events("policy_refused") if e.data["url"] == ws_url]
    assert event.data["rule"] == "allowed_domains"
    assert event.data["resource_type"] == "websocket"


def test_browser_websocket_on_private_address_needs_opt_in(web, allowed, echo, kit, monkeypatch):
    # The page's host is trusted by name (AESOP_TRUSTED_HOSTS); public.test passes the domain
    # rules but resolves to 127.0.0.2, so the WebSocket is refused on its address.
    monkeypatch.setenv("AESOP_TRUSTED_HOSTS", "allowed.test=127.0.0.1")
    ws_url = f"ws://public.test:{echo.port}/ws"
    allowed.routes["/p"] = kit.html(REFUSED.replace("WS_URL", ws_url))

    cfg = kit.local(allowed_domains=[], allow_private_network=False)
    text = web.run(page_text, cfg, url=f"http://allowed.test:{allowed.port}/p").data["text"]
    assert '<p id="out">closed:1008</p>' in text
    [event] = [e for e in web.events("policy_refused") if e.data["url"] == ws_url]
    assert event.data["rule"] == "private_network"
    assert echo.connections == 0


def test_browser_websocket_plain_ws_refused_under_require_https(web, secure, echo, kit):
    ws_url = f"ws://allowed.test:{echo.port}/echo"
    secure.routes["/p"] = kit.html(REFUSED.replace("WS_URL", ws_url))

    cfg = kit.local(require_https=True)
    text = web.run(page_text, cfg, url=f"https://allowed.test:{secure.port}/p").data["text"]
    assert '<p id="out">closed:1008</p>' in text
    assert echo.connections == 0
    [event] = [e for e in web.events("policy_refused") if e.data["url"] == ws_url]
    assert event.data["rule"] == "require_https"


def test_browser_wss_checks_the_certificate_against_the_host_name(web, secure, _tls, kit):
    # Connected to the pinned IP, but TLS (SNI, certificate) is for allowed.test.
    srv = EchoServer(ssl_context=_tls)
    try:
        ws_url = f"wss://allowed.test:{srv.port}/echo"
        body = (
            f"<p id=out></p><script>const w = new WebSocket('{ws_url}');"
            "w.onopen = () => w.send('tls');"
            "w.onmessage = (e) => { document.getElementById('out').textContent = 'got:' + e.data };"
            "</script>"
        )
        secure.routes["/p"] = kit.html(body)

        cfg = kit.local(require_https=True)
        text = web.run(page_text, cfg, url=f"https://allowed.test:{secure.port}/p").data["text"]
        assert "got:tls" in text
        assert srv.connections == 1
    finally:
        srv.stop()


def test_browser_websocket_closes_when_the_tab_moves_on(web, allowed, echo, kit):
    # The page never closes its socket; the next fetch in the same tab (one tab: one at a
    # time) replaces the page, and the server connection closes then, not at the end of the
    # execution: /status, asked during the execution, reports it.
    ws_url = f"ws://allowed.test:{echo.port}/x"
    allowed.routes["/a"] = kit.html(
        f"<script>const w = new WebSocket('{ws_url}'); w.onopen = () => w.send('hi');</script>"
    )
    allowed.routes["/b"] = kit.html("<p>b</p>")
    allowed.routes["/status"] = lambda _h: (
        200, {"content-type": "text/plain"}, str(echo.closed.wait(5)).encode()
    )  # fmt: skip

    async def get(ctx, base):
        await ctx.web.fetch(base + "/a", mode="browser", wait_until="networkidle")
        await ctx.web.fetch(base + "/b", mode="browser")
        return {"closed": (await ctx.web.fetch(base + "/status", mode="http")).text}

    cfg = kit.local(concurrent_requests=1)
    data = web.run(get, cfg, base=f"http://allowed.test:{allowed.port}").data
    assert echo.connections == 1
    assert data["closed"] == "True"
