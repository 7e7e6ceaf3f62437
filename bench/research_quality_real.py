"""Research quality on real documentation sites: the yardstick for the research skill.

Two sites installed from Debian packages and served by nginx on 127.0.0.1 (bench/_docsites.py
installs and starts what is missing): the PostgreSQL 15 manual (DocBook) and the Django docs
(Sphinx). ``bench/research_labels.json`` lists, for 30 everyday developer topics per site, the
pages a practitioner would accept as sources, each with its reason (read from the HTML).

Every topic runs the research skill through the public API, as a new user would: the site's
index page as the only start URL, ``max_pages=40``, one client, topics one after another. Per
site and overall it prints:

- precision@1: the first cited source is an accepted page (no source cited: a miss);
- precision: accepted pages among all cited sources (pooled);
- recall: accepted pages that were cited, per topic, averaged;
- fragment rate: summary and finding sentences that are not whole sentences (start
  mid-sentence, carry table pipes or code, fewer than four words, no sentence end);
- pages read per second (pages read / task duration, pooled);

then the worst topics and examples of fragments.

    python bench/research_quality_real.py [--site postgresql|django|both] [--topics N]
        [--skip N] [--max-pages 40] [--timeout 120] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _docsites import DocSite
from _quality_metrics import TopicScore, Totals, score_topic, site_path, totals

LABELS = Path(__file__).resolve().parent / "research_labels.json"


def _run_site(
    aesop: Any, name: str, site: dict[str, Any], opts: argparse.Namespace
) -> list[TopicScore]:
    from aesoperator import Task, TaskConfig

    topics = site["topics"][opts.skip :]
    topics = topics[: opts.topics] if opts.topics else topics
    scores: list[TopicScore] = []
    with DocSite(name) as served:  # installs the package first when missing
        missing = [
            a["path"]
            for t in topics
            for a in t["accept"]
            if not (served.spec.root / a["path"]).is_file()
        ]
        if missing:
            print(f"  warning: {len(missing)} labelled pages not on disk: {missing[:5]}")
        start = served.url(site["index"])
        print(f"\n{name}: {len(topics)} topics, start URL {start}")
        for i, label in enumerate(topics):
            accepted = [a["path"] for a in label["accept"]]
            task = Task(
                name=f"research_real_{name}_{i}",
                inputs={"topic": label["topic"], "start_urls": [start]},
                config=TaskConfig(
                    max_pages=opts.max_pages,
                    max_duration_seconds=opts.timeout,
                    allow_private_network=True,
                    allowed_domains=["127.0.0.1"],
                ),
            )
            t0 = time.perf_counter()
            try:
                result = aesop.execute_task(task, timeout=opts.timeout + 30)
            except Exception as exc:  # a failed topic scores zero, the run goes on
                score = score_topic(label["topic"], accepted, None)
                score.seconds = time.perf_counter() - t0
                score.error = f"{type(exc).__name__}: {exc}"[:200]
            else:
                data = result.data if isinstance(result.data, dict) else {}
                pages = data.get("pages_read")
                read = len(pages) if isinstance(pages, list) else result.pages_visited
                urls = [
                    str(p.get("url", "")) if isinstance(p, dict) else str(p) for p in pages or []
                ]
                score = score_topic(
                    label["topic"],
                    accepted,
                    result.data,
                    result.content,
                    pages=read,
                    seconds=result.duration_seconds or (time.perf_counter() - t0),
                )
                score.read = [site_path(u) for u in urls if u]
            scores.append(score)
            first = score.cited[0] if score.cited else "-"
            print(
                f"  {score.topic[:38]:<38} p@1 {'y' if score.first_ok else 'n'}  "
                f"prec {score.relevant}/{len(score.cited)}  recall {score.recall:.2f}  "
                f"frag {len(score.fragments)}/{len(score.sentences)}  "
                f"{score.pages} pages (read {score.read_accepted}/{len(accepted)} accepted) "
                f"{score.seconds:.1f}s  first={first}"
                + (f"  ERROR {score.error}" if score.error else "")
            )
    return scores


def _line(label: str, t: Totals) -> str:
    return (
        f"{label:<11} topics {t.topics:>2}  p@1 {t.p_at_1:.3f}  precision {t.precision:.3f} "
        f"({t.cited} cited)  recall {t.recall:.3f}  fragments {t.fragment_rate:.3f} "
        f"({t.sentences} sentences)  no source {t.empty}  {t.pages_per_second:.1f} pages/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", choices=["postgresql", "django", "both"], default="both")
    parser.add_argument("--topics", type=int, default=0, help="first N topics per site (0: all)")
    parser.add_argument("--skip", type=int, default=0, help="skip the first N topics per site")
    parser.add_argument("--max-pages", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per topic")
    parser.add_argument("--worst", type=int, default=8)
    parser.add_argument("--json", help="write every topic's scores and the totals here")
    opts = parser.parse_args()

    from aesoperator import Aesoperator

    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    names = ["postgresql", "django"] if opts.site == "both" else [opts.site]
    per_site: dict[str, list[TopicScore]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        aesop = Aesoperator(data_dir=str(Path(tmp) / "data"))
        try:
            for name in names:
                per_site[name] = _run_site(aesop, name, labels["sites"][name], opts)
        finally:
            aesop.close()

    everything = [s for scores in per_site.values() for s in scores]
    print()
    for name, scores in per_site.items():
        print(_line(name, totals(scores)))
    if len(per_site) > 1:
        print(_line("overall", totals(everything)))

    worst = sorted(everything, key=lambda s: (s.first_ok, s.precision, s.recall))[: opts.worst]
    print("\nworst topics (first cited source, cited sources):")
    for s in worst:
        print(f"  {s.topic!r}: p@1 {'y' if s.first_ok else 'n'}, precision {s.precision:.2f}")
        print(f"      cited {s.cited[:6]}")
        print(f"      accepted {s.accepted}")
    fragments = [(s.topic, f) for s in everything for f in s.fragments]
    if fragments:
        print("\nfragments (first 12):")
        for topic, (sentence, reasons) in fragments[:12]:
            print(f"  [{','.join(reasons)}] {sentence[:110]!r}  ({topic})")
    if opts.json:
        out = {
            "max_pages": opts.max_pages,
            "sites": {
                name: {
                    "totals": asdict(totals(scores)),
                    "topics": [
                        {**asdict(s), "precision": s.precision, "recall": s.recall} for s in scores
                    ],
                }
                for name, scores in per_site.items()
            },
            "overall": asdict(totals(everything)),
        }
        Path(opts.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
