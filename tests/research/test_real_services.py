"""The providers against stand-ins that behave as the real services do: their robots.txt
rules, DuckDuckGo's redirect links, ads and bot challenge, arXiv's Atom links, date ranges,
error entries and rate limit, a site behind a Cloudflare challenge, a sitemap index with gzip
children. Each server is local; each behaviour is chosen by the test."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from aesoperator import Aesoperator, Task, TaskConfig
from serving import QuietHandler, running

WIKI_ROBOTS = (
    "User-agent: *\nAllow: /w/api.php?action=mobileview&\nAllow: /w/load.php?\n"
    "Disallow: /w/\nDisallow: /api/\nDisallow: /trap/\n"
)  # reduced from en.wikipedia.org/robots.txt
ARXIV_ROBOTS = "User-agent: *\nDisallow: /\n"  # export.arxiv.org/robots.txt
TEXT = {
    "Quantum_error_correction": "Quantum error correction protects quantum information from "
    "noise by encoding it across many physical qubits. The surface code is the leading quantum "
    "error correction scheme for superconducting qubits.",
    "Qubit": "A qubit is the basic unit of quantum information. Quantum error correction "
    "needs many physical qubits for each logical qubit in a quantum computer.",
}
PAPERS = [  # (id, submitted, title): the API returns the old ones first by relevance
    ("1901.00001", "2019-01-09", "An early quantum error correction experiment"),
    ("1905.00002", "2019-05-01", "Quantum error correction with few qubits"),
    ("2001.00003", "2020-01-20", "Quantum error correction thresholds revisited"),
    ("2402.00004", "2024-02-14", "Real-time decoding for quantum error correction"),
    ("2406.00005", "2024-06-03", "Quantum error correction below threshold"),
]
CHALLENGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    "<div id='cf-chl-widget'>Checking your browser</div>"
    "<script src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1'></script>"
    "</body></html>"
)
DDG_CHALLENGE = (
    "<html><body><div class='anomaly-modal__title'>Unfortunately, bots use DuckDuckGo too."
    "</div><form class='anomaly-modal'><div class='anomaly-modal__puzzle'></div></form>"
    "</body></html>"
)


def _atom(base: str, papers: list[tuple[str, str, str]]) -> str:
    entries = "".join(
        f"<entry><id>{base}/abs/{i}v1</id><updated>{d}T00:00:00Z</updated>"
        f"<published>{d}T00:00:00Z</published><title>{t}</title>"
        f"<summary>{t}. We study quantum error correction on superconducting qubits and show "
        f"how logical error rates depend on the code distance.</summary>"
        f'<link href="{base}/abs/{i}v1" rel="alternate" type="text/html"/>'
        f'<link title="pdf" href="{base}/pdf/{i}v1" rel="related" type="application/pdf"/>'
        "</entry>"
        for i, d, t in papers
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>ArXiv Query</title>{entries}</feed>"
    )


ATOM_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_x</id><title>Error</title>"
    "<summary>incorrect id format for x</summary></entry></feed>"
)


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        srv: Any = self.server
        srv.hits.append(self.path)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        base = srv.url
        mode: str = srv.mode
        path = parts.path
        if mode == "walled" and path != "/robots.txt":
            return self.reply(403, CHALLENGE, extra={"cf-mitigated": "challenge"})
        if path == "/robots.txt":
            return self.reply(200, srv.robots, "text/plain")
        if path == "/w/api.php" and srv.lag:
            srv.lag = False  # the first API request is asked to wait, as maxlag does
            lag = {"error": {"code": "maxlag", "info": "Waiting for db1: 7 seconds lagged"}}
            return self.reply(200, json.dumps(lag), "application/json", {"retry-after": "1"})
        if path == "/w/api.php":
            words = query["srsearch"][0].lower().split()
            hits = [
                {"title": t} for t, text in TEXT.items() if any(w in text.lower() for w in words)
            ]
            body = json.dumps({"batchcomplete": "", "query": {"search": hits}})
            return self.reply(200, body, "application/json")
        if path.startswith("/wiki/") and path[6:] in TEXT:
            title = path[6:]
            return self.reply(200, _article(title.replace("_", " "), TEXT[title]))
        if path == "/api/query":
            if mode == "rate":
                return self.reply(503, "Rate exceeded.", "text/plain")
            if mode == "error":
                return self.reply(400, ATOM_ERROR, "application/atom+xml")
            papers = PAPERS
            found = re.search(
                r"submittedDate:\[(\d{8})\d{4} TO (\d{12})\]", query["search_query"][0]
            )
            if found:
                start = found.group(1)
                papers = [p for p in PAPERS if p[1].replace("-", "") >= start]
            if query.get("sortBy") == ["submittedDate"]:
                papers = sorted(papers, key=lambda p: p[1], reverse=True)
            limit = int(query.get("max_results", ["10"])[0])
            return self.reply(200, _atom(base, papers[:limit]), "application/atom+xml")
        if path == "/html/":
            if mode == "challenge":
                return self.reply(202, DDG_CHALLENGE)
            wrap = "//duckduckgo.com/l/?uddg={}&amp;rut=3f9a"
            ad = f"https://duckduckgo.com/y.js?ad_domain=ads.test&amp;u3={quote(base + '/ad')}"
            links = "".join(
                f'<a class="result__a" href="{wrap.format(quote(f"{base}/wiki/{t}", safe=""))}">'
                f"{t}</a>"
                for t in TEXT
            )
            return self.reply(
                200,
                f"<html><body><div class='result--ad'><a class='result__a' href='{ad}'>Ad</a>"
                f"</div>{links}<a href='/html/?q=next'>Next</a></body></html>",
            )
        if path.startswith("/maps/"):
            return self._sitemap(path, base)
        if path.startswith("/pages/"):
            name = path[7:]
            return self.reply(
                200, _article(name.replace("-", " "), TEXT["Quantum_error_correction"])
            )
        if path == "/start":  # an article citing five papers on the walled journal site
            links = "".join(
                f'<li><a href="{u}">Quantum error correction paper {i}</a></li>'
                for i, u in enumerate(srv.links)
            )
            body = _article("Quantum error correction", TEXT["Quantum_error_correction"])
            return self.reply(200, body.replace("</article>", f"</article><ul>{links}</ul>"))
        if path == "/":
            return self.reply(200, "<html><body><h1>Home</h1></body></html>")
        return self.reply(404, "<h1>Not found</h1>")

    def _sitemap(self, path: str, base: str) -> None:
        def urlset(names: list[str], mod: str) -> bytes:
            urls = "".join(
                f"<url><loc>{base}/pages/{n}</loc><lastmod>{mod}</lastmod></url>" for n in names
            )
            return f'<?xml version="1.0"?><urlset>{urls}</urlset>'.encode()

        if path == "/maps/index.xml":
            index = (
                f'<?xml version="1.0"?><sitemapindex>'
                f"<sitemap><loc>{base}/maps/old.xml.gz</loc><lastmod>2019-03-01</lastmod></sitemap>"
                f"<sitemap><loc>{base}/maps/new.xml.gz</loc><lastmod>2024-05-01</lastmod></sitemap>"
                "</sitemapindex>"
            )
            return self.reply(200, index, "application/xml")
        if path == "/maps/new.xml.gz":  # a gzip file, as most sites serve .xml.gz
            body = gzip.compress(urlset(["quantum-error-correction-2024"], "2024-05-01"))
            return self.reply(200, body, "application/gzip")
        if path == "/maps/old.xml.gz":  # the same file served with Content-Encoding: gzip
            body = gzip.compress(urlset(["quantum-error-correction-2019"], "2019-03-01"))
            return self.reply(200, body, "application/xml", extra={"content-encoding": "gzip"})
        if path == "/maps/bomb.xml.gz":
            return self.reply(
                200, gzip.compress(b"<urlset>" + b" " * 3_000_000), "application/gzip"
            )
        return self.reply(404, "<h1>Not found</h1>")


def _article(title: str, text: str) -> str:
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{text}</p></article></body></html>"
    )


class Service:
    def __init__(self, robots: str, mode: str = "") -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.hits = []  # type: ignore[attr-defined]
        self.server.robots = robots  # type: ignore[attr-defined]
        self.server.mode = mode  # type: ignore[attr-defined]
        self.server.links = []  # type: ignore[attr-defined]
        self.server.lag = mode == "lagged"  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.server.url = self.url  # type: ignore[attr-defined]

    @property
    def hits(self) -> list[str]:
        return self.server.hits  # type: ignore[attr-defined,no-any-return]

    def paths(self) -> list[str]:
        return [h.split("?")[0] for h in self.hits]


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    robots, mode = getattr(request, "param", (WIKI_ROBOTS, ""))
    svc = Service(robots, mode)
    with running(svc.server):
        yield svc


def _run(
    aesop: Aesoperator, search: Any, *, workers: int = 4, pages: int = 10, **inputs: Any
) -> Any:
    execution = aesop.execute_task_async(
        Task(
            name="research_real_services",
            config=TaskConfig(
                allowed_domains=["127.0.0.1"],
                allow_private_network=True,
                respect_robots_txt=True,
                max_pages=pages,
                max_retries=0,
                max_response_bytes=1_000_000,
                concurrent_requests=workers,
            ),
            inputs={"topic": "quantum error correction", "search": search, **inputs},
        )
    )
    result = execution.result(timeout=90)
    return (
        result,
        {e.kind: e for e in aesop.get_events(execution.id)},
        aesop.get_events(execution.id),
    )


def test_wikipedia_api_despite_its_robots_txt(aesop: Aesoperator, service: Service) -> None:
    result, events, _ = _run(aesop, {"provider": "wikipedia", "base_url": service.url})
    api = [h for h in service.hits if h.startswith("/w/api.php?")]
    assert len(api) >= 1 and all("maxlag=5" in h for h in api)
    assert "robots.txt not consulted" in events["research_api_terms"].data["terms"]
    # The articles it leads to are crawled under robots.txt, which was read for them.
    assert "/robots.txt" in service.paths()
    cited = {s["url"] for s in result.data["sources"]}
    assert f"{service.url}/wiki/Quantum_error_correction" in cited


@pytest.mark.parametrize("service", [(ARXIV_ROBOTS, "")], indirect=True)
def test_arxiv_date_range_keeps_recent_papers(aesop: Aesoperator, service: Service) -> None:
    result, _, _ = _run(
        aesop, {"provider": "arxiv", "base_url": service.url}, start_date="2023-01-01",
        max_results=2,
    )  # fmt: skip
    query = next(h for h in service.hits if h.startswith("/api/query"))
    assert "sortBy=submittedDate" in query and "sortOrder=descending" in query
    # The relevance-first answer would start with 2019-2020 papers and drop them all.
    read = sorted(p["url"] for p in result.data["pages_read"])
    assert read == [f"{service.url}/abs/2402.00004v1", f"{service.url}/abs/2406.00005v1"]
    assert result.data["sources"] and result.data["excluded"] == []


@pytest.mark.parametrize("service", [(ARXIV_ROBOTS, "rate")], indirect=True)
def test_arxiv_rate_exceeded_is_said(aesop: Aesoperator, service: Service) -> None:
    result, events, _ = _run(aesop, {"provider": "arxiv", "base_url": service.url})
    assert "Rate exceeded" in result.summary and "arxiv" in result.summary
    assert events["research_discovered"].data["failed"]


@pytest.mark.parametrize("service", [(ARXIV_ROBOTS, "error")], indirect=True)
def test_arxiv_error_entry_is_not_a_paper(aesop: Aesoperator, service: Service) -> None:
    result, _, _ = _run(aesop, {"provider": "arxiv", "base_url": service.url})
    assert result.data["sources"] == []
    assert "incorrect id format" in result.summary


def test_duckduckgo_redirects_decoded_ads_dropped(aesop: Aesoperator, service: Service) -> None:
    result, _, _ = _run(aesop, {"provider": "duckduckgo", "base_url": service.url})
    read = {p["url"] for p in result.data["pages_read"]}
    assert f"{service.url}/wiki/Quantum_error_correction" in read
    assert "/ad" not in service.paths()  # the ad's target is never read
    assert not any("duckduckgo.com" in u for u in read)


@pytest.mark.parametrize("service", [(WIKI_ROBOTS, "challenge")], indirect=True)
def test_duckduckgo_challenge_is_reported(aesop: Aesoperator, service: Service) -> None:
    result, events, _ = _run(aesop, {"provider": "duckduckgo", "base_url": service.url})
    assert "bot challenge (HTTP 202, anomaly-modal)" in result.summary
    assert "start_urls" in result.summary  # what to change
    assert events["research_bot_wall"].data["status"] == 202
    assert result.data["sources"] == []


@pytest.mark.parametrize("service", [(WIKI_ROBOTS, "walled")], indirect=True)
def test_bot_wall_reported_once_and_not_retried(
    aesop: Aesoperator, service: Service, site: Any
) -> None:
    # The walled site twice (its search, then its sitemap), a good start page beside it.
    search = [
        {"provider": "site", "base_url": service.url},
        {"provider": "sitemap", "base_url": service.url},
    ]
    result, _, timeline = _run(aesop, search, start_urls=[f"{site.url}/index.html"])
    walls = [e for e in timeline if e.kind == "research_bot_wall"]
    assert len(walls) == 1 and "Cloudflare" in walls[0].data["kind"]
    assert "discovery provider" in walls[0].data["fix"]
    assert [p for p in service.paths() if p != "/robots.txt"] == ["/search"]
    assert result.data["pages_read"]  # the other site is still read


@pytest.mark.parametrize("service", [(WIKI_ROBOTS, "walled")], indirect=True)
def test_every_provider_failing_is_the_summary(aesop: Aesoperator, service: Service) -> None:
    result, _, _ = _run(aesop, {"provider": "site", "base_url": service.url})
    assert result.summary.startswith("No sources found for 'quantum error correction'")
    assert "bot challenge" in result.summary and service.url.split("//")[1] in result.summary


SITEMAP_ROBOTS = WIKI_ROBOTS + "Sitemap: {base}/maps/index.xml\n"


def _sitemap_service() -> Service:
    svc = Service("")
    svc.server.robots = SITEMAP_ROBOTS.format(base=svc.url)  # type: ignore[attr-defined]
    return svc


def test_sitemap_index_gzip_children_and_lastmod(aesop: Aesoperator) -> None:
    svc = _sitemap_service()
    with running(svc.server):
        recent, _, _ = _run(
            aesop, {"provider": "sitemap", "base_url": svc.url}, start_date="2023-01-01"
        )
        assert "/maps/new.xml.gz" in svc.paths() and "/maps/old.xml.gz" not in svc.paths()
        read = {p["url"] for p in recent.data["pages_read"]}
        assert f"{svc.url}/pages/quantum-error-correction-2024" in read
        del svc.hits[:]
        everything, _, _ = _run(aesop, {"provider": "sitemap", "base_url": svc.url})
        assert svc.paths().index("/maps/new.xml.gz") < svc.paths().index("/maps/old.xml.gz")
        read = {p["url"] for p in everything.data["pages_read"]}
        assert f"{svc.url}/pages/quantum-error-correction-2019" in read  # Content-Encoding gzip


def test_gzip_sitemap_is_decompressed_bounded(aesop: Aesoperator) -> None:
    svc = _sitemap_service()
    robots = f"User-agent: *\nSitemap: {svc.url}/maps/bomb.xml.gz\n"
    svc.server.robots = robots  # type: ignore[attr-defined]
    with running(svc.server):
        result, _, timeline = _run(aesop, {"provider": "sitemap", "base_url": svc.url})
    assert "/maps/bomb.xml.gz" in svc.paths()
    errors = [e for e in timeline if e.kind == "research_discovered"]
    assert errors and errors[0].data["errors"] >= 1
    assert result.data is not None


def test_bot_wall_met_while_crawling_is_not_asked_again(aesop: Aesoperator) -> None:
    journal, site = Service(WIKI_ROBOTS, "walled"), Service(WIKI_ROBOTS)
    site.server.links = [f"{journal.url}/doi/10.1000/{i}" for i in range(5)]  # type: ignore[attr-defined]
    with running(journal.server), running(site.server):
        result, _, timeline = _run(aesop, [], workers=1, start_urls=[f"{site.url}/start"])
    walls = [e for e in timeline if e.kind == "research_bot_wall"]
    assert len(walls) == 1 and walls[0].data["host"] == journal.url.split("//")[1]
    # One page of the journal was asked for; its four other pages, queued, were skipped.
    assert len([p for p in journal.paths() if p.startswith("/doi/")]) == 1
    assert f"{site.url}/start" in {p["url"] for p in result.data["pages_read"]}


@pytest.mark.parametrize("service", [(WIKI_ROBOTS, "lagged")], indirect=True)
def test_wikipedia_maxlag_is_waited_once(aesop: Aesoperator, service: Service) -> None:
    result, events, _ = _run(aesop, {"provider": "wikipedia", "base_url": service.url})
    assert events["research_api_wait"].data["reason"] == "maxlag"
    assert len([p for p in service.paths() if p == "/w/api.php"]) == 2
    assert result.data["sources"]


@pytest.mark.parametrize("service", [(ARXIV_ROBOTS, "")], indirect=True)
def test_arxiv_requests_are_spaced(aesop: Aesoperator, service: Service) -> None:
    # Two queries (the topic, then topic + focus area): the second waits for its slot.
    _, _, timeline = _run(
        aesop, {"provider": "arxiv", "base_url": service.url}, pages=24, focus_areas=["decoding"]
    )
    assert len([p for p in service.paths() if p == "/api/query"]) == 2
    waits = [e for e in timeline if e.kind == "research_api_wait"]
    assert waits and waits[0].data["provider"] == "arxiv"
