"""Blocks, the sentences inside them, and the whole-sentence test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aesoperator.text.sentences import split_sentences
from aesoperator.text.summarize import shortest_sentence, summarize
from aesoperator.text.units import (
    Block,
    blocks_from_text,
    candidates,
    is_whole_sentence,
    sentences_of,
)


@pytest.mark.parametrize(
    "text",
    [
        "Call os.path.join() to build paths. It handles separators.",
        "Subclass django.db.models.Model for each table. Django maps fields to columns.",
        "PostgreSQL 15.4 fixes this bug. Upgrade from v2.1.3 to v2.1.4 when you can.",
        "Read https://www.postgresql.org/docs/15/index.html first. It is the manual.",
        "Use formats, e.g. JSON or XML, i.e. text. Binary formats are faster, etc. Pick one.",
        "Mr. Smith wrote it. See Fig. 3 vs. Fig. 4 for the result.",
        "Its format is detailed in Table 73.3. Upgrade to v2.1.3. Then restart.",
        "It waits... and then it fails. Nobody knows why.",
    ],
)
def test_boundaries_survive_abbreviations_identifiers_versions_urls(text: str) -> None:
    expected = {
        "Call": ["Call os.path.join() to build paths.", "It handles separators."],
        "Subclass": [
            "Subclass django.db.models.Model for each table.",
            "Django maps fields to columns.",
        ],
        "PostgreSQL": [
            "PostgreSQL 15.4 fixes this bug.",
            "Upgrade from v2.1.3 to v2.1.4 when you can.",
        ],
        "Read": [
            "Read https://www.postgresql.org/docs/15/index.html first.",
            "It is the manual.",
        ],
        "Use": [
            "Use formats, e.g. JSON or XML, i.e. text.",
            "Binary formats are faster, etc. Pick one.",
        ],
        "Mr.": ["Mr. Smith wrote it.", "See Fig. 3 vs. Fig. 4 for the result."],
        "Its": ["Its format is detailed in Table 73.3.", "Upgrade to v2.1.3.", "Then restart."],
        "It": ["It waits... and then it fails.", "Nobody knows why."],
    }[text.split()[0]]
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("sentence", "whole"),
    [
        ("The type integer is the common choice for most columns.", True),
        ("pg_dump is a utility for backing up a database.", True),
        ("os.path.join() joins one or more path segments.", True),
        ('"Quoted" sentences start with a quote and are fine.', True),
        ("15 decimal digits of precision are kept here.", True),
        ("of the UID. data must be in the range", False),  # cut start, no end
        ("and group names in regular expressions.", False),  # a continuation
        ("| | tomllib | Parse TOML files.", False),  # a table row
        ("Too short.", False),
        ("To declare a column of type numeric use the syntax:", False),  # introduces code
        ("x = compute(a, b); y = x + 1;", False),
        ("SELECT * FROM t WHERE a = 1 AND b = 2;", False),
        ("for (i = 0; i < n; i++) { total += i; }", False),
        ("The values run from 1 to 32767 inclusive…", False),  # an ellipsis: cut
        ("東京は日本の首都です。", True),  # no spaces, no case: the end is enough
    ],
)
def test_is_whole_sentence(sentence: str, whole: bool) -> None:
    assert is_whole_sentence(sentence) is whole


def test_sentences_never_cross_blocks_and_skip_non_prose() -> None:
    blocks = [
        Block("heading", "Installing", (), 1),
        Block("paragraph", "Run the installer as root. It takes a minute", ("Installing",)),
        Block("item", "then reboot the machine to finish.", ("Installing",)),
        Block("code", "sudo ./install.sh --prefix=/opt. Then run it.", ("Installing",)),
        Block("table", "Option | Meaning of the option in the setup.", ("Installing",)),
        Block("nav", "Next page. Previous page. Home page.", ("Installing",)),
    ]
    units = sentences_of(blocks)
    assert [(u.text, u.block_index) for u in units] == [
        ("Run the installer as root.", 1),
        ("It takes a minute", 1),  # not joined with the next block's text
        ("then reboot the machine to finish.", 2),
    ]
    assert all(u.heading_path == ("Installing",) for u in units)
    assert [u.text for u in candidates(blocks)] == ["Run the installer as root."]


def test_blocks_from_text_paragraphs_items_headings() -> None:
    text = (
        "# Guide\n\nThe first paragraph is\nhard wrapped. It ends here.\n\n"
        "## Steps\n- Do one thing now.\n2. Do another."
    )
    blocks = blocks_from_text(text)
    assert [(b.kind, b.text, b.heading_path, b.level) for b in blocks] == [
        ("heading", "Guide", (), 1),
        ("paragraph", "The first paragraph is hard wrapped. It ends here.", ("Guide",), 0),
        ("heading", "Steps", ("Guide",), 2),
        ("item", "Do one thing now.", ("Guide", "Steps"), 0),
        ("item", "Do another.", ("Guide", "Steps"), 0),
    ]


_DOC = (
    "Name | Size | Description\nsmallint | 2 bytes | small-range integer\n\n"
    "The type integer is the common choice for whole numbers in tables.\n"
    "It offers the best balance between range, storage size and performance.\n\n"
    "CREATE TABLE t (a integer NOT NULL DEFAULT 0);\n\n"
    "of the UID. data must be in the range\n\n"
    "The bigint type is designed for when the range of integer is insufficient."
)


def test_summary_is_whole_sentences_only() -> None:
    out = summarize(_DOC, max_length=400, format="bullets")
    lines = [line.removeprefix("- ") for line in out.splitlines()]
    assert lines and "The type integer is the common choice for whole numbers in tables." in lines
    for line in lines:
        assert is_whole_sentence(line), line


def test_summary_is_empty_rather_than_cut() -> None:
    shortest = shortest_sentence(_DOC)
    assert shortest == len("The type integer is the common choice for whole numbers in tables.")
    assert summarize(_DOC, max_length=shortest - 1) == ""
    assert summarize(_DOC, max_length=shortest) != ""


@given(
    sentences=st.lists(
        st.sampled_from(
            [
                "The parser reads JSON files from disk.",
                "Use json.loads() to parse a string.",
                "| a | b | c |",
                "of the UID. data must be in the range",
                "x = json.loads(s); print(x)",
                "Version 3.11.4 added faster parsing of large files.",
            ]
        ),
        max_size=12,
    ),
    max_length=st.integers(min_value=1, max_value=400),
)
@settings(max_examples=100, deadline=None)
def test_summaries_hold_the_bound_and_never_cut(sentences: list[str], max_length: int) -> None:
    out = summarize("\n\n".join(sentences), max_length=max_length)
    assert len(out) <= max_length
    for sentence in split_sentences(out):
        assert is_whole_sentence(sentence), sentence
