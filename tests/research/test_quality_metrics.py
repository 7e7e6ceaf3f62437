"""The real-site quality bench's metrics: fragment detector, cited-source parsing, precision.

The bench itself needs the Debian doc packages; its metric functions do not, so they are
checked here on sentences of the kinds the bench met on the real sites.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "_quality_metrics.py"
    spec = importlib.util.spec_from_file_location("bench_quality_metrics", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


m = _load()


@pytest.mark.parametrize(
    "sentence",
    [
        "CREATE INDEX CONCURRENTLY builds the index without locking out writes.",
        "The json and jsonb data types accept almost identical sets of values as input.",
        "pg_dump is a utility for backing up a PostgreSQL database.",
        "os.path.join() joins one or more path segments [3].",
        'Django calls it "the ORM".',
        "Is this a question?",
        "Middleware is a framework of hooks into request/response processing (see below).",
    ],
)
def test_whole_sentences_are_not_fragments(sentence: str) -> None:
    assert m.fragment_reasons(sentence) == []


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("| | tomllib | Parse TOML files.", "table"),
        ("of the UID. data must be in the range 0 to 255.", "mid-sentence"),
        ("and group names in regular expressions.", "mid-sentence"),
        ("And the index is then rebuilt from scratch.", "mid-sentence"),
        ("Of the two forms, the second one is preferred.", "mid-sentence"),
        ("Returns the value.", "short"),
        ("This option is described in the section below", "no-end"),
        ("For example, to create the table run the following:", "no-end"),
        ("CREATE TABLE t (id integer PRIMARY KEY, name text);", "code"),
        ("expression ::= term | expression '+' term.", "code"),
        (">>> Article.objects.filter(pub_date__year=2006) returns a QuerySet.", "code"),
        ("class Meta: {\n ordering = ['name'] }", "code"),
    ],
)
def test_fragments_are_caught_with_their_reason(sentence: str, reason: str) -> None:
    assert reason in m.fragment_reasons(sentence)


def test_site_path_drops_host_query_and_fragment() -> None:
    assert m.site_path("http://127.0.0.1:8601/sql-createindex.html#X") == "sql-createindex.html"
    assert m.site_path("http://127.0.0.1:8602/topics/cache.html?x=1") == "topics/cache.html"
    assert m.site_path("http://127.0.0.1:8602/topics/") == "topics/index.html"
    assert m.site_path("http://127.0.0.1:8602") == "index.html"


def test_cited_sources_follow_citation_numbers_from_data_or_markdown() -> None:
    data = {"sources": [{"n": 2, "url": "http://h/b.html"}, {"n": 1, "url": "http://h/a.html"}]}
    assert m.cited_sources(data) == ["http://h/a.html", "http://h/b.html"]
    markdown = (
        "# Research: x\n\n## Summary\n\nOne. [1]\n\n## Sources\n\n"
        "1. [A](http://h/a.html) — undated\n2. [B](http://h/b.html) — 2024-01-01\n"
    )
    assert m.cited_sources(None, markdown) == ["http://h/a.html", "http://h/b.html"]


def test_report_sentences_from_markdown_when_data_has_no_passages() -> None:
    markdown = (
        "# Research: x\n\n_3 pages read._\n\n## Summary\n\n"
        "First whole sentence here. [1] and a cut one here. [2]\n\n"
        "## Findings\n\n### Index\n\n- A finding sentence with words. [1]\n"
        "- No finding on this in the sources read.\n\n## Sources\n\n1. [A](http://h/a.html)\n"
    )
    assert m.report_sentences({}, markdown) == [
        "First whole sentence here.",
        "and a cut one here.",
        "A finding sentence with words.",
    ]


def test_scores_precision_at_one_precision_recall_and_fragment_rate() -> None:
    good = m.score_topic(
        "window functions",
        ["tutorial-window.html", "functions-window.html"],
        {
            "sources": [
                {"n": 1, "url": "http://h/tutorial-window.html"},
                {"n": 2, "url": "http://h/sql-createindex.html"},
            ],
            "passages": [
                {"text": "A window function performs a calculation across a set of rows."},
                {"text": "| row_number () → bigint"},
            ],
        },
        pages=40,
        seconds=4.0,
    )
    assert good.first_ok and good.relevant == 1
    assert good.precision == 0.5 and good.recall == 0.5
    assert [r for _, r in good.fragments] == [["table", "no-end"]]
    empty = m.score_topic("vacuum", ["routine-vacuuming.html"], {"sources": [], "passages": []})
    assert not empty.first_ok and empty.precision == 0.0
    t = m.totals([good, empty])
    assert t.p_at_1 == 0.5 and t.precision == 0.5 and t.recall == 0.25
    assert t.fragment_rate == 0.5 and t.empty == 1 and t.pages_per_second == 10.0
