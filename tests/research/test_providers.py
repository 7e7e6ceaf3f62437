"""Named search providers (Wikipedia API, arXiv API, DuckDuckGo HTML) and the sitemap fallback,
each against a local server that speaks the real wire format, at a configured base URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.errors import ValidationError
from serving import QuietHandler, running

ARTICLES = {
    "Quantum_error_correction": "Quantum error correction protects quantum information from "
    "noise by encoding it across many physical qubits. The surface code is the leading quantum "
    "error correction scheme for superconducting qubits.",
    "Qubit": "A qubit is the basic unit of quantum information. Quantum error correction "
    "needs many physical qubits for each logical qubit in a quantum computer.",
    "Cooking": "Cooking is the art of preparing food with heat. Recipes vary by region.",
}
ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<entry><id>{base}/abs/2401.00001v1</id><published>2024-01-05T00:00:00Z</published>
<title>Decoding the surface code in real time</title>
<summary>We show that quantum error correction with the surface code can be decoded in real
time on superconducting qubits. Logical error rates fall as the code distance grows.</summary>
</entry>
<entry><id>{base}/abs/1901.00002v2</id><published>2019-01-09T00:00:00Z</published>
<title>An old result on quantum error correction</title>
<summary>Early quantum error correction experiments used only a handful of qubits and could
not yet beat the physical error rate.</summary></entry>
</feed>"""


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        srv: Any = self.server
        srv.hits.append(self.path)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        if parts.path == "/w/api.php":
            words = query["srsearch"][0].lower().split()
            hits = [
                {"title": t.replace("_", " ")}
                for t, text in ARTICLES.items()
                if any(w in text.lower() for w in words)
            ]
            self.reply(200, json.dumps({"query": {"search": hits}}), "application/json")
        elif parts.path.startswith("/wiki/"):
            title = parts.path[len("/wiki/") :]
            text = ARTICLES.get(title)
            if text is None:
                self.reply(404, "<h1>Not found</h1>")
            else:
                self.reply(
                    200,
                    f"<html><head><title>{title} - Wiki</title></head><body>"
                    f"<article><h1>{title}</h1><p>{text}</p></article></body></html>",
                )
        elif parts.path == "/api/query":
            self.reply(200, ATOM.format(base=base), "application/atom+xml")
        elif parts.path == "/html/":
            links = "".join(
                f'<a class="result__a" href="//duckduckgo.test/l/?uddg={quote(u, safe="")}">r</a>'
                for u in (f"{base}/wiki/Qubit", f"{srv.forbidden}/secret", f"{base}/wiki/Cooking")
            )
            self.reply(200, f"<html><body><a href='/html/?q=next'>next</a>{links}</body></html>")
        elif parts.path == "/sitemap.xml":
            locs = "".join(f"<url><loc>{base}/wiki/{t}</loc></url>" for t in ARTICLES)
            self.reply(200, f"<urlset>{locs}</urlset>", "application/xml")
        else:
            self.reply(404, "<h1>Not found</h1>")


@pytest.fixture(scope="module")
def api(forbidden: Any) -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.hits = []  # type: ignore[attr-defined]
    server.forbidden = forbidden.url  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    with running(server):
        yield server


def _research(aesop: Aesoperator, search: Any, **inputs: Any) -> Any:
    return aesop.execute_task(
        Task(
            name="research_providers",
            config=TaskConfig(
                allowed_domains=["127.0.0.1"],
                allow_private_network=True,
                max_pages=10,
                max_retries=0,
            ),
            inputs={"topic": "quantum error correction", "search": search, **inputs},
        )
    )


def test_wikipedia_api(aesop: Aesoperator, api: Any) -> None:
    result = _research(aesop, {"provider": "wikipedia", "base_url": api.url})
    urls = {s["url"] for s in result.data["sources"]}
    assert f"{api.url}/wiki/Quantum_error_correction" in urls
    assert f"{api.url}/wiki/Cooking" not in urls
    assert any(h.startswith("/w/api.php?") for h in api.hits)


def test_arxiv_api_uses_abstracts_and_dates(aesop: Aesoperator, api: Any) -> None:
    before = len(api.hits)
    result = _research(aesop, {"provider": "arxiv", "base_url": api.url}, start_date="2023-01-01")
    sources = result.data["sources"]
    assert [s["url"] for s in sources] == [f"{api.url}/abs/2401.00001v1"]
    assert sources[0]["date"] == "2024-01-05"
    assert result.data["excluded"][0]["url"].endswith("1901.00002v2")
    # The API answer carries the abstracts: one request, no page fetched per paper.
    paths = [h.split("?")[0] for h in api.hits[before:]]
    assert [p for p in paths if p != "/robots.txt"] == ["/api/query"]
    assert "decoded in real time" in result.content


def test_duckduckgo_html_results_obey_the_policy(
    aesop: Aesoperator, api: Any, forbidden: Any
) -> None:
    result = _research(aesop, {"provider": "duckduckgo", "base_url": api.url})
    read = {p["url"] for p in result.data["pages_read"]}
    assert f"{api.url}/wiki/Qubit" in read
    assert len(forbidden.hits) == 0


def test_site_without_search_page_falls_back_to_sitemap(aesop: Aesoperator, api: Any) -> None:
    before = len(api.hits)
    result = _research(aesop, {"provider": "site", "base_url": api.url})
    paths = [h.split("?")[0] for h in api.hits[before:] if not h.startswith("/robots.txt")]
    assert paths[:2] == ["/search", "/sitemap.xml"]
    assert f"{api.url}/wiki/Quantum_error_correction" in {s["url"] for s in result.data["sources"]}


def test_provider_base_url_must_be_allowed(aesop: Aesoperator, api: Any) -> None:
    before = len(api.hits)
    with pytest.raises(ValidationError, match="allowed_domains"):
        aesop.execute_task(
            Task(
                name="research_providers",
                config=TaskConfig(allowed_domains=["example.org"]),
                inputs={"topic": "x", "search": {"provider": "wikipedia", "base_url": api.url}},
            )
        )
    assert len(api.hits) == before


def test_routing_by_topic_name_or_forced(aesop: Aesoperator) -> None:
    from aesoperator.skills import research, summarize

    assert research.matches(Task(name="anything", inputs={"topic": "x"}))
    assert research.matches(Task(name="research_topic"))
    assert research.matches(Task(name="x", skill="research"))
    assert not research.matches(Task(name="monitor_website", inputs={"url": "http://x"}))
    assert summarize.matches(Task(name="summarize", inputs={"text": "x"}))
    assert not summarize.matches(Task(name="summarize"))
    assert not summarize.matches(Task(name="digest", inputs={"text": "x"}))
    with pytest.raises(ValidationError, match="topic"):
        aesop.execute_task(Task(name="research_no_topic"))
