"""Research throughput: pages read (fetched + main text extracted) per second.

Baseline: a Scrapy spider that follows every link of the same local demo site and runs
``trafilatura.extract`` in its callback (CONCURRENT_REQUESTS=8, stops at 200 pages).
Ours: the research skill (``max_pages=200``, ``concurrent_requests=8``) through the public API.
Both read the same generated demo site (>= 500 pages) served by a separate local process, and
both run in a fresh interpreter, so start-up and imports count for each. "crawl phase" excludes
interpreter start-up: Scrapy's CrawlerProcess run, our research skill's reading phase.

The site is served from memory by bench/_sites.py's asyncio server (the one the web crawl
bench uses), so the figures are the readers', not the server's; ``--server demo`` uses the demo
site's own threaded ``http.server`` instead, whose per-request cost then caps both.

``--site postgresql|django`` reads a real documentation site instead (installed from its Debian
package and served by nginx, bench/_docsites.py): both start from the site's index page, stay on
127.0.0.1, and stop at the same page cap; ours researches a topic the site covers. Rounds
alternate the two readers, so a loaded machine slows both alike. The two read different pages
(breadth-first vs best-first for the topic): HTML KB/page says how heavy each one's were.

    python bench/research_throughput.py [--pages 200] [--articles 540] [--rounds 1]
        [--server fast|demo] [--site generated|postgresql|django]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

_SPIDER = textwrap.dedent(
    """
    import json, sys, time
    import scrapy, trafilatura
    from scrapy.crawler import CrawlerProcess
    from scrapy.linkextractors import LinkExtractor

    start, limit, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    stats = {"pages": 0, "chars": 0, "bytes": 0, "first": None, "last": None}

    class Reader(scrapy.Spider):
        name = "reader"
        start_urls = [start]
        allowed_domains = ["127.0.0.1"]  # real sites link out: stay on the local copy
        links = LinkExtractor()

        def parse(self, response):
            if stats["pages"] >= limit:
                return
            text = trafilatura.extract(response.text, url=response.url) or ""
            stats["pages"] += 1
            stats["chars"] += len(text)
            stats["bytes"] += len(response.body)
            now = time.perf_counter()
            stats["first"] = stats["first"] or now
            stats["last"] = now
            for link in self.links.extract_links(response):
                yield response.follow(link.url, self.parse)

    t0 = time.perf_counter()
    process = CrawlerProcess(settings={
        "CONCURRENT_REQUESTS": 8, "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "CLOSESPIDER_PAGECOUNT": limit, "LOG_ENABLED": False, "ROBOTSTXT_OBEY": True,
        "TELNETCONSOLE_ENABLED": False, "COOKIES_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    })
    process.crawl(Reader)
    process.start()
    stats["wall"] = time.perf_counter() - t0
    json.dump(stats, open(out, "w"))
    """
)


def _children_cpu() -> float:
    """CPU seconds (user + system) of finished child processes, their own children included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_scrapy(start: str, pages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "spider.py"
        script.write_text(_SPIDER)
        out = Path(tmp) / "stats.json"
        t0, cpu0 = time.perf_counter(), _children_cpu()
        subprocess.run([sys.executable, str(script), start, str(pages), str(out)], check=True)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        stats = json.loads(out.read_text())
    kb = stats["bytes"] / 1024 / max(1, stats["pages"])
    return {"pages": stats["pages"], "wall": wall, "crawl": stats["wall"], "cpu": cpu, "kb": kb}


# What ours researches on each site: a topic the site covers, so the crawl is best-first as a
# user's would be (the generated site's topic is its own).
_TOPICS = {
    "generated": "renewable energy batteries",
    "postgresql": "full text search indexes",
    "django": "model form validation",
}


def _ours_child(start: str, pages: int, out: str, topic: str) -> None:
    """Run in a fresh interpreter, like the Scrapy baseline: imports and start-up count."""
    from aesoperator import Aesoperator, Task, TaskConfig

    with tempfile.TemporaryDirectory() as data_dir:
        aesop = Aesoperator(data_dir=data_dir, isolation="inline")
        task = Task(
            name="research_throughput",
            config=TaskConfig(
                max_pages=pages,
                concurrent_requests=8,
                allowed_domains=["127.0.0.1"],
                allow_private_network=True,
                max_duration_seconds=600,
            ),
            inputs={
                "topic": topic,
                "start_urls": [start],
                "max_results": 20,
            },
        )
        result = aesop.execute_task(task)
        read = next(e for e in aesop.get_events(result.execution_id) if e.kind == "research_read")
        urls = [p["url"] for p in result.data["pages_read"]]
        stats = {"pages": len(urls), "crawl": read.data["seconds"], "urls": urls}
        # The extraction processes outlive this run (they serve the next one) and are never
        # waited for, so getrusage in the parent would miss their CPU: count it here.
        import psutil

        helpers = psutil.Process().children(recursive=True)
        stats["helpers_cpu"] = sum(sum(p.cpu_times()[:2]) for p in helpers)
        aesop.close()
    Path(out).write_text(json.dumps(stats))


def run_ours(start: str, pages: int, topic: str, root: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stats.json"
        t0, cpu0 = time.perf_counter(), _children_cpu()
        cmd = [sys.executable, __file__, "--child", start, str(pages), str(out), topic]
        subprocess.run(cmd, check=True)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        stats = json.loads(out.read_text())
    # The extraction processes are not our children once the run ends: their CPU, counted in
    # the child, is added here (it was left out before, flattering our CPU per page).
    cpu += stats["helpers_cpu"]
    row = {"pages": stats["pages"], "wall": wall, "crawl": stats["crawl"], "cpu": cpu}
    if root is not None:  # a real site: the pages' size, from the files nginx served
        paths = [root / (urlsplit(u).path.lstrip("/") or "index.html") for u in stats["urls"]]
        row["kb"] = sum(p.stat().st_size for p in paths if p.is_file()) / 1024 / len(paths)
    return row


@contextlib.contextmanager
def _server(kind: str, root: Path) -> Iterator[str]:
    """The site's start URL, served from a separate process."""
    if kind == "demo":
        from demo_site.serve import DemoServerProcess

        with DemoServerProcess(root) as demo:
            yield demo.url + "/"
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from _sites import SiteServer

    with SiteServer(root) as fast:
        yield fast.url("/")


def _compare(start: str, pages: int, rounds: int, topic: str, root: Path | None) -> None:
    rows: dict[str, list[dict[str, float]]] = {"scrapy+trafilatura": [], "aesoperator": []}
    for _ in range(rounds):
        rows["scrapy+trafilatura"].append(run_scrapy(start, pages))
        rows["aesoperator"].append(run_ours(start, pages, topic, root))
    rates = {}
    for name, runs in rows.items():
        best = max(runs, key=lambda r: r["pages"] / r["wall"])
        rates[name] = best["pages"] / best["wall"]
        print(
            f"  {name:<20} {best['pages']:>4.0f} pages  wall {best['wall']:6.2f}s "
            f"-> {rates[name]:6.1f} pages/s  (crawl phase {best['crawl']:.2f}s: "
            f"{best['pages'] / best['crawl']:.1f} pages/s); CPU {best['cpu']:.2f}s "
            f"= {1000 * best['cpu'] / best['pages']:.1f} ms/page"
            + (f"; HTML {best['kb']:.0f} KB/page" if root is not None else "")
        )
        if len(runs) > 1:
            each = ", ".join(f"{r['pages'] / r['wall']:.1f}" for r in runs)
            cpus = ", ".join(f"{1000 * r['cpu'] / r['pages']:.1f}" for r in runs)
            print(f"  {'':<20} every round, pages/s: {each}; CPU ms/page: {cpus}")
    ratio = rates["aesoperator"] / rates["scrapy+trafilatura"]
    per_round = [
        o["pages"] / o["wall"] / (s["pages"] / s["wall"])
        for s, o in zip(rows["scrapy+trafilatura"], rows["aesoperator"], strict=True)
    ]
    print(
        f"ratio aesoperator / scrapy+trafilatura (whole task, wall clock): {ratio:.2f}x "
        f"(target >= 2.5x); per round {min(per_round):.2f}-{max(per_round):.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--articles", type=int, default=540)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--server",
        choices=["fast", "demo"],
        default="fast",
        help="fast: bench/_sites.py's in-memory asyncio server (default); demo: the demo "
        "site's own threaded http.server, whose per-request cost then dominates both",
    )
    parser.add_argument(
        "--site",
        choices=["generated", "postgresql", "django"],
        default="generated",
        help="generated: the demo site built for the run (default); postgresql/django: the "
        "real documentation served by nginx from its Debian package, from its index page",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        _ours_child(opts.child[0], int(opts.child[1]), opts.child[2], opts.child[3])
        return 0
    with contextlib.ExitStack() as stack:
        if opts.site == "generated":
            from demo_site.generate import build_site

            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            manifest = build_site(tmp / "site", articles=opts.articles)
            start = stack.enter_context(_server(opts.server, tmp / "site"))
            what = f"demo site: {manifest['pages']} pages ({opts.server} server)"
            root = None
        else:
            sys.path.insert(0, str(ROOT / "bench"))
            from _docsites import DocSite

            served = stack.enter_context(DocSite(opts.site))
            start = served.url("index.html")
            what = f"{opts.site} documentation (nginx), from {start}"
            root = served.spec.root
        print(f"{what}; reading {opts.pages} with concurrency 8; {os.cpu_count()} CPUs")
        _compare(start, opts.pages, opts.rounds, _TOPICS[opts.site], root)
    print(
        "CPU ms/page include interpreter start-up and, for both, everything but the site's "
        "server. On a loaded machine wall-clock ratios swing; CPU per page does not."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
