"""Research end to end through the public API, against the generated demo site."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.errors import FetchError, TaskCancelled, ValidationError
from aesoperator.web.extract import extract_page
from waiting import eventually

_WS = re.compile(r"\s+")


def _config(**kw: Any) -> TaskConfig:
    base: dict[str, Any] = {
        "allowed_domains": ["127.0.0.1"],
        "allow_private_network": True,
        "concurrent_requests": 4,
        "max_retries": 1,
        "retry_delay_seconds": 0.01,
    }
    base.update(kw)
    return TaskConfig(**base)


def _page_text(url: str) -> str:
    with urllib.request.urlopen(url) as resp:
        body = resp.read()
        kind = resp.headers.get("content-type")
    return _WS.sub(" ", extract_page(body, url, kind).text)


def _manifest(site_dir: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((site_dir / "manifest.json").read_text())
    return {a["path"]: a for a in data["articles"]}


@pytest.fixture(scope="module")
def quantum(aesop: Aesoperator, site: Any) -> Any:
    before = sum(site.hits.values())
    task = Task(
        name="research_quantum_computing",
        description="Research recent advances in quantum computing",
        config=_config(max_pages=25),
        inputs={
            "topic": "quantum computing",
            "start_date": "2021-01-01",
            "focus_areas": ["algorithms", "hardware"],
            "search": {"provider": "site", "base_url": site.url},
        },
    )
    result = aesop.execute_task(task)
    return result, sum(site.hits.values()) - before


def test_report_routes_to_research_and_is_visible(aesop: Aesoperator, quantum: Any) -> None:
    result, _ = quantum
    assert result.planner == "skill:research"
    kinds = [e.kind for e in aesop.get_events(result.execution_id)]
    assert "planner" in kinds and "research_plan" in kinds


def test_max_pages_never_exceeded(quantum: Any) -> None:
    result, requests = quantum
    assert 0 < result.pages_visited <= 25
    # Count at the server too (robots.txt is the only request outside the page budget).
    assert requests <= 25 + 1


def test_low_value_pages_are_not_fetched(quantum: Any, site: Any) -> None:
    result, _ = quantum
    # Every demo page links to /login, /register, /privacy.html...: none is worth a page.
    for path in ("/login", "/register", "/privacy.html", "/terms.html", "/contact.html"):
        assert site.hits[path] == 0, path
    hubs = [p for p in result.data["pages_read"] if p["hub"]]
    cited = {s["url"] for s in result.data["sources"]}
    assert not cited & {p["url"] for p in hubs}  # indexes are read for links, never cited


def test_every_cited_sentence_is_in_its_source(quantum: Any) -> None:
    result, _ = quantum
    passages = result.data["passages"]
    assert len(passages) >= 4
    cache: dict[str, str] = {}
    for passage in passages:
        url = passage["url"]
        if url not in cache:
            cache[url] = _page_text(url)
        assert _WS.sub(" ", passage["text"]) in cache[url], (passage, url)
        # ... and the report cites it with the source's number.
        assert f"{passage['text']} [{passage['source']}]" in result.content


def test_report_shape_citations_and_focus_areas(quantum: Any) -> None:
    result, _ = quantum
    content = result.content
    assert content.startswith("# Research: quantum computing")
    for heading in ("## Summary", "## Findings", "### Algorithms", "### Hardware", "## Sources"):
        assert heading in content
    sources = result.data["sources"]
    assert [s["n"] for s in sources] == list(range(1, len(sources) + 1))
    for src in sources:
        assert f"{src['n']}. [" in content and src["url"] in content
    for area, word in (("algorithms", "algorithm"), ("hardware", "hardware")):
        found = [p for p in result.data["passages"] if p["section"] == area]
        assert found, area
        assert all(word in p["text"].lower() for p in found)
    assert result.summary and len(result.summary) < len(content)
    cited = set(re.findall(r"\[(\d+)\]", content.split("## Sources")[0]))
    assert cited == {str(s["n"]) for s in sources}


def test_save_report_markdown_and_json(quantum: Any, tmp_path: Path) -> None:
    result, _ = quantum
    assert result.save_report(tmp_path / "r.md").read_text() == result.content
    saved = json.loads(result.save_report(tmp_path / "r.json").read_text())
    assert saved["sources"] == result.data["sources"]


def test_start_date_respected_and_undated_marked(quantum: Any, site_dir: Path) -> None:
    result, _ = quantum
    manifest = _manifest(site_dir)
    for src in result.data["sources"]:
        if src["date"] is not None:
            assert src["date"] >= "2021-01-01"
        else:
            assert src["undated"]
            line = next(x for x in result.content.splitlines() if src["url"] in x)
            assert line.endswith("undated")
        path = "/" + src["url"].split("/", 3)[3]
        if path in manifest and manifest[path]["date"]:
            assert manifest[path]["date"] >= "2021-01-01"
    assert all(e["date"] < "2021-01-01" for e in result.data["excluded"])


def test_cited_sources_are_on_topic(quantum: Any, site_dir: Path) -> None:
    result, _ = quantum
    manifest = _manifest(site_dir)
    topics = [
        manifest["/" + s["url"].split("/", 3)[3]]["topic"]
        for s in result.data["sources"]
        if "/" + s["url"].split("/", 3)[3] in manifest
    ]
    assert topics and topics.count("quantum-computing") >= 0.8 * len(topics)


def test_only_allowed_domains_are_touched(aesop: Aesoperator, site: Any, forbidden: Any) -> None:
    before = len(forbidden.hits)
    result = aesop.execute_task(
        Task(
            name="research_bait",
            config=_config(max_pages=8),
            inputs={"topic": "quantum computing hardware", "start_urls": [f"{site.url}/bait.html"]},
        )
    )
    read = [p["url"] for p in result.data["pages_read"]]
    assert f"{site.url}/bait.html" in read  # the page with the forbidden links was read
    assert len(forbidden.hits) == before == 0


def test_start_urls_outside_allowed_domains_fail_before_any_request(
    aesop: Aesoperator, site: Any, forbidden: Any
) -> None:
    hits = sum(site.hits.values())
    with pytest.raises(ValidationError) as err:
        aesop.execute_task(
            Task(
                name="research_bad_start",
                config=_config(),
                inputs={"topic": "x", "start_urls": [f"{site.url}/", f"{forbidden.url}/a"]},
            )
        )
    message = str(err.value)
    assert "start_urls" in message and "127.0.0.2" in message and "allowed_domains" in message
    assert len(forbidden.hits) == 0 and sum(site.hits.values()) == hits


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"depth": "technical"}, "topic"),
        ({"topic": ""}, "topic"),
        ({"topic": "x", "depth": "deep"}, "depth"),
        ({"topic": "x", "focus_areas": "hardware"}, "focus_areas"),
        ({"topic": "x", "start_date": "last year"}, "start_date"),
        ({"topic": "x", "search": {"provider": "altavista"}}, "search"),
    ],
)
def test_bad_inputs_name_the_field(aesop: Aesoperator, inputs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=f"inputs.{field}"):
        aesop.execute_task(
            Task(name="research_bad", skill="research", config=_config(), inputs=inputs)
        )


def test_unreachable_site_fails_with_fetch_error_after_retries(
    aesop: Aesoperator, closed_port: int
) -> None:
    execution = aesop.execute_task_async(
        Task(
            name="research_unreachable",
            config=_config(max_retries=2),
            inputs={"topic": "x", "start_urls": [f"http://127.0.0.1:{closed_port}/"]},
        )
    )
    with pytest.raises(FetchError):
        execution.result(timeout=60)
    status = execution.status()
    assert status.state == "failed" and status.error is not None
    assert status.error.type == "FetchError"
    url = f"http://127.0.0.1:{closed_port}/"
    retries = [e for e in aesop.get_events(execution.id) if e.kind == "retry"]
    # max_retries, then fail. Those of robots.txt (fetched first): a server that refused
    # them all gets one attempt for the page rather than a second backoff series.
    assert [e.data["url"] for e in retries] == [url + "robots.txt"] * 2
    assert "refused lately: not retried" in status.error.message


def test_permanent_memory_skips_read_pages(aesop: Aesoperator, site: Any) -> None:
    def run() -> Any:
        return aesop.execute_task(
            Task(
                name="research_memory_climate",
                memory_scope="permanent",
                config=_config(max_pages=12),
                inputs={"topic": "sea level", "search": {"provider": "site", "base_url": site.url}},
            )
        )

    first = run()
    first_read = {p["url"] for p in first.data["pages_read"] if not p["hub"]}
    second = run()
    second_articles = {p["url"] for p in second.data["pages_read"] if not p["hub"]}
    assert first_read and second_articles
    assert not first_read & second_articles  # nothing read twice
    assert set(second.data["skipped_known"]) & first_read
    assert "Since the last run" in second.content
    first_cited = {s["url"] for s in first.data["sources"]}
    assert not first_cited & {s["url"] for s in second.data["sources"]}

    # The task's permanent memory holds what both runs read and found.
    @aesop.handler("research_memory_climate")
    def peek(ctx: Any, **_: Any) -> dict[str, Any]:
        return {"visited": ctx.memory.get("visited_urls"), "findings": ctx.memory.get("findings")}

    memory = aesop.execute_task(
        Task(name="research_memory_climate", memory_scope="permanent", inputs={"topic": "x"})
    ).data
    assert (first_read | second_articles) <= set(memory["visited"])
    found = {f["text"] for f in memory["findings"]}
    assert {p["text"] for p in first.data["passages"] + second.data["passages"]} <= found


def test_depth_changes_length_and_detail(aesop: Aesoperator, site: Any) -> None:
    def run(depth: str) -> Any:
        return aesop.execute_task(
            Task(
                name=f"research_depth_{depth}",
                config=_config(max_pages=40),
                inputs={
                    "topic": "solar batteries",
                    "depth": depth,
                    "search": {"provider": "site", "base_url": site.url},
                },
            )
        )

    overview, technical = run("overview"), run("technical")
    assert len(technical.data["passages"]) > len(overview.data["passages"])
    assert len(technical.content) > len(overview.content)


@pytest.fixture(params=["inline", "process"])
def any_client(request: Any, aesop: Aesoperator, tmp_path: Path) -> Iterator[Aesoperator]:
    if request.param == "inline":
        yield aesop
        return
    client = Aesoperator(data_dir=tmp_path, pool_size=1)
    yield client
    client.close()


def test_cancel_mid_crawl_leaves_clean_cancelled_state(any_client: Aesoperator, site: Any) -> None:
    aesop = any_client
    execution = aesop.execute_task_async(
        Task(
            name="research_cancel",
            config=_config(max_pages=300, requests_per_second=15, concurrent_requests=2),
            inputs={"topic": "batteries", "search": {"provider": "site", "base_url": site.url}},
        )
    )
    eventually(
        lambda: len([e for e in aesop.get_events(execution.id) if e.kind == "page"]) >= 6,
        timeout=60,
        interval=0.05,
        what="six pages crawled before the cancel",
    )
    assert execution.cancel()
    status = execution.wait(timeout=30)
    assert status.state == "cancelled"
    assert status.error is not None and status.error.type == "TaskCancelled"
    assert 0 < status.progress < 100
    with pytest.raises(TaskCancelled):
        execution.result()
    pages = [e for e in aesop.get_events(execution.id) if e.kind == "page"]
    assert 6 <= len(pages) < 300


def test_time_limit_ends_reading_but_still_reports(aesop: Aesoperator, site: Any) -> None:
    result = aesop.execute_task(
        Task(
            name="research_short_on_time",
            # 200 pages at 4 requests/s would take ~50 s: time runs out first.
            config=_config(max_pages=200, max_duration_seconds=12, requests_per_second=4),
            inputs={"topic": "wind power", "search": {"provider": "site", "base_url": site.url}},
        )
    )
    assert result.data["stopped_for_time"] is True
    assert 0 < result.pages_visited < 200
    assert "stopped early" in result.content and result.data["sources"]


@pytest.mark.parametrize(
    ("url", "skipped"),
    [
        ("http://x.org/search", True),  # the bare search form: nothing to read
        ("http://x.org/search/", True),
        ("http://x.org/search?q=batteries", False),  # a listing of results: a hub
        ("http://x.org/research/batteries.html", False),
        ("http://x.org/login", True),
        ("http://x.org/a/page.html", False),
    ],
)
def test_low_value_url_rules(url: str, skipped: bool) -> None:
    from aesoperator.skills.research._crawl import skip_url

    assert skip_url(url) is skipped
