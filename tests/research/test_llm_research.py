"""Research with a model, against the local server that speaks OpenAI's wire protocol.

The model is scripted (tests/llm/llm_protocol.py): it expands the topic, writes a cited report
(one that also cites sources for claims they do not make) and judges support; or it fails
(HTTP 500, bad JSON), or the token budget leaves no room for it. The pages reproduce, reduced,
Django's cache and sessions documentation (BSD licence).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))

from llm_protocol import ModelServer, Raw
from llm_protocol import serve as serve_model

from aesoperator import Aesoperator, Task
from local_research import local_research
from serving import PagesHandler, site


def _page(title: str, *paras: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paras)
    return (
        f"<!doctype html><html><head><title>{title} | Django documentation</title></head>"
        f'<body><div class="body" role="main"><h1>{title}</h1>{body}</div></body></html>'
    )


ROBUST = (
    "Django comes with a robust cache system that lets you save dynamic pages so they don’t "
    "have to be calculated for each request."
)
PAGES = {
    "/index.html": _page(
        "Django documentation",
        '<a href="/topics/cache.html">Django’s cache framework</a> and '
        '<a href="/topics/http/sessions.html">How to use sessions</a> explain the framework.',
    ),
    "/topics/cache.html": _page(
        "Django’s cache framework",
        ROBUST,
        "The cache system requires a small amount of setup: you must tell it where your cached "
        "data should live.",
        "Memcached is an entirely memory-based cache server, originally developed to handle "
        "high loads at LiveJournal.",
        "The per-site cache caches your entire site once the cache middleware is added to the "
        "MIDDLEWARE setting.",
        "Database caching stores cached data in a database table created with the "
        "createcachetable command.",
    ),
    "/topics/http/sessions.html": _page(
        "How to use sessions",
        "Django provides full support for anonymous sessions through the session middleware.",
        "The session framework stores data on the server side and abstracts the sending and "
        "receiving of cookies.",
        "You can configure the session engine to use the cache framework for better "
        "performance of sessions.",
    ),
}


SEARCHED: list[str] = []  # the queries the site's search page received


class _Docs(PagesHandler):
    pages = PAGES

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/search":
            SEARCHED.append(parse_qs(query).get("q", [""])[0])
            return self.reply(200, _page("Search", '<a href="/topics/cache.html">Cache</a>'))
        super().do_GET()


@pytest.fixture(scope="module")
def docs() -> Iterator[str]:
    with site(_Docs) as url:
        yield url


@pytest.fixture(scope="module")
def model() -> Iterator[ModelServer]:
    with serve_model() as srv:
        yield srv


@pytest.fixture(scope="module")
def aesop(tmp_path_factory: pytest.TempPathFactory, model: ModelServer) -> Iterator[Aesoperator]:
    llm = f"openai:gpt-4.1-mini?base_url={model.base_url}/v1"
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("llm-research"), isolation="inline",
                         llm=llm)  # fmt: skip
    yield client
    client.close()


@pytest.fixture(scope="module")
def anthropic_aesop(
    tmp_path_factory: pytest.TempPathFactory, model: ModelServer
) -> Iterator[Aesoperator]:
    llm = f"anthropic:claude-sonnet-4-20250514?base_url={model.base_url}"
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("llm-research-a"), isolation="inline",
                         llm=llm)  # fmt: skip
    yield client
    client.close()


def _task(docs: str, **config: Any) -> Task:
    return local_research("django cache framework", f"{docs}/index.html", name="research_llm",
                          **{"max_pages": 6, **config})  # fmt: skip


EXPANSION = json.dumps({"queries": ["django caching backends"], "terms": ["memcached"]})


def _numbers(prompt: str) -> dict[str, int]:
    """Source number of each page path, as the prompt lists them ("[2] Title — URL")."""
    return {
        re.sub(r"^http://[^/]+", "", url): int(n)
        for n, url in re.findall(r"^\[(\d+)\] .* — (\S+)$", prompt, re.M)
    }


def _writer(sentences: list[tuple[str, str, str]]) -> Any:
    """A report: (section, text, cited page path) each; "summary" is the summary."""

    def write(prompt: str) -> str:
        n = _numbers(prompt)
        summary = [{"text": t, "cite": [n[p]]} for s, t, p in sentences if s == "summary"]
        sections: dict[str, list[dict[str, Any]]] = {}
        for s, t, p in sentences:
            if s != "summary":
                sections.setdefault(s, []).append({"text": t, "cite": [n[p]]})
        return json.dumps({"summary": summary, "sections": [
            {"heading": h, "sentences": v} for h, v in sections.items()
        ]})  # fmt: skip

    return write


def _judge(false_if: str = "\x00") -> Any:
    """Answers per claim of the judgement prompt: false for a claim containing ``false_if``."""

    def judge(prompt: str) -> str:
        claims = re.findall(r"^\d+\. Claim: (.*)$", prompt, re.M)
        return json.dumps({"verdicts": [false_if not in c for c in claims]})

    return judge


GOOD = [
    ("summary", "Django ships a robust cache system that saves dynamic pages so they need not "
                "be calculated for each request.", "/topics/cache.html"),
    ("summary", "Memcached is a memory-based cache server first built to handle high loads at "
                "LiveJournal.", "/topics/cache.html"),
    ("Backends", "Database caching keeps cached data in a database table made with the "
                 "createcachetable command.", "/topics/cache.html"),
]  # fmt: skip


def _events(aesop: Aesoperator, eid: str, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in aesop.get_events(eid) if e.kind == kind]


def test_the_model_expands_the_topic_and_writes_a_cited_report(
    aesop: Aesoperator, model: ModelServer, docs: str
) -> None:
    model.reset([EXPANSION, _writer(GOOD), _judge()])
    result = aesop.execute_task(_task(docs))
    llm = result.data["llm"]
    assert llm["expansion"] == ["memcach", "backend"], llm  # stemmed; the topic's not again
    assert llm["fallback"] is None and llm["sentences_written"] == 3, llm
    assert llm["sentences_dropped"] == 0 and llm["model_judged"] is True, llm
    assert len(model.requests()) == 3  # expansion, report, one batched judgement
    summary = result.content.split("## Summary\n\n", 1)[1].split("\n\n", 1)[0]
    assert summary.startswith("Django ships a robust cache system"), summary
    assert re.fullmatch(r"(?:[^\[\]]+\. \[1\] ?){2}", summary), summary  # each cites [1]
    assert "### Backends\n\n- Database caching keeps cached data" in result.content
    assert result.data["sources"][0]["url"].endswith("/topics/cache.html")
    # What the model saw of the sources is what the pages say.
    assert ROBUST in model.requests()[1]["messages"][-1]["content"]
    usage = result.usage
    assert usage["llm_calls"] == 3 and usage["input_tokens"] > 0, usage
    assert [e["step"] for e in _events(aesop, result.execution_id, "research_llm_call")] == [
        "expand", "write", "judge",
    ]  # fmt: skip


def test_the_same_over_anthropics_protocol(
    anthropic_aesop: Aesoperator, model: ModelServer, docs: str
) -> None:
    model.reset([EXPANSION, _writer(GOOD), _judge(false_if="Memcached")])
    result = anthropic_aesop.execute_task(_task(docs))
    assert model.paths and all(p.endswith("/messages") for p in model.paths), model.paths
    llm = result.data["llm"]
    assert llm["sentences_written"] == 3 and llm["sentences_dropped"] == 1, llm
    assert "Memcached" not in result.content.split("## Sources")[0]
    assert "Django ships a robust cache system" in result.content


def test_the_expanded_queries_go_to_the_search_provider(
    aesop: Aesoperator, model: ModelServer, docs: str
) -> None:
    model.reset([EXPANSION, _writer(GOOD), _judge()])
    SEARCHED.clear()
    task = _task(docs, max_pages=24)
    task.inputs["search"] = {"provider": "site", "base_url": docs}
    result = aesop.execute_task(task)
    assert SEARCHED == ["django cache framework", "django caching backends"], SEARCHED
    assert result.data["llm"]["queries"] == ["django caching backends"]


def test_a_sentence_its_source_does_not_support_is_dropped_and_counted(
    aesop: Aesoperator, model: ModelServer, docs: str
) -> None:
    lies = [
        # Cites the cache page for what the sessions page (barely) says: fails the lexical check.
        ("summary", "Memcached keeps sessions in encrypted cookies signed with the secret key.",
         "/topics/cache.html"),
        # Uses the page's words but says the opposite: only the model's judgement catches it.
        ("Deployment", "The per-site cache caches your entire site once the cache middleware is "
                       "removed from the MIDDLEWARE setting.", "/topics/cache.html"),
    ]  # fmt: skip
    model.reset([EXPANSION, _writer(GOOD + lies), _judge(false_if="removed")])
    result = aesop.execute_task(_task(docs))
    llm = result.data["llm"]
    assert llm["sentences_written"] == 5 and llm["sentences_dropped"] == 2, llm
    whys = sorted(d["why"] for d in llm["dropped"])
    assert whys[0].startswith("lexical support") and whys[1] == "model: not supported", whys
    assert "encrypted cookies" not in result.content and "removed" not in result.content
    assert "Deployment" not in result.content  # a section left empty is not written
    assert "_2 of the model's 5 sentences were dropped" in result.content
    (done,) = _events(aesop, result.execution_id, "research_llm_report")
    assert done["dropped"] == 2 and done["kept"] == 3, done
    # Only the sentences that passed the lexical check were put to the model.
    judge = model.requests()[2]["messages"][-1]["content"]
    assert "removed" in judge and "encrypted" not in judge


@pytest.mark.parametrize(
    "script, why",
    [
        ([], "HTTP 500"),  # every call: 500 (the script has ended)
        ([EXPANSION, "Here is your report: caching is great."], "not JSON"),
    ],
    ids=["http-500", "bad-json"],
)
def test_a_model_error_falls_back_to_the_extractive_report_and_says_so(
    aesop: Aesoperator, model: ModelServer, docs: str, script: list[Any], why: str
) -> None:
    model.reset(script or [Raw(500, {"error": {"message": "upstream down"}})])
    result = aesop.execute_task(_task(docs))
    llm = result.data["llm"]
    assert llm["fallback"].startswith("write: ") and why in llm["fallback"], llm
    assert "_The model failed while writing the report; the report is extractive" in (
        result.content
    )
    assert ROBUST.split(" that ")[0] in result.content  # the page's own sentence, cited
    assert re.search(r"\[1\]", result.content)
    falls = _events(aesop, result.execution_id, "research_llm_fallback")
    assert falls[-1]["step"] == "write" and why in falls[-1]["reason"], falls


def test_the_token_budget_holds_and_a_call_that_would_break_it_is_not_sent(
    aesop: Aesoperator, model: ModelServer, docs: str
) -> None:
    model.reset([EXPANSION, _writer(GOOD), _judge()])
    model.tokenizer = "bytes"  # bill like the costliest tokenizer: a byte a token
    budget = 2_200  # room for the expansion, not for the report's prompt (sources included)
    result = aesop.execute_task(_task(docs, max_llm_tokens=budget))
    used = result.usage["input_tokens"] + result.usage["output_tokens"]
    assert 0 < used <= budget, result.usage
    assert len(model.requests()) == 1  # the expansion only: the report's call was never sent
    llm = result.data["llm"]
    assert llm["expansion"] and "max_llm_tokens" in llm["fallback"], llm
    assert "_The model was not asked (its budget would be exceeded) while writing" in (
        result.content
    )
    assert ROBUST.split(" that ")[0] in result.content


def test_without_a_model_research_is_extractive_and_says_nothing_of_one(
    docs: str, tmp_path: Path
) -> None:
    client = Aesoperator(data_dir=tmp_path, isolation="inline")
    try:
        result = client.execute_task(_task(docs))
    finally:
        client.close()
    assert result.data["llm"] is None and "model" not in result.content.lower()


# -- the model chooses pages ------------------------------------------------------------------
# An index with more links than the budget can read: eleven whose text names the topic (the
# crawl's own favourites) and one, "Internals", that does not but holds the answer.
CHOICE = {
    "/index.html": _page(
        "Django documentation",
        *(
            f'<a href="/topics/cache-{i}.html">Django cache framework notes {i}</a>'
            for i in range(11)
        ),
        '<a href="/internals/store.html">Internals</a>',
    ),
    **{
        f"/topics/cache-{i}.html": _page(
            f"Django cache framework notes {i}",
            f"These notes on the cache framework list release {i} changes to the cache.",
        )
        for i in range(11)
    },
    "/internals/store.html": _page("Internals", ROBUST, "Memcached is a memory-based server."),
}


@pytest.fixture(scope="module")
def choice_site() -> Iterator[str]:
    with site(CHOICE) as url:
        yield url


def _picker(path: str, reply: Any = None) -> Any:
    """Answers every call: the link to ``path`` when asked to choose (or ``reply``), a report
    citing the first source, a yes to every claim, an expansion otherwise."""

    def answer(prompt: str) -> Any:
        if "Links found on the site" in prompt:
            if reply is not None:
                return reply
            n = re.search(rf"^\[(\d+)\] .* — {re.escape(path)}$", prompt, re.M)
            return json.dumps({"pick": [int(n.group(1))] if n else []})
        if "Claim:" in prompt:
            return _judge()(prompt)
        if "<sources>" in prompt:
            return json.dumps({"summary": [], "sections": []})
        return EXPANSION

    return answer


def _read_order(result: Any) -> list[str]:
    return [re.sub(r"^http://[^/]+", "", p["url"]) for p in result.data["pages_read"]]


def _fetch_order(aesop: Aesoperator, eid: str) -> list[str]:
    """The order fetches started in (pages_read is the order they ended)."""
    return [
        re.sub(r"^http://[^/]+", "", e.data["details"]["url"])
        for e in aesop.get_events(eid)
        if e.kind == "action" and e.data["name"] == "fetch"
    ]


def test_without_a_model_the_crawl_reads_its_own_favourites(
    choice_site: str, tmp_path: Path
) -> None:
    client = Aesoperator(data_dir=tmp_path, isolation="inline")
    try:
        result = client.execute_task(
            local_research("django cache framework", f"{choice_site}/index.html", max_pages=4)
        )
    finally:
        client.close()
    assert "/internals/store.html" not in _read_order(result)  # what the model must change


def test_the_model_chooses_which_frontier_pages_to_read_first(
    aesop: Aesoperator, model: ModelServer, choice_site: str
) -> None:
    model.reset([_picker("/internals/store.html")] * 8)
    task = local_research("django cache framework", f"{choice_site}/index.html", max_pages=4)
    result = aesop.execute_task(task)
    order = _fetch_order(aesop, result.execution_id)
    assert order[:2] == ["/index.html", "/internals/store.html"], order
    assert result.data["llm"]["picked"][0].endswith("/internals/store.html")
    (offer, *_) = _events(aesop, result.execution_id, "research_llm_picked")
    assert offer["offered"] == 12 and len(offer["picked"]) == 1, offer
    asked = next(r["messages"][-1]["content"] for r in model.requests()
                 if "Links found" in r["messages"][-1]["content"])  # fmt: skip
    assert "[12] Internals — /internals/store.html" in asked, asked


@pytest.mark.parametrize(
    "reply",
    [json.dumps({"pick": [0, 99, "3", True, None]}), "I would read the internals page."],
    ids=["numbers-outside-the-list", "not-json"],
)
def test_a_pick_the_crawl_cannot_use_leaves_its_own_order(
    aesop: Aesoperator, model: ModelServer, choice_site: str, reply: str
) -> None:
    model.reset([_picker("", reply=reply)] * 8)
    task = local_research("django cache framework", f"{choice_site}/index.html", max_pages=4)
    result = aesop.execute_task(task)
    assert result.pages_visited == 4  # completed, the whole budget read
    assert "/internals/store.html" not in _read_order(result)
    assert result.data["llm"]["picked"] == []
    if reply.startswith("I would"):
        assert "_The model failed while choosing pages to read; the crawl kept its own order" in (
            result.content
        )
