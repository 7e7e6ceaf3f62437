"""The leak matrix: nothing a task does reaches a server its policy forbids.

The allowed server is ``allowed.test`` (127.0.0.1); the forbidden one is ``forbidden.test``
(127.0.0.2), which counts every connection and request it receives. Each case asserts that
count is 0 *and* that the refusal is in the timeline (so the case did try to leak).
"""

from __future__ import annotations

import pytest

from aesoperator import PolicyViolation


def _refused_hosts(web):
    return [e.data["url"] for e in web.events("policy_refused")]


# -- HTTP fetcher ------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_http_redirect_to_forbidden_is_refused(web, allowed, forbidden, kit, status):
    target = f"http://forbidden.test:{forbidden.port}/leak"
    allowed.routes["/r"] = lambda _h: (status, {"location": target}, b"")

    async def get(ctx, url):
        await ctx.web.fetch(url, mode="http")

    with pytest.raises(PolicyViolation) as info:
        web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/r")
    assert info.value.rule == "allowed_domains"
    assert forbidden.count() == 0
    assert target in _refused_hosts(web)


def test_http_chained_redirect_is_checked_at_every_hop(web, allowed, forbidden, kit):
    target = f"http://127.0.0.2:{forbidden.port}/leak"
    allowed.routes["/c1"] = lambda _h: (301, {"location": "/c2"}, b"")
    allowed.routes["/c2"] = lambda _h: (307, {"location": "/c3"}, b"")
    allowed.routes["/c3"] = lambda _h: (302, {"location": target}, b"")

    async def get(ctx, url):
        await ctx.web.fetch(url, mode="http")

    with pytest.raises(PolicyViolation):
        web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/c1")
    assert [r.path for r in allowed.requests] == ["/c1", "/c2", "/c3"]
    assert forbidden.count() == 0


@pytest.mark.parametrize(
    "template",
    [
        "http://allowed.test:{a}@forbidden.test:{f}/leak",  # user-info is not the host
        "http://FORBIDDEN.TEST:{f}/leak",
        "http://forbidden.test.:{f}/leak",
        "http://Forbidden.Test.:{f}/leak",
        "http://127.0.0.2:{f}/leak",
        "http://0x7f.0.0.2:{f}/leak",
    ],
)
def test_http_host_spellings_are_normalised(web, allowed, forbidden, kit, template):
    url = template.format(a=allowed.port, f=forbidden.port)

    async def get(ctx, url):
        await ctx.web.fetch(url, mode="http")

    with pytest.raises(PolicyViolation):
        web.run(get, kit.local(), url=url)
    assert forbidden.count() == 0


def test_backslash_is_a_path_separator_like_in_browsers(web, allowed, forbidden, kit):
    # Browsers read "\\" as "/": this URL is a path on allowed.test, not user-info.
    url = f"http://allowed.test:{allowed.port}\\@forbidden.test:{forbidden.port}/leak"

    async def get(ctx, url):
        return (await ctx.web.fetch(url, mode="http")).status

    assert web.run(get, kit.local(), url=url).data == 404
    assert allowed.requests[0].path.startswith("/@forbidden.test")
    assert forbidden.count() == 0


def test_blocked_domain_wins_over_allowed(web, forbidden, kit):
    cfg = kit.local(allowed_domains=["test"], blocked_domains=["forbidden.test"])

    async def get(ctx, url):
        await ctx.web.fetch(url, mode="http")

    with pytest.raises(PolicyViolation) as info:
        web.run(get, cfg, url=f"http://FORBIDDEN.test.:{forbidden.port}/x")
    assert info.value.rule == "blocked_domains"
    assert forbidden.count() == 0


def test_public_name_resolving_to_loopback_needs_opt_in(web, forbidden, kit):
    # public.test resolves to 127.0.0.2: refused on the resolved address without the opt-in.
    cfg = kit.local(allowed_domains=[], allow_private_network=False)

    async def get(ctx, url):
        await ctx.web.fetch(url, mode="http")

    with pytest.raises(PolicyViolation) as info:
        web.run(get, cfg, url=f"http://public.test:{forbidden.port}/x")
    assert info.value.rule == "private_network"
    with pytest.raises(PolicyViolation) as info:
        web.run(get, cfg, url="http://169.254.169.254/latest/meta-data/")
    assert info.value.rule == "cloud_metadata"
    assert forbidden.count() == 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)", "chrome://version"])
def test_non_http_schemes_are_refused(web, kit, url):
    async def get(ctx, url):
        await ctx.web.fetch(url, mode="browser")

    with pytest.raises(PolicyViolation) as info:
        web.run(get, kit.local(), url=url)
    assert info.value.rule == "scheme"


# -- browser ------------------------------------------------------------------------------------
F = "http://forbidden.test:{f}/leak"
PAGES = {
    "img": '<img src="' + F + '">',
    "script": '<script src="' + F + '"></script>',
    "link": '<link rel="stylesheet" href="' + F + '">',
    "iframe": '<iframe src="' + F + '"></iframe>',
    "css_url": "<style>body{{background:url('" + F + "')}}</style><p>x</p>",
    "fetch": "<script>fetch('" + F + "').catch(()=>0)</script>",
    "xhr": "<script>var x=new XMLHttpRequest();x.open('GET','" + F + "');x.send()</script>",
    "websocket": "<script>new WebSocket('ws://forbidden.test:{f}/ws')</script>",
    "window_open": "<script>window.open('" + F + "')</script>",
    "meta_refresh": '<meta http-equiv="refresh" content="0;url=' + F + '">',
    "location": "<script>setTimeout(()=>{{location='" + F + "'}},10)</script>",
    "form_post": '<form method="post" action="' + F + '"><input name="a" value="1"></form>'
    "<script>document.forms[0].submit()</script>",
    # Chromium drops subresources with credentials itself; a navigation still goes.
    "userinfo": "<script>location='http://allowed.test:{a}@forbidden.test:{f}/leak'</script>",
    "upper_dot": '<img src="http://FORBIDDEN.TEST.:{f}/leak">',
    "ip_literal": '<img src="http://127.0.0.2:{f}/leak">',
}


@pytest.mark.browser
@pytest.mark.parametrize("block", [[], None], ids=["blocking-off", "blocking-default"])
@pytest.mark.parametrize("case", sorted(PAGES))
def test_browser_leak_matrix(web, allowed, forbidden, kit, case, block):
    body = PAGES[case].format(a=allowed.port, f=forbidden.port)
    allowed.routes["/p"] = kit.html(f"<html><head></head><body>{body}</body></html>")

    async def get(ctx, url):
        page = await ctx.web.fetch(url, mode="browser", wait_until="networkidle")
        return page.status

    # Blocking off: only the policy stands between the page and the forbidden host. Blocking
    # on (images, fonts, media): the policy still decides first, so the refusal is recorded.
    cfg = kit.local() if block is None else kit.local(block_resources=block)
    result = web.run(get, cfg, url=f"http://allowed.test:{allowed.port}/p")
    assert result.data == 200
    assert forbidden.count() == 0
    refused = [u.lower() for u in _refused_hosts(web)]
    assert any("forbidden.test" in u or "127.0.0.2" in u for u in refused), web.events()


@pytest.mark.browser
def test_browser_preconnect_and_prefetch_do_not_connect(web, allowed, forbidden, kit):
    f = forbidden.port
    allowed.routes["/p"] = kit.html(
        f'<link rel="preconnect" href="http://127.0.0.2:{f}">'
        f'<link rel="dns-prefetch" href="http://forbidden.test:{f}">'
        f'<link rel="prefetch" href="http://127.0.0.2:{f}/p">'
        "<p>hello</p>"
    )

    async def get(ctx, url):
        return (await ctx.web.fetch(url, mode="browser", wait_until="networkidle")).status

    assert web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/p").data == 200
    assert forbidden.count() == 0


@pytest.mark.browser
@pytest.mark.parametrize("status", [301, 302, 307])
def test_browser_redirects_are_checked_at_every_hop(web, allowed, forbidden, kit, status):
    target = f"http://forbidden.test:{forbidden.port}/leak"
    allowed.routes["/c1"] = lambda _h: (status, {"location": "/c2"}, b"")
    allowed.routes["/c2"] = lambda _h: (status, {"location": target}, b"")

    async def get(ctx, url):
        await ctx.web.fetch(url, mode="browser")

    with pytest.raises(PolicyViolation):
        web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/c1")
    assert [r.path for r in allowed.requests] == ["/c1", "/c2"]
    assert forbidden.count() == 0
    assert target in _refused_hosts(web)
    assert web.events("policy_refused")[0].data["rule"] == "allowed_domains"


@pytest.mark.browser
def test_browser_follows_allowed_redirects(web, allowed, kit):
    allowed.routes["/c1"] = lambda _h: (302, {"location": "/d/c2"}, b"")
    allowed.routes["/d/c2"] = kit.html("<title>end</title><p>arrived</p><img src='pic.png'>")

    async def get(ctx, url):
        page = await ctx.web.fetch(url, mode="browser")
        return [page.url, page.status, "arrived" in page.text]

    url = f"http://allowed.test:{allowed.port}/c1"
    assert web.run(get, kit.local(block_resources=[]), url=url).data == [
        url.replace("/c1", "/d/c2"),
        200,
        True,
    ]
    # The image's relative URL resolved against the final URL, not the first one.
    assert [r.path for r in allowed.requests] == ["/c1", "/d/c2", "/d/pic.png"]


def test_crawl_never_requests_refused_links(web, allowed, forbidden, kit):
    f = forbidden.port
    allowed.routes["/"] = kit.html(
        f'<a href="http://forbidden.test:{f}/a">a</a><a href="http://127.0.0.2:{f}/b">b</a>'
        '<a href="/next">next</a><a href="javascript:alert(1)">js</a><a href="mailto:x@y">m</a>'
    )
    allowed.routes["/next"] = kit.html("<p>end</p>")

    async def crawl(ctx, url):
        return [p.url async for p in ctx.web.crawl([url], same_host=False)]

    base = f"http://allowed.test:{allowed.port}"
    assert web.run(crawl, kit.local(), url=base + "/").data == [base + "/", base + "/next"]
    assert forbidden.count() == 0
    refused = {e.data["url"] for e in web.events("policy_refused")}
    assert {f"http://forbidden.test:{f}/a", f"http://127.0.0.2:{f}/b"} <= refused


def test_connections_go_to_the_address_the_policy_resolved(web, allowed, kit):
    # allowed.test exists only in the policy's resolver (AESOP_HOSTS), not in the system's:
    # reaching the server proves the connection used the policy's answer, not a second lookup.
    import socket

    with pytest.raises(OSError):
        socket.getaddrinfo("allowed.test", 80)
    allowed.routes["/x"] = kit.html("<p>x</p>")

    async def get(ctx, url):
        return (await ctx.web.fetch(url, mode="http")).status

    assert web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/x").data == 200


@pytest.mark.browser
def test_chromium_has_no_network_of_its_own(web, allowed, kit):
    # A context *without* our route: whatever Chromium would fetch by itself must fail.
    allowed.routes["/p"] = kit.html("<p>x</p>")

    async def raw(ctx, url):
        from aesoperator.web._browser import get_browser

        await ctx.web.fetch(url, mode="browser")  # make sure the shared browser is up
        context = await (await get_browser()).new_context()
        try:
            page = await context.new_page()
            try:
                await page.goto(url, timeout=10_000)
                return ["loaded", ""]
            except Exception as exc:
                return [type(exc).__name__, str(exc).split("\n")[0][:120]]
        finally:
            await context.close()

    data = web.run(raw, kit.local(), url=f"http://127.0.0.1:{allowed.port}/p").data
    assert data[0] != "loaded", data
    assert "ERR_PROXY_CONNECTION_FAILED" in data[1] or "ERR_NAME_NOT_RESOLVED" in data[1]
    assert len(allowed.hits("/p")) == 1  # only the routed fetch reached the server


@pytest.mark.browser
def test_browser_redirect_does_not_carry_cookies_to_another_origin(web, allowed, kit):
    # /go on allowed.test redirects to 127.0.0.1 (another origin, same server): the page's
    # cookies for allowed.test must not go with the second hop.
    allowed.routes["/set"] = lambda _h: (
        200, {"content-type": "text/html", "set-cookie": "sid=secret; Path=/"}, b"<p>set</p>"
    )  # fmt: skip
    allowed.routes["/go"] = lambda _h: (
        302, {"location": f"http://127.0.0.1:{allowed.port}/land"}, b""
    )  # fmt: skip
    allowed.routes["/land"] = kit.html("<p>landed</p>")

    async def get(ctx, base):
        await ctx.web.fetch(base + "/set", mode="browser")
        page = await ctx.web.fetch(base + "/go", mode="browser")
        return {"text": page.text}

    data = web.run(get, kit.local(), base=f"http://allowed.test:{allowed.port}").data
    assert "landed" in data["text"]
    assert allowed.hits("/go")[0].headers.get("cookie") == "sid=secret"
    assert "cookie" not in allowed.hits("/land")[0].headers
