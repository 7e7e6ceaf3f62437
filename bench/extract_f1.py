"""Main-text extraction quality: word-shingle F1 on the public article-extraction benchmark.

Scores our ``extract_page`` and plain ``trafilatura.extract`` (defaults) in the same run,
the way the benchmark's published figures are computed (see its README): lower-cased word
tokens, 4-word shingles, precision and recall averaged over pages, F1 of the averages.

    python bench/extract_f1.py [--data DIR] [--limit N]

DIR defaults to $AESOP_EXTRACTION_BENCH or ../shared/benchmarks/article-extraction.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_TOKEN = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text.lower())
    return Counter(tuple(tokens[i : i + n]) for i in range(max(0, len(tokens) - n + 1)))


def precision_recall(expected: str, got: str) -> tuple[float, float]:
    exp, ext = shingles(expected), shingles(got)
    if not exp and not ext:
        return 1.0, 1.0
    tp = sum((exp & ext).values())
    fp = sum(ext.values()) - tp
    fn = sum(exp.values()) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall


def _ours(html: bytes, url: str) -> str:
    from aesoperator.web.extract import extract_page

    return extract_page(html, url, "text/html").text


def _trafilatura(html: bytes, url: str) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url) or ""


EXTRACTORS: dict[str, Callable[[bytes, str], str]] = {
    "aesoperator": _ours,
    "trafilatura (plain)": _trafilatura,
}


def _warm() -> None:
    # Imports and first-call set-up are not extraction time.
    for fn in EXTRACTORS.values():
        fn(b"<html><body><p>warm up</p></body></html>", "http://example.org/")


def _score_one(args: tuple[str, str, str, str]) -> tuple[float, float, float]:
    name, path, url, expected = args
    html = gzip.decompress(Path(path).read_bytes())
    start = time.perf_counter()
    got = EXTRACTORS[name](html, url)
    elapsed = time.perf_counter() - start
    p, r = precision_recall(expected, got)
    return p, r, elapsed


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    default = os.environ.get(
        "AESOP_EXTRACTION_BENCH", str(here.parent / "shared" / "benchmarks" / "article-extraction")
    )
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=default)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    opts = parser.parse_args()
    data = Path(opts.data)
    truth_file = data / "ground-truth.json"
    if not truth_file.exists():
        print(f"benchmark data not found: {truth_file} (set --data or AESOP_EXTRACTION_BENCH)")
        return 2
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    items = sorted(truth.items())
    if opts.limit:
        items = items[: opts.limit]
    print(f"article-extraction benchmark: {len(items)} pages")
    results: dict[str, float] = {}
    with ProcessPoolExecutor(max_workers=opts.workers, initializer=_warm) as pool:
        for name in EXTRACTORS:
            jobs = [
                (name, str(data / "html" / f"{key}.html.gz"), v.get("url", ""), v["articleBody"])
                for key, v in items
            ]
            scores = list(pool.map(_score_one, jobs, chunksize=4))
            precision = sum(s[0] for s in scores) / len(scores)
            recall = sum(s[1] for s in scores) / len(scores)
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            cpu = sum(s[2] for s in scores)
            results[name] = f1
            print(
                f"  {name:<22} F1 {f1:.3f}  precision {precision:.3f}  recall {recall:.3f}  "
                f"({cpu / len(scores) * 1000:.0f} ms/page)"
            )
    ours, base = results["aesoperator"], results["trafilatura (plain)"]
    print(f"ratio aesoperator / trafilatura: {ours / base:.3f}  (target F1 >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
