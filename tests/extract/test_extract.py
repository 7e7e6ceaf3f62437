"""Page extraction: charset, content types, links, title, date, language, markdown."""

from __future__ import annotations

import codecs

import pytest

from aesoperator.web.extract import decode_body, extract_links, extract_page

PARA = "Quantum computers use qubits that can hold superpositions of states. " * 6


def _html(body: str, head: str = "", lang: str = "en") -> str:
    return f"<!doctype html><html lang='{lang}'><head>{head}</head><body>{body}</body></html>"


def test_main_text_title_date_language_markdown() -> None:
    html = _html(
        "<nav><a href='/'>Home</a> <a href='/login'>Sign in</a></nav>"
        f"<article><h1>Qubits explained</h1><p>{PARA}</p><h2>Hardware</h2>"
        "<ul><li>Superconducting circuits are cooled to millikelvin temperatures today.</li>"
        "<li>Trapped ions are held by electromagnetic fields in a vacuum chamber.</li></ul>"
        "</article><footer>Copyright 2024 Example Media. All rights reserved.</footer>",
        head="<title>Qubits explained | Example Media</title>"
        "<meta property='article:published_time' content='2024-03-05T10:00:00Z'>",
    )
    page = extract_page(html.encode(), "https://example.org/a/qubits.html", "text/html")
    assert page.is_html and page.content_type == "text/html"
    assert page.title == "Qubits explained"
    assert page.date == "2024-03-05"
    assert page.language == "en"
    assert "superpositions" in page.text and "Trapped ions" in page.text
    assert "Copyright" not in page.text and "Sign in" not in page.text
    assert "## Hardware" in page.markdown and "- Superconducting" in page.markdown


@pytest.mark.parametrize(
    ("head", "url", "expected"),
    [
        ("<meta name='date' content='2021/07/09'>", "https://x.org/a", "2021-07-09"),
        (
            '<script type=\'application/ld+json\'>{"datePublished": "2020-02-29"}</script>',
            "https://x.org/a",
            "2020-02-29",
        ),
        ("", "https://x.org/2019/05/17/story.html", "2019-05-17"),
        ("", "https://x.org/story.html", None),
    ],
)
def test_dates_from_declared_metadata(head: str, url: str, expected: str | None) -> None:
    page = extract_page(_html(f"<p>{PARA}</p>", head=head), url, "text/html")
    assert page.date == expected


def test_time_element_date() -> None:
    html = _html(f"<article><time datetime='2022-11-30'>Nov 30</time><p>{PARA}</p></article>")
    assert extract_page(html, "https://x.org/a", "text/html").date == "2022-11-30"


def test_charset_from_header_meta_bom_and_detection() -> None:
    text = "Café crème brûlée, naïve façade. " * 20
    body = _html(f"<p>{text}</p>")
    cp1252 = body.encode("cp1252")
    assert (
        "Café crème" in extract_page(cp1252, "http://x/a", "text/html; charset=windows-1252").text
    )
    meta = _html(f"<p>{text}</p>", head="<meta charset='iso-8859-1'>").encode("latin-1")
    assert "naïve façade" in extract_page(meta, "http://x/a", "text/html").text
    utf16 = codecs.BOM_UTF16_LE + body.encode("utf-16-le")
    assert "brûlée" in extract_page(utf16, "http://x/a", "text/html").text
    cyrillic = "Привет, как дела? Это длинный русский текст о погоде в Москве. " * 10
    undeclared = _html(f"<p>{cyrillic}</p>", lang="").encode("cp1251")
    decoded, encoding = decode_body(undeclared, "text/html")
    assert "Привет" in decoded and encoding in ("cp1251", "windows-1251")
    page = extract_page(undeclared, "http://x/ru", "text/html")
    assert "Москве" in page.text and page.language == "ru"


def test_lying_charset_declaration_falls_back() -> None:
    body = _html("<p>" + "Grüße aus Köln, schöne Straße. " * 20 + "</p>").encode("utf-8")
    page = extract_page(body, "http://x/a", "text/html; charset=ascii")
    assert "Grüße aus Köln" in page.text


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("application/pdf", b"%PDF-1.7 <html><body><p>not html</p></body></html>"),
        ("image/png", b"\x89PNG\r\n\x1a\n<html>"),
        ("application/json", b'{"html": "<html><body>x</body></html>"}'),
    ],
)
def test_non_html_is_reported_not_parsed(kind: str, body: bytes) -> None:
    page = extract_page(body, "http://x/file", kind)
    assert not page.is_html and page.content_type == kind
    assert page.text == "" and page.links == [] and page.title is None


def test_plain_text_keeps_its_text() -> None:
    body = b"Line one of a notice.\nLine two, with <b>angle</b> brackets."
    page = extract_page(body, "http://x/notice.txt", "text/plain; charset=utf-8")
    assert not page.is_html and page.content_type == "text/plain"
    assert page.text == "Line one of a notice.\nLine two, with <b>angle</b> brackets."


def test_sniffs_html_without_content_type() -> None:
    page = extract_page(_html(f"<p>{PARA}</p>").encode(), "http://x/a", None)
    assert page.is_html and "qubits" in page.text


def test_empty_and_broken_documents() -> None:
    assert extract_page(b"", "http://x/a", "text/html").text == ""
    broken = extract_page(
        b"<html><body><p>Unclosed <b>bold <i>" + PARA.encode(), "http://x/a", "text/html"
    )
    assert "qubits" in broken.text


def test_links_absolute_deduplicated_with_anchor_text_and_context() -> None:
    html = _html(
        "<p>Read the <a href='guide.html#part2'>full guide</a> for details.</p>"
        "<a href='guide.html'></a>"
        "<a href='/x?a=1&amp;b=2'>query</a>"
        "<a href='mailto:me@x.org'>mail</a><a href='javascript:void(0)'>js</a>"
        "<a href='#top'>top</a><a href='ftp://x.org/f'>ftp</a>"
        "<a href='//cdn.example.net/lib'>protocol-relative</a>"
        "<a href='http://[bad'>bad</a><a href=' https://Other.org/Path '>other</a>"
    )
    links = extract_links(html, "https://example.org/docs/index.html")
    assert [(link.url, link.text) for link in links] == [
        ("https://example.org/docs/guide.html", "full guide"),
        ("https://example.org/x?a=1&b=2", "query"),
        ("https://cdn.example.net/lib", "protocol-relative"),
        ("https://Other.org/Path", "other"),
    ]
    assert links[0].context == "Read the full guide for details."


def test_base_href_and_empty_anchor_text_gets_filled() -> None:
    html = _html(
        "<a href='a.html'><img src='x.png'></a><a href='a.html'>Article A</a>",
        head="<base href='https://mirror.example.org/root/'>",
    )
    links = extract_links(html, "https://example.org/page")
    assert [(link.url, link.text) for link in links] == [
        ("https://mirror.example.org/root/a.html", "Article A")
    ]


def test_extracted_page_carries_links() -> None:
    html = _html(f"<article><p>{PARA} <a href='/next'>Next article</a></p></article>")
    page = extract_page(html, "https://example.org/a/b", "text/html")
    assert [link.url for link in page.links] == ["https://example.org/next"]


def test_page_relative_links_resolve_as_urljoin_does() -> None:
    """Documentation sites link by file name relative to the page; the shortcut for those
    must give what ``urljoin`` gives, including where urljoin rewrites the path."""
    from urllib.parse import urljoin

    hrefs = [
        "sql-select.html", "ref/models.html#id", "../topics/forms.html", "./a.html",
        "a//b.html", "a;p=1.html", "a.html?x=1", "x:y.html", "a b.html", "~user/é.html",
        "%7Eq.html",
    ]  # fmt: skip
    html = _html("".join(f"<a href='{h}'>{i}</a>" for i, h in enumerate(hrefs)))
    for base in (
        "https://docs.example.org/15/html/index.html?v=2",
        "https://docs.example.org",
        "https://docs.example.org/a/./b/page.html",
        "https://docs.example.org/a//b/page.html",
    ):
        got = {link.text: link.url for link in extract_links(html, base)}
        for i, href in enumerate(hrefs):
            expected = urljoin(base, href).split("#")[0]
            assert got.get(str(i), expected) == expected, (base, href)
        assert got["0"] == urljoin(base, "sql-select.html")


# A documentation page laid out like Sphinx's themes (reduced from Django's docs theme, BSD
# licence): no <main>, <article> or [role=main]; the site's name is the first <h1>, in the header.
_SPHINX_PAGE = """<!DOCTYPE html><html lang="en"><head><title>Making queries | Demo docs</title>
</head><body><div class="document"><div id="custom-doc" class="yui-t6">
<div id="hd"><h1><a href="../index.html">Demo 3.2 documentation</a></h1>
<div id="global-nav"><a href="../index.html">Home</a> | <a href="../contents.html">Table of
contents</a> | <a href="../genindex.html">Index</a></div>
<div class="nav">&laquo; <a href="models.html">previous</a> | <a href="aggregation.html">next</a>
&raquo;</div></div>
<div id="bd"><div id="yui-main"><div class="yui-b"><div class="yui-g" id="topics-queries">
<div class="section" id="making-queries"><h1>Making queries<a
class="headerlink" href="#making-queries">¶</a></h1>
<p>Once you have created your data models, the framework gives you a database-abstraction API
that lets you create, retrieve, update and delete objects.</p>
<p>Throughout this guide we refer to the following models, which comprise a weblog
application with entries, authors and blogs.</p>
<div class="section" id="retrieving-objects"><h2>Retrieving objects<a
class="headerlink" href="#retrieving-objects">¶</a></h2>
<p>To retrieve objects from your database, construct a queryset via a manager on your model
class; a queryset represents a collection of objects from your database.</p>
<ul><li><p>Filtering narrows a queryset down to the rows matching the lookup parameters.</p></li>
<li><p>Exclusion returns a new queryset containing objects that do not match.</p></li></ul>
<p>Querysets are lazy: creating one does not touch the database until it is evaluated.</p>
</div></div></div></div></div>
<div class="yui-b" id="sidebar"><div class="sphinxsidebar" role="navigation">
<h3>Contents</h3><ul><li><a href="#making-queries">Making queries</a><ul>
<li><a href="#retrieving-objects">Retrieving objects</a></li></ul></li></ul>
<h3>Browse</h3><ul><li>Prev: <a href="models.html">Models and sidebarword</a></li>
<li>Next: <a href="aggregation.html">Aggregation</a></li></ul>
<h3>Last update:</h3><p>Nov 11, 2026</p></div></div></div>
<div id="ft"><div class="nav"><a href="models.html">previous</a> |
<a href="aggregation.html">next</a></div></div>
</div></div></body></html>"""


def test_sphinx_page_main_text_has_headings_and_lists_not_the_sidebar() -> None:
    ex = extract_page(_SPHINX_PAGE.encode(), "http://docs.test/topics/queries.html", "text/html")
    # The page's own headings and list items are main text (a whole-page "wild text" search
    # keeps only paragraphs, and reads the sidebar's).
    assert "Retrieving objects" in ex.text
    assert "Filtering narrows a queryset" in ex.text
    assert "Querysets are lazy" in ex.text
    for chrome in ("Demo 3.2 documentation", "sidebarword", "Last update", "Table of"):
        assert chrome not in ex.text
    # The page's tree is left as it came: its blocks still cover the main text.
    assert any("Querysets are lazy" in block.text for block in ex.blocks)
    assert all(block.text for block in ex.blocks)
