"""The execution's subresource cache: what it reuses, for whom, and what the policy still says."""

from __future__ import annotations

import pytest

from aesoperator.web._subresources import Cached, SubresourceCache, storable

TITLE_SCRIPT = b"document.title = 'ran';"


def _page(script_url: str) -> str:
    return f"<html><head><script src='{script_url}'></script></head><body>x</body></html>"


def _ran(text: str) -> bool:
    return "<title>ran</title>" in text


async def fetch_all(ctx, urls):
    return [_ran((await ctx.web.fetch(u, mode="browser")).text) for u in urls]


@pytest.mark.browser
@pytest.mark.parametrize("block", [None, []], ids=["blocking-default", "blocking-off"])
def test_leak_cached_subresource_is_refused_where_its_url_is_forbidden(
    web, allowed, forbidden, kit, block
):
    # One execution may load forbidden.test's script and caches it; the next execution, on the
    # same browser, forbids that host: the script is refused, not answered from any cache.
    script = f"http://forbidden.test:{forbidden.port}/s.js"
    forbidden.routes["/s.js"] = lambda _h: (200, {"content-type": "text/javascript"},
                                            TITLE_SCRIPT)  # fmt: skip
    allowed.routes["/1"] = kit.html(_page(script))
    allowed.routes["/2"] = kit.html(_page(script))
    urls = [f"http://allowed.test:{allowed.port}/{n}" for n in (1, 2)]
    extra = {} if block is None else {"block_resources": block}

    wide = kit.local(allowed_domains=["allowed.test", "forbidden.test"], **extra)
    assert web.run(fetch_all, wide, urls=urls).data == [True, True]
    assert len(forbidden.hits("/s.js")) == 1  # the second page was answered from the cache
    seen = forbidden.count()

    assert web.run(fetch_all, kit.local(**extra), urls=urls).data == [False, False]
    assert forbidden.count() == seen
    assert script in [e.data["url"] for e in web.events("policy_refused")]


@pytest.mark.browser
def test_responses_that_must_not_be_reused_are_fetched_each_time(web, allowed, kit):
    js = {"content-type": "text/javascript"}
    replies = {
        "/plain.js": js,
        "/cookie.js": {**js, "set-cookie": "seen=1; Path=/"},
        "/vary.js": {**js, "vary": "Cookie"},
        "/nocache.js": {**js, "cache-control": "no-cache"},
    }
    for path, headers in replies.items():
        allowed.routes[path] = lambda _h, h=headers: (200, h, b"1;")
    tags = "".join(f"<script src='{p}'></script>" for p in replies)
    allowed.routes["/1"] = kit.html(f"<html><head>{tags}</head></html>")
    allowed.routes["/2"] = kit.html(f"<html><head>{tags}</head></html>")
    urls = [f"http://allowed.test:{allowed.port}/{n}" for n in (1, 2)]
    web.run(fetch_all, kit.local(), urls=urls)
    assert {p: len(allowed.hits(p)) for p in replies} == {
        "/plain.js": 1,
        "/cookie.js": 2,
        "/vary.js": 2,
        "/nocache.js": 2,
    }


def test_cache_is_bounded_in_bytes_least_recently_used_out_first():
    cache = SubresourceCache(max_bytes=60)
    for name in ("a", "b", "c"):
        cache.put(name, Cached(200, {}, b"x" * 12))
    assert cache.get("a") is None  # 3 * 28 bytes > 60: the oldest went
    assert cache.size == 56  # a body counts with its base64 form: 12 * 7 // 3
    assert cache.get("b") is not None  # now the most recently used
    cache.put("d", Cached(200, {}, b"x" * 12))
    assert cache.get("b") is not None and cache.get("c") is None
    cache.put("huge", Cached(200, {}, b"x" * 43))
    assert cache.get("huge") is None and cache.size <= 60


@pytest.mark.parametrize(
    ("status", "headers", "ok"),
    [
        (200, [("Content-Type", "text/css")], True),
        (200, [("Vary", "Accept-Encoding")], True),
        (200, [("Cache-Control", "public, max-age=60")], True),
        (404, [], False),
        (200, [("Cache-Control", "max-age=0, no-store")], False),
        (200, [("Cache-Control", "no-cache")], False),
        (200, [("Set-Cookie", "a=1")], False),
        (200, [("Vary", "Accept-Encoding, Cookie")], False),
        (200, [("Vary", "*")], False),
    ],
)
def test_what_may_be_stored(status, headers, ok):
    assert storable(status, headers, b"body") is ok
