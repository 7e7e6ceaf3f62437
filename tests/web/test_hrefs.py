"""A breadth-first crawl's links (``hrefs``, a tokenizer without a tree) are the links a parse
finds, on tricky markup; and through ``ctx.web.crawl`` only those are followed."""

from __future__ import annotations

from urllib.parse import urljoin

import lxml.html
import pytest

from aesoperator.web.crawl import hrefs

BASE = "https://docs.example.org/15/html/page.html?v=2"


def _parsed(html: str, url: str) -> list[str]:
    """What a full parse gives: lxml's tree, first <base href>, urljoin, http(s) only."""
    if html.lstrip()[:5].lower() == "<?xml":
        html = html.split("?>", 1)[-1]
    tree = lxml.html.document_fromstring(html)
    base = url
    for node in tree.iterfind(".//base[@href]"):
        base = urljoin(url, (node.get("href") or "").strip())
        break
    out = []
    for href in tree.xpath("//a/@href"):
        href = str(href).strip()
        if href and href[0] != "#":
            absolute = urljoin(base, href).split("#", 1)[0]
            if absolute.startswith(("http://", "https://")):
                out.append(absolute)
    return out


TRICKY = {
    "relative": "<p><a href='sql-select.html'>s</a> <a href=\"../topics/forms.html#x\">f</a>"
    "<a href='./a.html'>a</a><a href='/abs/b.html'>b</a><a href='//other.org/c'>c</a>"
    "<a href='?q=1'>q</a><a href=''>empty</a><a href='#top'>top</a></p>",
    "schemes": "<a href='javascript:void(0)'>j</a><a href='mailto:a@b.org'>m</a>"
    "<a href='HTTPS://Example.ORG/X'>x</a><a href='ftp://f.org/'>f</a><a href='data:,x'>d</a>",
    "entities": "<a href='a.html?x=1&amp;y=2'>1</a><a href='b&#46;html'>2</a>"
    "<a href='c&#x2E;html'>3</a><a href='d.html?q=&lt;&gt;&quot;'>4</a>",
    "whitespace": "<a href='  spaced.html\n'>1</a><a\nhref\n=\n'nl.html'>2</a>"
    "<a\thref=tab.html>3</a>",
    "base": "<head><base href='https://cdn.example.org/docs/'></head>"
    "<a href='one.html'>1</a><base href='https://ignored.example/'><a href='/two'>2</a>",
    "base relative": "<base href='../other/'><a href='x.html'>x</a>",
    "case and quotes": "<A HREF=upper.html>1</A><a href=\"dq.html\">2</a><a href='sq.html'>3</a>"
    "<a title='it\"s' href=q1.html>4</a><a data-x=\"a>b\" href='gt.html'>5</a>",
    "not links": "<abbr href='abbr.html'>a</abbr><link href='style.css'><area href='area.html'>"
    "<a name='anchor'>no href</a><a>bare</a><img src='i.png' href='img.html'>",
    "duplicates": "<a href='first.html' href='second.html'>d</a><a href='x.html'>x</a>"
    "<a href='x.html'>again</a>",
    "comments": "<!-- <a href='commented.html'>c</a> --><a href='after.html'>a</a>"
    "<!----><a href='after2.html'>b</a><!-- a -- b --><a href='after3.html'>c</a>",
    "scripts and styles": "<script>var s = '<a href=\"in-script.html\">';</script>"
    "<style>a[href='in-style.html'] {}</style><a href='real.html'>r</a>"
    "<SCRIPT type='text/x'>'<a href=\"s2.html\">'</SCRIPT ><a href='real2.html'>r2</a>",
    "malformed": "<div><p><a href='unclosed.html'>no end<p><a href=x.html><b>nested</a></b>"
    "<table><tr><td><a href='td.html'>t</a></table><a href=last.html",
    "xml": "<?xml version='1.0' encoding='utf-8'?><!DOCTYPE html><html><body>"
    "<a href='x1.html'>x</a></body></html>",
    "noscript": "<noscript><a href='noscript.html'>n</a></noscript><a href='y.html'>y</a>",
    "slashes": "<a/href='slash.html'>1</a><a href='self.html'/><br/><a href = \"sp.html\" >3</a>",
    "unicode": "<a href='é/ü.html'>u</a><a href='%7Euser/'>t</a><a href='a b.html'>s</a>",
    "raw text": "<textarea><a href='ta.html'>x</a></textarea><title><a href='ti.html'></title>"
    "<a href='ok.html'>ok</a>",
    "markup in a value": "<img alt=\"<a href=in-attr.html>\"><a href='ok.html'>ok</a>",
    "legacy entities": "<a href='p?a=1&copy=2&amp;b=3&not;c&notit'>1</a><a href='x&copy y'>2</a>",
    "plaintext": "<a href='before.html'>b</a><plaintext><a href='pt.html'>",
    "end tags": "<p>x</p ><a href='e1.html'>1</a></div/><a href='e2.html'>2</a></SPAN\t>"
    "<a href='e3.html'>3</a></b\n><i>i</i><a href='e4.html'>4</a>",
    "names by first letter": "<span><a href='s1.html'>s</a></span><table><tbody><tr><td>"
    "<a href='t1.html'>t</a></td></tr></tbody></table><b><a href='b1.html'>b</a></b>"
    "<abbr title='x'>a</abbr><a href='a1.html'>a</a><nav><a href='n1.html'>n</a></nav>",
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_hrefs_equal_a_full_parse(name):
    html = f"<html><head><title>t</title></head><body>{TRICKY[name]}</body></html>"
    if name == "xml":
        html = TRICKY[name]
    assert hrefs(html, BASE) == _parsed(html, BASE)
    assert hrefs(html, BASE) or name == "not links"  # each other case has links to find


def test_a_crawls_memo_of_joined_hrefs_gives_what_each_page_alone_gives():
    """One crawl resolves each relative href once per directory: pages of other directories,
    bases with a query holding "/" and a <base> of their own still get their own answer."""
    memo: dict[tuple[str, str], str] = {}
    pages = [
        "https://d.org/15/html/a.html",
        "https://d.org/15/html/b.html?v=/x/y",
        "https://d.org/15/other/c.html",
        "https://d.org/15/html/sub/d.html#frag/z",
        "https://d.org/15/html/e;params",
        "https://d.org/",
    ]
    for name in sorted(TRICKY):
        html = f"<html><body>{TRICKY[name]}</body></html>"
        for url in pages + pages:  # twice: the second time from the memo
            assert hrefs(html, url, memo) == _parsed(html, url), (name, url)
    assert memo  # it was used


def test_crawl_follows_only_real_links(web, allowed, kit):
    # Links in a comment, a script or an attribute value are no links: never requested.
    allowed.routes["/"] = kit.html(
        "<!-- <a href='/trap1'>x</a> --><script>'<a href=\"/trap2\">'</script>"
        "<img alt='<a href=/trap3>'><a href='a.html#s'>a</a><a href='/b?x=1&amp;y=2'>b</a>"
        "<a href='mailto:x@y.org'>m</a><a href='javascript:go()'>j</a>"
    )
    allowed.routes["/a.html"] = kit.html("<a HREF=/b?x=1&amp;y=2>b again</a>")
    allowed.routes["/b"] = kit.html("<p>end</p>")

    async def crawl(ctx, url):
        return [p.url async for p in ctx.web.crawl([url])]

    start = f"http://allowed.test:{allowed.port}/"
    result = web.run(crawl, kit.local(), url=start)
    # Each real link once; a.html and b are fetched at once, so either may come first.
    assert result.data[0] == start
    assert sorted(result.data) == sorted([start, start + "a.html", start + "b?x=1&y=2"])
    assert [r.path for r in allowed.requests if "trap" in r.path] == []
