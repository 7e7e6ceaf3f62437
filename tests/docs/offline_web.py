"""A small stand-in for the public web, so that TASKS.md's snippets run as written, offline.

It answers on 127.0.0.1 ports 80 and 443 (TLS with a certificate from a local test CA that
names every host below) and routes by the ``Host`` header: Wikipedia's search API and
articles, arXiv's query API and abstracts, nature.com (search, a sitemap index with gzip
children, articles), science.org, DuckDuckGo's HTML results, and example.com for monitoring.
The client side maps these names to 127.0.0.1 with ``AESOP_TRUSTED_HOSTS`` and trusts the CA
with ``SSL_CERT_FILE``.

Each service behaves as the real one does where that decides whether a client works: the
robots.txt rules of Wikipedia (``Disallow: /w/``) and export.arxiv.org (``Disallow: /``);
arXiv's Atom feed with ``http://arxiv.org/abs/...`` links, its ``submittedDate`` ranges, its
error entries and (``Stats.arxiv_rate_limited``) its ``Rate exceeded.``; DuckDuckGo's redirect
links, an ad, and (``Stats.ddg_challenge``) its HTTP 202 bot challenge; science.org behind a
Cloudflare challenge, as a journal site often is to an automated client.

The article texts are written for these tests.
"""

from __future__ import annotations

import errno
import gzip
import json
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from html import escape
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import trustme

from serving import QuietHandler, default_ports, running

HOSTS = (
    "wikipedia.org", "en.wikipedia.org", "arxiv.org", "export.arxiv.org", "nature.com",
    "www.nature.com", "science.org", "www.science.org", "duckduckgo.com",
    "html.duckduckgo.com", "example.com", "www.example.com",
)  # fmt: skip

AI = {
    "Artificial_intelligence": (
        "2024-03-02",
        "Artificial intelligence is the study of computer systems that perform tasks which "
        "normally need human intelligence, such as perception, reasoning and language. Modern "
        "artificial intelligence relies on machine learning, where models learn patterns from "
        "data instead of following hand-written rules. Deep neural networks trained on large "
        "datasets now translate text, recognise images and write program code. Research on "
        "artificial intelligence also studies planning, search and knowledge representation. "
        "Critics point out that large models can be confidently wrong and hard to audit.",
    ),
    "Machine_learning": (
        "2023-11-20",
        "Machine learning is the part of artificial intelligence in which algorithms improve "
        "with experience. Supervised learning fits a model to labelled examples, while "
        "reinforcement learning lets an agent learn from rewards. Gradient descent is the "
        "workhorse algorithm for training neural networks on specialised hardware such as GPUs. "
        "The technical challenge is generalisation: a model must work on data it has not seen.",
    ),
    "Transformer_(machine_learning)": (
        "2024-06-14",
        "The transformer is a neural network architecture built on the attention mechanism. "
        "Transformers process whole sequences in parallel, which made training large language "
        "models practical on modern accelerator hardware. Attention lets each token weigh every "
        "other token, and its cost grows with the square of the sequence length. Efficient "
        "attention algorithms reduce that cost for long documents.",
    ),
}
QC = {
    "quantum-error-correction-milestone": (
        "2024-08-12",
        "Quantum error correction reached a milestone when a surface code memory kept a "
        "logical qubit alive longer than its best physical qubit. The result shows that quantum "
        "computing hardware can cross the threshold where adding qubits lowers the error rate. "
        "Decoding algorithms now run in real time beside the processor.",
    ),
    "neutral-atom-processors": (
        "2024-02-27",
        "Neutral-atom processors trap hundreds of atoms with laser tweezers and entangle them "
        "with Rydberg interactions. This quantum hardware can move qubits during a computation, "
        "which suits error-correcting codes that need long-range connections. Coherence times "
        "of several seconds make the approach attractive for quantum computing at scale.",
    ),
    "variational-algorithms-review": (
        "2023-05-09",
        "Variational quantum algorithms pair a small quantum circuit with a classical "
        "optimiser. They were proposed for chemistry and optimisation on noisy hardware, but "
        "barren plateaus make the training of large circuits hard. Newer algorithms use "
        "problem structure to keep gradients large enough to learn from.",
    ),
    "quantum-advantage-sampling": (
        "2023-09-30",
        "Random circuit sampling experiments claim a quantum advantage: the quantum computer "
        "finishes in minutes a task that classical algorithms need far longer to simulate. "
        "Improved classical simulation algorithms keep narrowing that gap, so each claim of "
        "advantage invites new classical methods.",
    ),
}


@dataclass
class Stats:
    hits: list[tuple[str, str]] = field(default_factory=list)  # (host, path)
    slow_hosts: dict[str, float] = field(default_factory=dict)
    ddg_challenge: bool = False
    arxiv_rate_limited: bool = False

    def count(self, host: str) -> int:
        return sum(1 for h, _ in self.hits if h == host)


def _page(title: str, date: str, text: str, links: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    nav = "".join(f'<li><a href="{escape(u)}">{escape(t)}</a></li>' for u, t in links)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><meta name='date' content='{date}'>"
        f"<meta property='article:published_time' content='{date}'></head><body>"
        f"<header><a href='/'>Home</a></header><main><article><h1>{escape(title)}</h1>"
        f"<time datetime='{date}'>{date}</time><p>{escape(text)}</p></article>"
        f"<ul>{nav}</ul></main><footer>Test site</footer></body></html>"
    )


WIKI_ROBOTS = (
    "User-agent: *\nAllow: /w/api.php?action=mobileview&\nAllow: /w/load.php?\n"
    "Disallow: /w/\nDisallow: /api/\nDisallow: /wiki/Special:\n"
)  # reduced from en.wikipedia.org/robots.txt
CHALLENGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    "<div id='cf-chl-widget'>Verifying you are human.</div>"
    "<script src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1'></script>"
    "</body></html>"
)
DDG_CHALLENGE = (
    "<html><body><form class='anomaly-modal'><div class='anomaly-modal__title'>Unfortunately, "
    "bots use DuckDuckGo too.</div></form></body></html>"
)
ARXIV_ERROR = (
    '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry>'
    "<id>http://arxiv.org/api/errors#query_is_empty</id><title>Error</title>"
    "<summary>query is empty</summary></entry></feed>"
)


def _robots(host: str, scheme: str) -> str:
    if host.endswith("wikipedia.org"):
        return WIKI_ROBOTS
    if host == "export.arxiv.org":
        return "User-agent: *\nDisallow: /\n"
    if host.removeprefix("www.") == "nature.com":
        return f"User-agent: *\nAllow: /\nSitemap: {scheme}://{host}/sitemap.xml\n"
    return "User-agent: *\nAllow: /\n"


class _Handler(QuietHandler):
    server_version = "offline-web/1"
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        stats: Stats = self.server.stats  # type: ignore[attr-defined]
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        stats.hits.append((host, self.path))
        delay = stats.slow_hosts.get(host)
        if delay:
            time.sleep(delay)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        site = host.removeprefix("www.")
        if path == "/robots.txt":
            return self.reply(200, _robots(host, scheme), "text/plain")
        if site == "science.org":
            return self.reply(403, CHALLENGE, extra={"cf-mitigated": "challenge"})
        if site.endswith("wikipedia.org"):
            return self._wikipedia(path, query, scheme, host)
        if site.endswith("arxiv.org"):
            return self._arxiv(path, query, host)
        if site in ("nature.com", "science.org"):
            return self._journal(path, scheme, host)
        if site.endswith("duckduckgo.com"):
            if stats.ddg_challenge:
                return self.reply(202, DDG_CHALLENGE)
            ad = "https://duckduckgo.com/y.js?ad_domain=ads.example&amp;ad_provider=bingv7aa"
            links = "".join(
                f'<div class="result"><a class="result__a" href="//duckduckgo.com/l/?uddg='
                f'{quote(f"https://www.nature.com/articles/{slug}", safe="")}&amp;rut=9b1c">'
                f"{escape(slug.replace('-', ' '))}</a></div>"
                for slug in QC
            )
            ads = f'<div class="result result--ad"><a class="result__a" href="{ad}">Ad</a></div>'
            return self.reply(200, f"<html><body>{ads}{links}</body></html>")
        if site == "example.com":
            return self.reply(200, _page("Example Domain", "2024-01-01", "Example page."))
        return self.reply(404, "<h1>Not found</h1>")

    def _wikipedia(self, path: str, query: dict[str, list[str]], scheme: str, host: str) -> None:
        if path == "/w/api.php":
            words = query.get("srsearch", [""])[0].lower().split()
            hits = [
                {"title": t.replace("_", " ")}
                for t, (_, text) in AI.items()
                if any(w in text.lower() for w in words)
            ]
            return self.reply(200, json.dumps({"query": {"search": hits}}), "application/json")
        if path.startswith("/wiki/"):
            title = path.removeprefix("/wiki/")
            for key, (date, text) in AI.items():
                if quote(key) == title or key == title.replace(" ", "_"):
                    links = [(f"/wiki/{quote(k)}", k.replace("_", " ")) for k in AI if k != key]
                    return self.reply(200, _page(key.replace("_", " "), date, text, links))
        if path == "/":
            links = "".join(f'<a href="/wiki/{quote(k)}">{k}</a> ' for k in AI)
            return self.reply(200, f"<html><body>{links}</body></html>")
        return self.reply(404, "<h1>Not found</h1>")

    def _arxiv(self, path: str, query: dict[str, list[str]], host: str) -> None:
        stats: Stats = self.server.stats  # type: ignore[attr-defined]
        if path == "/api/query":
            if stats.arxiv_rate_limited:
                return self.reply(503, "Rate exceeded.", "text/plain")
            search = query.get("search_query", [""])[0]
            if not search:
                return self.reply(400, ARXIV_ERROR, "application/atom+xml")
            since = re.search(r"submittedDate:\[(\d{8})", search)
            papers = [
                (i, slug, date, text)
                for i, (slug, (date, text)) in enumerate(QC.items())
                if since is None or date.replace("-", "") >= since.group(1)
            ]
            entries = "".join(
                f"<entry><id>http://arxiv.org/abs/24{i:02d}.0000{i}v1</id>"
                f"<published>{date}T00:00:00Z</published><title>{escape(slug)}</title>"
                f"<summary>{escape(text)}</summary>"
                f'<link href="http://arxiv.org/abs/24{i:02d}.0000{i}v1" rel="alternate" '
                'type="text/html"/>'
                f'<link title="pdf" href="http://arxiv.org/pdf/24{i:02d}.0000{i}v1" '
                'rel="related" type="application/pdf"/></entry>'
                for i, slug, date, text in papers
            )
            feed = (
                f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">{entries}</feed>'
            )
            return self.reply(200, feed, "application/atom+xml")
        if path.startswith("/abs/"):
            i = int(path[-3]) if path[-3].isdigit() else 0
            slug, (date, text) = list(QC.items())[i % len(QC)]
            return self.reply(200, _page(slug.replace("-", " "), date, text))
        return self.reply(404, "<h1>Not found</h1>")

    def _journal(self, path: str, scheme: str, host: str) -> None:
        base = f"{scheme}://{host}"
        if path == "/sitemap.xml":  # an index of gzip children, by year
            years = sorted({date[:4] for date, _ in QC.values()})
            maps = "".join(
                f"<sitemap><loc>{base}/sitemap/{y}.xml.gz</loc><lastmod>{y}-12-31</lastmod>"
                "</sitemap>"
                for y in years
            )
            return self.reply(200, f"<sitemapindex>{maps}</sitemapindex>", "application/xml")
        if path.startswith("/sitemap/") and path.endswith(".xml.gz"):
            year = path.removeprefix("/sitemap/")[:4]
            locs = "".join(
                f"<url><loc>{base}/articles/{s}</loc><lastmod>{d}</lastmod></url>"
                for s, (d, _) in QC.items()
                if d.startswith(year)
            )
            body = gzip.compress(f"<urlset>{locs}</urlset>".encode())
            return self.reply(200, body, "application/gzip")
        if path.startswith("/articles/"):
            slug = path.removeprefix("/articles/")
            if slug in QC:
                date, text = QC[slug]
                links = [(f"/articles/{s}", s.replace("-", " ")) for s in QC if s != slug]
                return self.reply(200, _page(slug.replace("-", " ").title(), date, text, links))
        if path in ("/", "/search"):
            links = "".join(f'<a href="/articles/{s}">{s.replace("-", " ")}</a> ' for s in QC)
            return self.reply(200, f"<html><body><h1>{host}</h1>{links}</body></html>")
        return self.reply(404, "<h1>Not found</h1>")


@dataclass
class OfflineWeb:
    stats: Stats
    env: dict[str, str]


@contextmanager
def offline_web(tmp: Path) -> Iterator[OfflineWeb]:
    """Serve the stand-in web on 127.0.0.1:80 and :443; yield the client environment.

    One at a time on this machine (a file lock): the ports are fixed, and the tests that use
    it (TASKS.md, the docs' pages) may run at once in parallel test workers.
    """
    with default_ports(), _serving(tmp) as web:
        yield web


def _bind(port: int, patience: float = 60) -> ThreadingHTTPServer:
    """The server on 127.0.0.1:``port``; a port still held (by another checkout's test run on
    this machine, say) is waited for, up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def _serving(tmp: Path) -> Iterator[OfflineWeb]:
    ca = trustme.CA()
    cert = ca.issue_cert(*HOSTS)
    ca_file = tmp / "offline-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    stats = Stats()
    with ExitStack() as servers:
        for port, tls in ((80, False), (443, True)):
            server = _bind(port)
            server.daemon_threads = True
            server.stats = stats  # type: ignore[attr-defined]
            if tls:
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                cert.configure_cert(ctx)
                server.socket = ctx.wrap_socket(server.socket, server_side=True)
            servers.enter_context(running(server))
        env = {
            "AESOP_TRUSTED_HOSTS": ",".join(f"{h}=127.0.0.1" for h in HOSTS),
            "SSL_CERT_FILE": str(ca_file),
        }
        yield OfflineWeb(stats, env)
