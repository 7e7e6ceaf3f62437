"""HTTP fetching through the public API: redirects, budgets, retries, robots, rate."""

from __future__ import annotations

import pytest

from aesoperator import PolicyViolation


def test_fetch_returns_page_and_records_step(web, allowed, kit):
    allowed.routes["/a"] = kit.html("<html><title>A</title><body><p>hello</p></body></html>")

    async def get(ctx, url):
        page = await ctx.web.fetch(url, mode="http")
        return {
            "status": page.status,
            "text": page.text,
            "ct": page.content_type,
            "with": page.fetched_with,
            "url": page.url,
        }

    url = f"http://allowed.test:{allowed.port}/a"
    result = web.run(get, kit.local(), url=url)
    assert result.data["status"] == 200
    assert "hello" in result.data["text"]
    assert result.data["ct"] == "text/html"
    assert result.data["with"] == "http"
    assert result.pages_visited == 1
    assert [a.name for a in result.actions] == ["fetch"]
    assert allowed.hits("/a")[0].headers["user-agent"].startswith("Aesoperator/")


def test_refused_navigation_fails_with_rule_and_timeline(web, allowed, forbidden, kit):
    async def get(ctx, url):
        await ctx.web.fetch(url, mode="http")

    url = f"http://forbidden.test:{forbidden.port}/x"
    with pytest.raises(PolicyViolation) as info:
        web.run(get, kit.local(), url=url)
    assert info.value.rule == "allowed_domains"
    refused = web.events("policy_refused")
    assert (
        refused and refused[0].data["url"] == url and refused[0].data["rule"] == "allowed_domains"
    )
    assert forbidden.count() == 0


def test_sync_handler_and_extract_in_a_worker_process(tmp_path, allowed, kit):
    from aesoperator import Aesoperator, Task

    allowed.routes["/a"] = kit.html(
        "<html lang=en><title>T</title><article><p>" + "Words of the article. " * 30 + "</p>"
    )
    with Aesoperator(data_dir=tmp_path, isolation="process", pool_size=1) as aesop:

        @aesop.handler("read")
        def read(ctx, url):  # a sync handler: ctx.run bridges to the async web layer
            page = ctx.run(ctx.web.fetch(url, mode="http"))
            info = ctx.run(ctx.web.extract(page))
            return {"title": info.title, "has_text": "Words of the article" in info.text}

        task = Task(name="read", inputs={"url": f"http://127.0.0.1:{allowed.port}/a"},
                    config=kit.local())  # fmt: skip
        result = aesop.execute_task(task)
    assert result.data == {"title": "T", "has_text": True}
    assert [a.name for a in result.actions] == ["fetch", "extract"]
