"""Research quality: precision of the report's cited sources on a labelled set.

The labelled set is the generated demo site (seed 7, 540 articles): its manifest records the
topic and focus area of every article, i.e. the pages a good researcher would cite for each
query below. For every query the research skill runs through the public API
(``max_pages=40``, site search); we count cited sources whose label matches the query's topic
(and, for focus-area sections, passages whose source matches the section's area).

    python bench/research_quality.py [--max-pages 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

# (topic, focus areas, label topic, label area or None, {focus area: label area})
QUERIES: list[tuple[str, list[str], str, str | None, dict[str, str]]] = [
    ("quantum computing", [], "quantum-computing", None, {}),
    (
        "quantum computing",
        ["error correction", "hardware"],
        "quantum-computing",
        None,
        {"error correction": "error-correction", "hardware": "hardware"},
    ),
    ("climate science", [], "climate-science", None, {}),
    (
        "climate",
        ["sea level", "extreme weather"],
        "climate-science",
        None,
        {"sea level": "sea-level", "extreme weather": "extreme-weather"},
    ),
    (
        "machine learning",
        ["language models", "hardware"],
        "machine-learning",
        None,
        {"language models": "language-models", "hardware": "hardware"},
    ),
    (
        "genomics",
        ["gene editing", "sequencing"],
        "genomics",
        None,
        {"gene editing": "gene-editing", "sequencing": "sequencing"},
    ),
    (
        "renewable energy",
        ["batteries", "wind"],
        "renewable-energy",
        None,
        {"batteries": "batteries", "wind": "wind"},
    ),
    (
        "space exploration",
        ["telescopes", "exoplanets"],
        "space-exploration",
        None,
        {"telescopes": "telescopes", "exoplanets": "exoplanets"},
    ),
    # Ambiguous queries: their words also belong to other topics' pages.
    ("storing carbon dioxide underground", [], "climate-science", "carbon-capture", {}),
    ("chips for neural network training", [], "machine-learning", "hardware", {}),
    ("cost of sequencing a genome", [], "genomics", "sequencing", {}),
    ("water vapour in planet atmospheres", [], "space-exploration", "exoplanets", {}),
]


def _search_results(base: str, query: str) -> list[str]:
    import re
    import urllib.parse
    import urllib.request

    url = f"{base}/search?q={urllib.parse.quote_plus(query)}"
    with urllib.request.urlopen(url) as resp:
        html = resp.read().decode("utf-8")
    return re.findall(r'<li><a href="(/articles/[^"]+)"', html)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-pages", type=int, default=40)
    opts = parser.parse_args()
    from demo_site.generate import build_site
    from demo_site.serve import DemoServer

    from aesoperator import Aesoperator, Task, TaskConfig

    with tempfile.TemporaryDirectory() as tmp:
        manifest = build_site(Path(tmp) / "site", articles=540, seed=7)
        labels: dict[str, dict[str, Any]] = {a["path"]: a for a in manifest["articles"]}  # type: ignore[index,union-attr]
        relevant = sum(1 for a in labels.values() if any(a["topic"] == q[2] for q in QUERIES))
        print(
            f"labelled set: {len(QUERIES)} queries over {len(labels)} labelled articles "
            f"({manifest['pages']} pages; {relevant} relevant to at least one query)"
        )
        cited = good = sec_total = sec_good = 0
        base_total = base_good = 0
        with DemoServer(Path(tmp) / "site") as server:
            aesop = Aesoperator(data_dir=str(Path(tmp) / "data"), isolation="inline")
            try:
                for i, (topic, focus, label, area, areas) in enumerate(QUERIES):
                    result = aesop.execute_task(
                        Task(
                            name=f"research_quality_{i}",
                            config=TaskConfig(
                                max_pages=opts.max_pages,
                                concurrent_requests=8,
                                allowed_domains=["127.0.0.1"],
                                allow_private_network=True,
                            ),
                            inputs={
                                "topic": topic,
                                "focus_areas": focus,
                                "search": {"provider": "site", "base_url": server.url},
                            },
                        )
                    )
                    path = {
                        s["url"]: "/" + s["url"].split("/", 3)[3] for s in result.data["sources"]
                    }
                    hits = [
                        labels.get(p, {}).get("topic") == label
                        and (area is None or labels[p]["area"] == area)
                        for p in path.values()
                    ]
                    # Baseline: the site's own search, first results as many as we cited.
                    top = _search_results(server.url, topic)[: max(1, len(hits))]
                    base_total += len(top)
                    base_good += sum(
                        labels.get(p, {}).get("topic") == label
                        and (area is None or labels[p]["area"] == area)
                        for p in top
                    )
                    cited += len(hits)
                    good += sum(hits)
                    s_good = s_total = 0
                    for passage in result.data["passages"]:
                        want = areas.get(passage["section"])
                        if want is None:
                            continue
                        s_total += 1
                        s_good += labels.get(path[passage["url"]], {}).get("area") == want
                    sec_total += s_total
                    sec_good += s_good
                    print(
                        f"  {topic!r:<22} {focus!s:<40} cited {len(hits):>2}, on topic "
                        f"{sum(hits):>2}; focus passages {s_good}/{s_total}"
                    )
            finally:
                aesop.close()
        print(
            f"precision of cited sources: {good / max(1, cited):.3f} ({good}/{cited} sources, "
            f"{len(QUERIES)} queries)"
        )
        print(
            f"baseline, the site's own search (same number of results): "
            f"{base_good / max(1, base_total):.3f} ({base_good}/{base_total})"
        )
        print(
            f"focus-area passage precision: {sec_good / max(1, sec_total):.3f} "
            f"({sec_good}/{sec_total} passages)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
