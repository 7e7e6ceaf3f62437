"""The browser fetcher: viewport and user agent, auto mode, screenshots, extraction, HTTPS."""

from __future__ import annotations

import pytest

from aesoperator import PolicyViolation

pytestmark = pytest.mark.browser

REPORT = """<html><body><p id=out>waiting</p><script>
fetch('/report?w=' + window.innerWidth + '&h=' + window.innerHeight + '&ua='
      + encodeURIComponent(navigator.userAgent)).then(r => r.text())
  .then(t => { document.getElementById('out').textContent = 'reported ' + t; });
</script></body></html>"""


def test_viewport_and_user_agent_seen_by_server_and_page(web, allowed, kit):
    allowed.routes["/v"] = kit.html(REPORT)
    allowed.routes["/report"] = lambda _h: (200, {"content-type": "text/plain"}, b"ok")

    async def get(ctx, url):
        page = await ctx.web.fetch(url, mode="browser", wait_until="networkidle")
        return {"text": page.text}

    cfg = kit.local(viewport_width=800, viewport_height=600, user_agent="AesopTest/1.0")
    text = web.run(get, cfg, url=f"http://allowed.test:{allowed.port}/v").data["text"]
    assert "reported ok" in text  # the page's own fetch ran and was answered
    doc, report = allowed.hits("/v")[0], allowed.hits("/report")[0]
    assert doc.headers["user-agent"] == "AesopTest/1.0"
    assert "w=800&h=600&ua=AesopTest%2F1.0" in report.path


def test_http_fetcher_sends_user_agent(web, allowed, kit):
    allowed.routes["/u"] = kit.html("<p>x</p>")

    async def get(ctx, url):
        return (await ctx.web.fetch(url, mode="http")).status

    web.run(get, kit.local(user_agent="AesopTest/2.0"), url=f"http://allowed.test:{allowed.port}/u")
    assert allowed.hits("/u")[0].headers["user-agent"] == "AesopTest/2.0"


def test_auto_mode_uses_the_browser_only_when_scripts_are_needed(web, allowed, kit):
    allowed.routes["/static"] = kit.html("<title>s</title><article><p>" + "Plain text. " * 40)
    allowed.routes["/app"] = kit.html(
        "<div id=root></div><script>document.getElementById('root').innerHTML ="
        " '<p>' + 'Rendered by script. '.repeat(20) + '</p>'</script>"
    )

    async def get(ctx, base):
        s = await ctx.web.fetch(base + "/static", mode="auto")
        a = await ctx.web.fetch(base + "/app", mode="auto")
        return [s.fetched_with, a.fetched_with, "Rendered by script" in a.text]

    base = f"http://allowed.test:{allowed.port}"
    result = web.run(get, kit.local(), base=base)
    assert result.data == ["http", "browser", True]
    assert result.pages_visited == 2  # the browser retry of /app is the same page
    assert len(web.events("auto_browser")) == 1


def test_auto_mode_counts_visible_text_across_tags_up_to_its_thresholds(web, allowed, kit):
    # Visible text in many small pieces after a long script and style: 274 characters pass
    # the 200 a script needs; about 830 stay under the 1000 a <noscript> page needs.
    head = "<script>" + "var x = 1; " * 300 + "</script><style>" + "p{}" * 300 + "</style>"
    pieces = "".join(f"<span>w{i:03d}</span><!-- c -->" for i in range(55))  # 274 characters
    allowed.routes["/enough"] = kit.html(head + pieces)
    allowed.routes["/thin"] = kit.html(head + "<noscript>on</noscript>" + pieces * 3)

    async def get(ctx, base):
        return [(await ctx.web.fetch(base + p, mode="auto")).fetched_with
                for p in ("/enough", "/thin")]  # fmt: skip

    result = web.run(get, kit.local(), base=f"http://allowed.test:{allowed.port}")
    assert result.data == ["http", "browser"]


def test_screenshot_and_extract(web, allowed, kit):
    allowed.routes["/a"] = kit.html(
        "<html lang=en><head><title>Article</title></head><body><article><h1>Heading</h1>"
        + "<p>"
        + "A long paragraph of real words about tasks. " * 20
        + "</p>"
        + '<a href="/b">next page</a><a href="/b#x">again</a></article></body></html>'
    )

    async def get(ctx, url):
        png = await ctx.web.screenshot(url)
        page = await ctx.web.fetch(url, mode="http")
        ex = await ctx.web.extract(page)
        return {
            "png": png[:8].hex(),
            "title": ex.title,
            "lang": ex.language,
            "links": [(link.url, link.text) for link in ex.links],
            "text": ex.text,
        }

    url = f"http://allowed.test:{allowed.port}/a"
    result = web.run(get, kit.local(max_pages=2), url=url)
    data = result.data
    assert data["png"] == "89504e470d0a1a0a"
    assert data["title"] == "Article" and data["lang"] == "en"
    assert data["links"] == [[f"http://allowed.test:{allowed.port}/b", "next page"]]
    assert "real words about tasks" in data["text"]
    assert [a.name for a in result.actions] == ["screenshot", "fetch", "extract"]


def test_blocked_resource_types_are_not_requested(web, allowed, kit):
    allowed.routes["/p"] = kit.html('<img src="/pic.png"><p>text</p>')
    allowed.routes["/pic.png"] = lambda _h: (200, {"content-type": "image/png"}, b"\x89PNG")

    async def get(ctx, url):
        return (await ctx.web.fetch(url, mode="browser")).status

    assert web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/p").data == 200
    assert allowed.hits("/pic.png") == []  # images are blocked by default


# -- HTTPS and require_https ---------------------------------------------------------------------
def test_https_fetch_with_sni_and_pinned_address(web, secure, kit):
    secure.routes["/s"] = kit.html("<p>secure</p>")

    async def get(ctx, url):
        page = await ctx.web.fetch(url, mode="http")
        return [page.status, page.text]

    cfg = kit.local(require_https=True)
    assert web.run(get, cfg, url=f"https://allowed.test:{secure.port}/s").data == [
        200,
        "<p>secure</p>",
    ]


@pytest.mark.parametrize("mode", ["http", "browser"])
def test_https_downgrade_redirect_is_refused(web, secure, allowed, kit, mode):
    plain = f"http://allowed.test:{allowed.port}/plain"
    secure.routes["/r"] = lambda _h: (302, {"location": plain}, b"")
    allowed.routes["/plain"] = kit.html("<p>plain</p>")

    async def get(ctx, url, mode):
        await ctx.web.fetch(url, mode=mode)

    with pytest.raises(PolicyViolation) as info:
        web.run(get, kit.local(require_https=True), url=f"https://allowed.test:{secure.port}/r",
                mode=mode)  # fmt: skip
    assert info.value.rule == "require_https"
    assert allowed.count() == 0


def test_https_page_subresource_downgrade_is_refused(web, secure, allowed, kit):
    plain = f"http://allowed.test:{allowed.port}"
    secure.routes["/p"] = kit.html(
        f"<p>x</p><script src='{plain}/s.js'></script><script>fetch('{plain}/api')</script>"
        f"<script>setTimeout(() => {{ location = '{plain}/nav'; }}, 10)</script>"
    )  # Chromium blocks mixed-content subresources itself; the navigation is ours to refuse

    async def get(ctx, url):
        return (await ctx.web.fetch(url, mode="browser", wait_until="networkidle")).status

    cfg = kit.local(require_https=True)
    assert web.run(get, cfg, url=f"https://allowed.test:{secure.port}/p").data == 200
    assert allowed.count() == 0
    rules = {e.data["rule"] for e in web.events("policy_refused")}
    assert "require_https" in rules


def test_missing_browser_says_how_to_install(tmp_path, monkeypatch, allowed, kit):
    from aesoperator import Aesoperator, Task, UserError

    monkeypatch.setenv("AESOP_CHROMIUM", str(tmp_path / "no-such-chromium"))
    allowed.routes["/p"] = kit.html("<p>x</p>")
    # A client of its own: its event loop has no browser launched yet.
    with Aesoperator(data_dir=tmp_path, isolation="inline") as aesop:

        @aesop.handler("b")
        async def b(ctx, url):
            await ctx.web.fetch(url, mode="browser")

        task = Task(name="b", inputs={"url": f"http://allowed.test:{allowed.port}/p"},
                    config=kit.local())  # fmt: skip
        with pytest.raises(UserError) as info:
            aesop.execute_task(task)
    message = str(info.value)
    assert "AESOP_CHROMIUM" in message and "apt-get install chromium" in message
    assert "playwright install chromium" in message


@pytest.mark.parametrize("max_pages", [1, 2])
def test_a_page_navigating_itself_spends_a_page(web, allowed, kit, max_pages):
    allowed.routes["/first"] = kit.html(
        "<p>1</p><script>setTimeout(() => location = '/second', 10)</script>"
    )
    allowed.routes["/second"] = kit.html("<p>2</p>")

    async def get(ctx, url):
        return (await ctx.web.fetch(url, mode="browser", wait_until="networkidle")).status

    cfg = kit.local(max_pages=max_pages)
    result = web.run(get, cfg, url=f"http://allowed.test:{allowed.port}/first")
    assert len(allowed.hits("/first")) == 1
    if max_pages == 1:
        assert allowed.hits("/second") == []
        assert [e.data["rule"] for e in web.events("policy_refused")] == ["max_pages"]
        assert result.pages_visited == 1
    else:
        assert len(allowed.hits("/second")) == 1
        assert result.pages_visited == 2


def test_static_subresources_are_fetched_once_per_execution(web, allowed, kit):
    # The second page gets the script from the execution's cache (the page still runs it);
    # a no-store script is fetched every time.
    allowed.routes["/s.js"] = lambda _h: (
        200, {"content-type": "text/javascript"}, b"document.title = 'ran';"
    )  # fmt: skip
    allowed.routes["/n.js"] = lambda _h: (
        200, {"content-type": "text/javascript", "cache-control": "no-store"}, b"1;"
    )  # fmt: skip
    page = "<html><head><script src=/s.js></script><script src=/n.js></script></head></html>"
    allowed.routes["/1"] = kit.html(page)
    allowed.routes["/2"] = kit.html(page)

    async def get(ctx, base):
        titles = []
        for path in ("/1", "/2"):
            text = (await ctx.web.fetch(base + path, mode="browser")).text
            titles.append("<title>ran</title>" in text)
        return titles

    assert web.run(get, kit.local(), base=f"http://allowed.test:{allowed.port}").data == [
        True,
        True,
    ]
    assert len(allowed.hits("/s.js")) == 1
    assert len(allowed.hits("/n.js")) == 2


def test_cookies_set_by_server_and_by_script_are_sent(web, allowed, kit):
    # The server sets one cookie, the page's script another; both go with the page's fetch
    # and with the next navigation.
    allowed.routes["/c"] = lambda _h: (
        200,
        {"content-type": "text/html", "set-cookie": "srv=1; Path=/"},
        b"<p id=out></p><script>document.cookie = 'js=2; path=/';"
        b"fetch('/api').then(r => r.text())"
        b".then(t => { document.getElementById('out').textContent = 'api:' + t; });</script>",
    )
    allowed.routes["/api"] = lambda h: (
        200, {"content-type": "text/plain"}, h.headers.get("cookie", "none").encode()
    )  # fmt: skip
    allowed.routes["/next"] = kit.html("<p>next</p>")

    async def get(ctx, base):
        page = await ctx.web.fetch(base + "/c", mode="browser", wait_until="networkidle")
        await ctx.web.fetch(base + "/next", mode="browser")
        return {"text": page.text}

    data = web.run(get, kit.local(), base=f"http://allowed.test:{allowed.port}").data
    assert "api:srv=1; js=2" in data["text"]
    assert allowed.hits("/api")[0].headers["cookie"] == "srv=1; js=2"
    assert allowed.hits("/next")[0].headers["cookie"] == "srv=1; js=2"


def test_http_navigation_is_not_upgraded_to_https(web, kit, monkeypatch):
    # Chromium reads only its last --disable-features; ours once dropped Playwright's list,
    # which turned HTTPS-Upgrades on: http:// on port 80 was tried as https:// first, and the
    # fallback to http:// looked like a second navigation (a second page of the budget).
    from http.server import ThreadingHTTPServer

    from serving import QuietHandler, default_ports, running

    class Handler(QuietHandler):
        def do_GET(self):
            self.reply(200, b"<p>plain http</p>", "text/html")

    with default_ports():  # the docs' offline web needs port 80 too: take turns
        try:
            srv = ThreadingHTTPServer(("127.0.0.1", 80), Handler)
        except OSError:
            pytest.skip("port 80 is taken by another program (HTTPS-Upgrades only applies there)")
        with running(srv, poll_interval=0.05):
            monkeypatch.setenv("AESOP_HOSTS", "upgrade.example.org=127.0.0.1")

            async def get(ctx, url):
                page = await ctx.web.fetch(url, mode="browser")
                return {"url": page.url, "text": page.text}

            cfg = kit.local(allowed_domains=["upgrade.example.org"])
            result = web.run(get, cfg, url="http://upgrade.example.org/p")
            assert result.data["url"] == "http://upgrade.example.org/p"
            assert "plain http" in result.data["text"]
            assert result.pages_visited == 1


def test_a_redirected_fetch_lands_the_page_at_the_final_url(web, allowed, kit):
    # To another origin: the page must run as the final one (its location, its same-origin
    # fetch), and each hop is fetched once.
    final = f"http://127.0.0.1:{allowed.port}/new"
    allowed.routes["/old"] = lambda _h: (301, {"location": final}, b"")
    allowed.routes["/new"] = kit.html(
        "<p id=out>waiting</p><script>fetch('/api').then(r => r.text()).then(t => {"
        " document.getElementById('out').textContent = location.href + ' ' + t; });</script>"
    )
    allowed.routes["/api"] = lambda _h: (200, {"content-type": "text/plain"}, b"answered")

    async def get(ctx, url):
        page = await ctx.web.fetch(url, mode="browser", wait_until="networkidle")
        return {"url": page.url, "status": page.status, "text": page.text}

    result = web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/old")
    assert result.data["url"] == final and result.data["status"] == 200
    assert f"{final} answered" in result.data["text"]
    assert [len(allowed.hits(p)) for p in ("/old", "/new", "/api")] == [1, 1, 1]
    assert result.pages_visited == 1
