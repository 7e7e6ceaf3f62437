"""``fetch(url, robots=False)``: an API client's request skips robots.txt and nothing else."""

from __future__ import annotations

from aesoperator import PolicyViolation, UserError

ROBOTS = "User-agent: *\nDisallow: /\n"  # export.arxiv.org's robots.txt


def test_api_fetch_skips_robots_txt_only(web, allowed, kit):
    allowed.routes["/robots.txt"] = lambda _h: (
        200,
        {"content-type": "text/plain"},
        ROBOTS.encode(),
    )
    allowed.routes["/api/query"] = kit.html("<feed/>")
    url = f"http://allowed.test:{allowed.port}/api/query"

    async def get(ctx, url):
        api = await ctx.web.fetch(url, mode="http", robots=False)
        try:
            await ctx.web.fetch(url, mode="http")
        except PolicyViolation as exc:
            return {"api": api.status, "crawl": exc.rule}
        return {"api": api.status, "crawl": None}

    data = web.run(get, kit.local(respect_robots_txt=True), url=url).data
    assert data == {"api": 200, "crawl": "robots_txt"}
    assert len(allowed.hits("/api/query")) == 1  # the crawler's request never left


def test_api_fetch_still_obeys_the_policy(web, allowed, forbidden, kit):
    # A refused domain, directly and as a redirect hop from an allowed API.
    allowed.routes["/api"] = lambda _h: (
        302,
        {"location": f"http://forbidden.test:{forbidden.port}/secret"},
        b"",
    )

    async def get(ctx, url, direct):
        rules = []
        for target in (direct, url):
            try:
                await ctx.web.fetch(target, mode="http", robots=False)
            except PolicyViolation as exc:
                rules.append(exc.rule)
        return rules

    rules = web.run(
        get,
        kit.local(),
        url=f"http://allowed.test:{allowed.port}/api",
        direct=f"http://forbidden.test:{forbidden.port}/secret",
    ).data
    assert rules == ["allowed_domains", "allowed_domains"]
    assert forbidden.count() == 0


def test_api_fetch_is_http_only(web, allowed, kit):
    async def get(ctx, url):
        try:
            await ctx.web.fetch(url, mode="browser", robots=False)
        except UserError as exc:
            return str(exc)
        return None

    result = web.run(get, kit.local(), url=f"http://allowed.test:{allowed.port}/")
    assert "mode='http'" in str(result.content)
