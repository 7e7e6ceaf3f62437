"""The summarize skill through the public API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.errors import ValidationError
from aesoperator.text.sentences import split_sentences
from aesoperator.text.units import is_whole_sentence
from serving import QuietHandler, running

_WS = re.compile(r"\s+")
ARTICLE = (
    "Wind turbines convert the kinetic energy of moving air into electricity. Offshore wind "
    "farms produce steadier power because winds at sea are stronger. Larger blades capture more "
    "energy per turbine and cut the cost of wind power. Grid operators use forecasts to schedule "
    "wind power a day ahead. Critics point to the visual impact of turbines near coasts. "
    "Floating foundations open deep waters where fixed foundations are impossible."
)


@pytest.fixture(scope="module")
def aesop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aesoperator]:
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("aesop-summ"), isolation="inline")
    yield client
    client.close()


# A reference page: its table, code and hard-wrapped paragraphs must not leak into a summary.
REFERENCE = """<html><head><title>Numeric Types</title></head><body>
<div class="navheader"><a href="/prev.html">Prev</a> <a href="/next.html">Next</a></div>
<div class="sect1"><h2>8.1. Numeric Types</h2>
<p>Numeric types consist of two-, four-, and eight-byte integers, four- and
   eight-byte floating-point numbers, and selectable-precision decimals.</p>
<table><tr><th>Name</th><th>Storage Size</th><th>Description</th></tr>
<tr><td>smallint</td><td>2 bytes</td>
<td>small-range integer type for small values.</td></tr></table>
<p>To declare a column of type numeric use the syntax:</p>
<pre>CREATE TABLE products (price numeric(10, 2) NOT NULL DEFAULT 0.0);</pre>
<p>The type integer is the common choice, as it offers
   the best balance between range, storage size, and performance.  The
   smallint type is generally only used if disk space is at a premium.</p></div>
<div class="navfooter"><a href="/">Home</a></div></body></html>"""


class _Article(QuietHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/reference"):
            self.reply(200, REFERENCE)
            return
        body = (
            "<html><head><title>Wind</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>Wind power</h1><p>{ARTICLE}</p></article>"
            "<footer>Copyright footer text</footer></body></html>"
        )
        self.reply(200, body)


@pytest.fixture(scope="module")
def article_url() -> Iterator[str]:
    with running(ThreadingHTTPServer(("127.0.0.1", 0), _Article)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/wind.html"


def _run(aesop: Aesoperator, **inputs: Any) -> Any:
    return aesop.execute_task(Task(name="summarize", inputs=inputs))


def test_routes_to_summarize_and_holds_the_bound(aesop: Aesoperator) -> None:
    result = _run(aesop, text=ARTICLE, max_length=200)
    assert result.planner == "skill:summarize"
    assert 0 < len(result.content) <= 200
    assert result.summary == result.content
    for sentence in split_sentences(result.content):
        assert sentence in ARTICLE


def test_bullets(aesop: Aesoperator) -> None:
    result = _run(
        aesop,
        text=[ARTICLE, "Solar panels are cheap now. They work well in sun."],
        max_length=300,
        format="bullets",
    )
    lines = result.content.splitlines()
    assert lines and all(line.startswith("- ") for line in lines)
    assert len(result.content) <= 300


def test_empty_input_gives_empty_summary(aesop: Aesoperator) -> None:
    result = _run(aesop, text="", max_length=100)
    assert result.content == "" and result.data["input_chars"] == 0


def test_huge_input(aesop: Aesoperator, tmp_path: Path) -> None:
    paragraphs = [
        f"Report {i}: the {w} sector grew by {i % 17} percent while costs in {w} fell again."
        for i, w in enumerate(["energy", "transport", "farming", "housing", "health"] * 4000)
    ]
    text = "\n\n".join(paragraphs)
    assert len(text) > 1_000_000
    result = _run(aesop, text=text, max_length=500)
    assert 0 < len(result.content) <= 500
    flat = _WS.sub(" ", text)
    for sentence in split_sentences(result.content):
        assert sentence in flat


@pytest.mark.parametrize(
    "text",
    [
        "Die Energiewende verändert Deutschland. Windkraft liefert heute den größten Anteil "
        "am Strom. Solaranlagen auf Dächern sind sehr beliebt. Der Netzausbau hinkt hinterher.",
        "東京は日本の首都です。人口は約千四百万人です。多くの企業の本社があります。交通網が発達しています。",
        "Москва — столица России. В городе живёт более двенадцати миллионов человек. "
        "Метро перевозит миллионы пассажиров каждый день.",
    ],
)
def test_non_english_input(aesop: Aesoperator, text: str) -> None:
    result = _run(aesop, text=text, max_length=80)
    assert 0 < len(result.content) <= 80
    assert result.content.rstrip("…") in text or all(
        s in text for s in split_sentences(result.content)
    )


def test_urls_are_read_through_the_web_layer(aesop: Aesoperator, article_url: str) -> None:
    result = aesop.execute_task(
        Task(
            name="summarize_page",
            config=TaskConfig(allowed_domains=["127.0.0.1"], allow_private_network=True),
            inputs={"text": [article_url], "max_length": 250},
        )
    )
    assert result.pages_visited == 1
    assert result.data["sources"][0]["title"] == "Wind"
    assert "Copyright" not in result.content and "Home" not in result.content
    for sentence in split_sentences(result.content):
        assert sentence in ARTICLE


def test_pages_give_whole_sentences_only(aesop: Aesoperator, article_url: str) -> None:
    url = article_url.replace("/wind.html", "/reference.html")
    result = aesop.execute_task(
        Task(
            name="summarize_page",
            config=TaskConfig(allowed_domains=["127.0.0.1"], allow_private_network=True),
            inputs={"text": [url], "max_length": 1000, "format": "bullets"},
        )
    )
    lines = [line.removeprefix("- ") for line in result.content.splitlines()]
    assert "The type integer is the common choice, as it offers the best balance between " in (
        result.content
    )
    for line in lines:
        assert is_whole_sentence(line), line
        assert "|" not in line and "CREATE TABLE" not in line and "Prev" not in line


def test_no_whole_sentence_is_said(aesop: Aesoperator) -> None:
    result = _run(aesop, text="The type integer is the common choice for numbers.", max_length=20)
    assert result.content == ""
    assert "raise max_length" in result.data["note"]


def test_urls_obey_the_policy(aesop: Aesoperator, article_url: str) -> None:
    from aesoperator.errors import PolicyViolation

    with pytest.raises(PolicyViolation):
        _run(aesop, text=[article_url], max_length=100)  # private network not allowed


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"text": "abc", "max_length": 0}, "max_length"),
        ({"text": "abc", "max_length": "10"}, "max_length"),
        ({"text": "abc", "format": "table"}, "format"),
        ({"text": 42}, "text"),
    ],
)
def test_bad_inputs(aesop: Aesoperator, inputs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=f"inputs.{field}"):
        _run(aesop, **inputs)


def test_missing_text_with_forced_skill(aesop: Aesoperator) -> None:
    with pytest.raises(ValidationError, match=r"inputs\.text"):
        aesop.execute_task(Task(name="digest", skill="summarize", inputs={"max_length": 10}))


@given(
    text=st.one_of(st.text(max_size=2000), st.lists(st.text(max_size=400), max_size=4)),
    max_length=st.integers(min_value=1, max_value=800),
    fmt=st.sampled_from(["paragraph", "bullets"]),
)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_length_bound_through_the_api(
    aesop: Aesoperator, text: str | list[str], max_length: int, fmt: str
) -> None:
    result = _run(aesop, text=text, max_length=max_length, format=fmt)
    assert len(result.content) <= max_length and len(result.summary) <= max_length
