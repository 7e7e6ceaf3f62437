"""Structural blocks of real documentation layouts (reduced Sphinx and DocBook pages)."""

from __future__ import annotations

from pathlib import Path

from aesoperator.text.units import candidates, is_whole_sentence, sentences_of
from aesoperator.web.extract import extract_page

_PAGES = Path(__file__).parent / "pages"

# Sphinx (Django's theme): a global navigation, a sidebar with the page's table of contents,
# sections with headerlinks, an API entry as a definition list, a code block and a table.
SPHINX = (_PAGES / "sphinx_fields.html").read_text(encoding="utf-8")

# DocBook (PostgreSQL): navigation header and footer, a table of contents, section titles in
# div.titlepage, hard-wrapped paragraphs with inline code, a program listing, a note, a table.
DOCBOOK = (_PAGES / "docbook_numeric.html").read_text(encoding="utf-8")

# The manual's NOTIFY reference page as Debian's postgresql-doc-15 ships it (unreduced): a
# section of one short paragraph under its own heading, and a "See Also" of links only.
NOTIFY = (_PAGES / "docbook_notify.html").read_text(encoding="utf-8")

# An index page: only links. It guides a crawl; it has nothing to quote.
GENINDEX = (_PAGES / "sphinx_genindex.html").read_text(encoding="utf-8")


def test_sphinx_blocks_keep_structure_and_drop_navigation() -> None:
    page = extract_page(SPHINX.encode(), "http://docs.test/ref/models/fields.html", "text/html")
    kinds = {b.kind for b in page.blocks}
    assert {"heading", "paragraph", "definition", "code", "table"} <= kinds
    headings = [(b.level, b.text) for b in page.blocks if b.kind == "heading"]
    assert headings == [(1, "Model field reference"), (2, "null")]  # no ¶, no sidebar titles
    texts = " ".join(b.text for b in page.blocks)
    assert "Copyright" not in texts and "Browse" not in texts and "Prev:" not in texts
    code = [b for b in page.blocks if b.kind == "code"]
    assert code and code[0].text.startswith("class Person(models.Model):")
    rows = [b.text for b in page.blocks if b.kind == "table"]
    assert "null | Store empty values as NULL in the database table." in rows
    nulls = [b for b in page.blocks if "empty values as NULL" in b.text and b.kind != "table"]
    assert nulls[0].heading_path == ("Model field reference", "null")
    assert page.text  # the existing fields still work


def test_sphinx_sentences_are_whole_and_survive_identifiers() -> None:
    page = extract_page(SPHINX.encode(), "http://docs.test/ref/models/fields.html", "text/html")
    sentences = [s.text for s in candidates(page.blocks)]
    assert (
        "This document contains all the API references of Field including the field options "
        "and field types Django offers, e.g. the django.db.models.Model base class."
    ) in sentences
    assert "See version 4.2.1 notes at https://example.org/releases/4.2.1." in sentences
    assert (
        "Use os.path.join() to build file paths, i.e. never concatenate strings by hand... "
        "it is safer."
    ) in sentences
    assert "Mr. Smith and Fig. 3 vs. Fig. 4 show the difference." in sentences
    for s in sentences:
        assert is_whole_sentence(s), s
        assert "|" not in s and "models.CharField(" not in s and "Field.null" not in s
    assert not any("Store empty values" in s for s in sentences)  # a table cell is no prose


def test_docbook_headings_tables_code_and_cut_continuations() -> None:
    page = extract_page(DOCBOOK.encode(), "http://docs.test/datatype-numeric.html", "text/html")
    headings = [(b.level, b.text) for b in page.blocks if b.kind == "heading"]
    assert (2, "8.1. Numeric Types") in headings and (3, "8.1.1. Integer Types") in headings
    assert all(b.kind != "nav" or "Integer Types" not in b.text for b in page.blocks)
    assert not any("Prev" in b.text or "Next" in b.text for b in page.blocks)  # nav header
    assert [b.text for b in page.blocks if b.kind == "table"][:2] == [
        "Name | Storage Size | Description | Range",
        "smallint | 2 bytes | small-range integer | -32768 to +32767",
    ]
    assert any(b.kind == "code" and b.text == "NUMERIC(precision, scale)" for b in page.blocks)
    units = sentences_of(page.blocks)
    texts = [s.text for s in units]
    # A hard-wrapped paragraph is one block: its sentences are whole.
    assert (
        "The types smallint, integer, and bigint store whole numbers, that is, numbers without "
        "fractional components, of various ranges."
    ) in texts
    good = [s.text for s in candidates(page.blocks)]
    assert not any(t.startswith("data must be") for t in good)  # a cut continuation
    assert not any(t.startswith("Table 8.2. Numeric") for t in good)
    note = next(s for s in units if "maximum precision" in s.text)
    assert note.heading_path[-1] == "Note"
    after = next(s for s in units if "common choice" in s.text)
    assert after.heading_path == ("8.1. Numeric Types", "8.1.1. Integer Types")  # note closed
    for t in good:
        assert is_whole_sentence(t) and "|" not in t, t


def test_index_pages_yield_no_sentences() -> None:
    page = extract_page(GENINDEX.encode(), "http://docs.test/genindex.html", "text/html")
    assert page.blocks  # it keeps its structure (for a crawl's guidance) ...
    assert candidates(page.blocks) == []  # ... and has nothing to quote


def test_plain_text_pages_get_paragraph_blocks() -> None:
    body = b"Title line\nFirst paragraph is\nhard wrapped here. Second one.\n\n- an item here"
    page = extract_page(body, "http://docs.test/a.txt", "text/plain")
    assert [(b.kind, b.text) for b in page.blocks] == [
        ("paragraph", "Title line"),
        ("paragraph", "First paragraph is hard wrapped here. Second one."),
        ("item", "an item here"),
    ]


def test_highlighted_code_reads_like_plain_code() -> None:
    """Syntax highlighting (a ``<span>`` per token, as Pygments writes it) is dropped after
    parsing: the page's words, links and blocks are those of the same page without it."""
    plain = "<pre>class Person(models.Model):\n    name = models.CharField(max_length=30)</pre>"
    lit = '<code class="docutils literal"><span class="pre">max_length</span></code>'
    spans = (
        '<div class="highlight"><pre><span></span><span class="k">class</span> '
        '<span class="nc">Person</span><span class="p">(</span><span class="n">models</span>'
        '<span class="o">.</span><span class="n">Model</span><span class="p">):</span>\n'
        '    <span class="n">name</span> <span class="o">=</span> <span class="n">models</span>'
        '<span class="o">.</span><span class="n">CharField</span><span class="p">(</span>'
        '<span class="n">max_length</span><span class="o">=</span><span class="mi">30</span>'
        '<span class="p">)</span></pre></div>'
    )
    prose = "".join(
        f"<p>Paragraph {i} says that a field such as <a href='f{i}.html'>CharField</a> takes "
        f"{lit} when it stores text of a bounded length in the database.</p>"
        for i in range(5)
    )

    def page(code: str, literal: str) -> str:
        body = prose.replace(lit, literal)
        return f"<html><head><title>Fields</title></head><body><div><h1>Fields</h1>{body}{code}</div></body></html>"  # noqa: E501

    highlighted = extract_page(page(spans, lit).encode(), "http://docs.test/f.html", "text/html")
    bare = extract_page(page(plain, "<code>max_length</code>").encode(), "http://docs.test/f.html",
                        "text/html")  # fmt: skip
    assert highlighted.text.split() == bare.text.split()
    assert highlighted.links == bare.links
    assert highlighted.blocks == bare.blocks
    assert any(b.kind == "code" and "CharField(max_length=30)" in b.text for b in bare.blocks)


def test_docbook_reference_page_keeps_its_short_sections() -> None:
    """A container that marks no boilerplate is read block by block: trafilatura's weighing
    dropped the "pg_notify" section (one short paragraph) of this page."""
    page = extract_page(NOTIFY.encode(), "http://docs.test/sql-notify.html", "text/html")
    headings = [(b.level, b.text) for b in page.blocks if b.kind == "heading"]
    assert (3, "pg_notify") in headings
    assert (2, "See Also") not in headings  # links only: navigation, no content
    said = [s for s in sentences_of(page.blocks) if s.text.startswith("To send a notification")]
    assert said and said[0].heading_path[-1] == "pg_notify"
    assert "pg_notify(text, text)" in page.text and "pg_notify(text, text)" in page.markdown
    assert "### pg_notify" in page.markdown and "```" in page.markdown  # rendered, not flat
    assert not any(b.text.startswith(("Prev", "Next", "LISTEN, UNLISTEN")) for b in page.blocks)


def test_a_container_with_boilerplate_is_weighed_by_trafilatura() -> None:
    """The same kind of container on a news page, holding share buttons and related stories:
    those stay out of the text (read block by block, they would be in it)."""
    story = "".join(
        f"<p>Paragraph {i} of the story tells what happened at the harbour on Monday, in "
        "enough words to count as text.</p>"
        for i in range(6)
    )
    html = (
        "<html><head><title>Harbour story</title></head><body><div class='site'>"
        f"<div class='story-wrap'><h1>Harbour story</h1>{story}"
        "<div class='share-buttons'><p>Share this story with your friends on every network "
        "you use today.</p></div><div class='related-posts'><h3>Related</h3><p>Another story "
        "teaser that is not part of this article at all, really.</p></div></div></div></body>"
        "</html>"
    )
    page = extract_page(html.encode(), "http://news.test/harbour", "text/html")
    assert "Paragraph 5 of the story" in page.text
    assert "Share this story" not in page.text and "teaser" not in page.text
    assert not any("Share" in b.text or "teaser" in b.text for b in page.blocks)
