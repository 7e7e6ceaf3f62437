"""Page extraction: main text, markdown, title, date, language and links of a fetched page.

``extract_page`` is CPU-bound (lxml + trafilatura); the web layer runs it in a process pool via
``WebSession.extract``. ``extract_links`` is the fast path the crawler's frontier uses.

>>> page = extract_page(b"<html><title>Hi</title><body><p>Hello.</p></body></html>",
...                     "http://example.org/a")
>>> page.title, page.is_html
('Hi', True)
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from ..text.units import Block

__all__ = ["Extracted", "Link", "decode_body", "decode_text", "extract_links", "extract_page"]


@dataclass(frozen=True)
class Link:
    """A link found on a page: absolute URL (no fragment), anchor text, surrounding text."""

    url: str
    text: str
    context: str = ""


@dataclass(frozen=True)
class Extracted:
    """What a page says, independent of how it was fetched."""

    url: str
    title: str | None
    text: str
    markdown: str
    date: str | None
    language: str | None
    links: list[Link] = field(default_factory=list)
    content_type: str = "text/html"
    is_html: bool = True
    # The main content's structure (headings, paragraphs, items, table rows, code...): see
    # ``aesoperator.text.units`` for the sentences inside them.
    blocks: list[Block] = field(default_factory=list)


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown", "text/csv"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_HTML_SNIFF = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WS = re.compile(r"\s+")
# Block elements whose text is a link's "surrounding text" (a sentence, a list item, a cell).
_CONTEXT_TAGS = frozenset(
    {"p", "li", "td", "th", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "figcaption",
     "blockquote", "caption"}
)  # fmt: skip
_CONTEXT_CHARS = 300


def _split_content_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    parts = content_type.split(";")
    mime = parts[0].strip().lower()
    charset = None
    for part in parts[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return mime, charset


# The encodings browsers decode (the WHATWG Encoding Standard), as Python's codecs name them.
# Any other label is ignored, as browsers ignore it: UTF-7 (``+ADw-`` is ``<``), Python's
# escape codecs (``unicode_escape`` turns ``\u003c`` into ``<``), ISO-2022-KR/CN and HZ (the
# standard's "replacement"), EBCDIC, and codecs that are no text encoding (rot13, zlib).
_WEB_ENCODINGS = frozenset(
    {"utf-8", "utf-16", "utf-16-le", "utf-16-be", "cp866", "iso8859-2", "iso8859-3",
     "iso8859-4", "iso8859-5", "iso8859-6", "iso8859-7", "iso8859-8", "iso8859-9",
     "iso8859-10", "iso8859-11", "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16",
     "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic", "cp874", "tis-620", "cp1250", "cp1251",
     "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "ascii",
     "iso8859-1", "gbk", "gb2312", "gb18030", "big5", "big5hkscs", "euc_jp", "iso2022_jp",
     "shift_jis", "cp932", "euc_kr", "cp949"}
)  # fmt: skip
# Labels of the standard that Python does not know, for encodings it has.
_WEB_ALIASES = {"windows-874": "cp874", "dos-874": "cp874", "x-sjis": "shift_jis",
                "windows-31j": "cp932", "windows-949": "cp949", "x-gbk": "gbk",
                "x-euc-jp": "euc_jp", "x-mac-cyrillic": "mac-cyrillic",
                "unicode-1-1-utf-8": "utf-8"}  # fmt: skip


def _web_codec(label: str | None) -> str | None:
    """The codec a browser would use for ``label``; None if it would ignore the label."""
    key = (label or "").strip().lower()
    try:
        name = codecs.lookup(_WEB_ALIASES.get(key, key)).name if key else None
    except (LookupError, ValueError):  # unknown, or a NUL in the name
        return None
    return name if name in _WEB_ENCODINGS else None


def decode_body(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode ``body`` to text; return ``(text, encoding)``.

    Order: byte-order mark, the header's charset, ``<meta charset>``, strict UTF-8, then
    charset-normalizer's best guess. Never raises: undecodable bytes become U+FFFD. Only
    the encodings browsers know are used (never UTF-7): see ``decode_text``.
    """
    text, encoding, _ = decode_text(body, content_type)
    return text, encoding


def decode_text(body: bytes, content_type: str | None = None) -> tuple[str, str, str | None]:
    """``decode_body``, and the declared charset it refused (``None`` if none was): a label
    that is no encoding browsers decode (``utf-7``, ``unicode_escape``, an unknown name) is
    ignored, as browsers ignore it, and the text decoded as if none were declared."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body.decode(name, errors="replace"), name, None
    refused: str | None = None
    _, header_charset = _split_content_type(content_type)
    declared = _web_codec(header_charset)
    if header_charset and declared is None:
        refused = header_charset[:100]
    if declared is None:
        match = _META_CHARSET.search(body[:4096])
        label = match.group(1).decode("ascii", "ignore") if match else None
        declared = _web_codec(label)
        if label and declared is None:
            refused = refused or label[:100]
        elif declared is not None and declared.startswith("utf-16"):
            declared = "utf-8"  # read as ASCII, the page cannot be UTF-16 (WHATWG)
    if declared is not None:
        # Pages often declare latin-1 and are windows-1252 (browsers do the same substitution).
        if declared in ("latin-1", "iso8859-1", "ascii", "cp1252"):
            declared = "cp1252"
            # Valid multi-byte UTF-8 is almost never real cp1252 text: the declaration lies.
            if not body.isascii():
                try:
                    return body.decode("utf-8"), "utf-8", refused
                except UnicodeDecodeError:
                    pass
        try:
            return body.decode(declared), declared, refused
        except UnicodeDecodeError:
            pass  # the declaration lies; fall through to detection
    try:
        return body.decode("utf-8"), "utf-8", refused
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # Guessed among the web's encodings only: none of them turns ASCII bytes into markup.
    best = from_bytes(body[:200_000], cp_isolation=sorted(_WEB_ENCODINGS)).best()
    name = _web_codec(best.encoding if best is not None else None) or "cp1252"
    return body.decode(name, errors="replace"), name, refused


def _is_html(mime: str, head: bytes | str) -> bool:
    if mime in _HTML_TYPES:
        return True
    if mime and mime not in ("application/octet-stream", "text/xml", "application/xml"):
        return False
    sample = head[:2048] if isinstance(head, bytes) else head[:2048].encode("utf-8", "ignore")
    return bool(_HTML_SNIFF.match(sample))


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _base_href(tree: Any, url: str) -> str:
    for base in tree.iterfind(".//base[@href]"):
        href = (base.get("href") or "").strip()
        if href:
            return str(urljoin(url, href))
        break
    return url


# In a relative href, what urljoin would treat specially: a scheme or port colon, a query,
# parameters, backslashes, whitespace, dot segments, empty segments (urljoin drops them).
_NOT_PLAIN = re.compile(r"[:?;\\\s]|/\.|//")


def _resolver(base: str) -> Any:
    """``href -> absolute http(s) URL without fragment, or None``, memoised per page.

    Pages repeat the same links (navigation, footers) and ``urljoin`` is slow: root-relative
    paths, the common case, are joined by hand; anything unusual goes through ``urljoin``.
    """
    try:
        parts = urlsplit(base)
    except ValueError:
        parts = urlsplit("")
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else ""
    # Documentation sites link by file name relative to the page (``sql-select.html``,
    # ``ref/models.html``): joined by hand onto the page's folder when nothing in either
    # could make urljoin do more (dot segments, a scheme, a query, parameters).
    folder = ""
    if origin and not _NOT_PLAIN.search(parts.path):
        folder = origin + (parts.path or "/").rsplit("/", 1)[0] + "/"
    cache: dict[str, str | None] = {}

    def resolve(href: str) -> str | None:
        if href in cache:
            return cache[href]
        target = href.split("#", 1)[0]
        result: str | None = None
        if (
            origin
            and target.startswith("/")
            and not target.startswith("//")
            and "/." not in target
            and "\\" not in target
            and target.isprintable()
            and " " not in target
        ):
            result = origin + target
        elif (
            folder
            and target
            and target[0] not in "/.?;"
            and not _NOT_PLAIN.search(target)
            and target.isprintable()
        ):
            result = folder + target
        elif target.startswith(("http://", "https://")) and target.isprintable():
            try:
                split = urlsplit(target)  # absolute: urljoin would only re-assemble it
            except ValueError:
                split = urlsplit("")
            if split.netloc and " " not in split.netloc:
                result = target
        else:
            try:
                absolute = urldefrag(urljoin(base, href))[0]
                split = urlsplit(absolute)
            except ValueError:
                absolute, split = "", urlsplit("")  # malformed (e.g. a bad IPv6 literal)
            if split.scheme in ("http", "https") and split.netloc:
                result = absolute
        cache[href] = result
        return result

    return resolve


def _links_from_tree(tree: Any, url: str) -> list[Link]:
    resolve = _resolver(_base_href(tree, url))
    seen: dict[str, int] = {}
    out: list[Link] = []
    contexts: dict[Any, str] = {}  # block element -> its text (the elements stay referenced)
    for anchor in tree.iter("a"):
        href = anchor.get("href")
        if not href:
            continue
        href = href.strip()
        if not href or href.startswith("#"):
            continue
        absolute = resolve(href)
        if absolute is None:
            continue
        text = _clean(anchor.text_content()) or _clean(anchor.get("title") or "")
        if absolute in seen:
            index = seen[absolute]
            if not out[index].text and text:  # keep the first link, with the best anchor text
                out[index] = Link(absolute, text, out[index].context)
            continue
        context = ""
        node = anchor.getparent()
        for _ in range(4):
            if node is None:
                break
            if node.tag in _CONTEXT_TAGS:
                # Links of one paragraph or cell share its text: rendered once per block.
                got = contexts.get(node)
                if got is None:
                    # itertext, not text_content: "<span>date</span><p>text" keeps a space.
                    got = contexts[node] = _clean(" ".join(node.itertext()))[:_CONTEXT_CHARS]
                context = got
                break
            node = node.getparent()
        seen[absolute] = len(out)
        out.append(Link(absolute, text, context))
    return out


def _parse(html: str) -> Any:
    import lxml.html

    # lxml refuses str input carrying an XML encoding declaration.
    if html.lstrip()[:5].lower() == "<?xml":
        html = html.split("?>", 1)[-1]
    if not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html)
    except Exception:  # lxml raises ParserError/ValueError on hopeless input
        return None


def _load(html: str) -> Any:
    """Parse like trafilatura does (its parser settings score better than lxml's defaults)."""
    from trafilatura.utils import load_html

    if not html.strip():
        return None
    try:
        tree = load_html(html)
    except Exception:  # hopeless markup: nothing to extract
        return None
    if tree is not None:
        _flatten_code(tree)
    return tree


def _flatten_code(tree: Any) -> None:
    """Drop the ``<span>``s inside code, keeping their text: syntax highlighting wraps every
    token in one (on Django's documentation half of a page's elements are inside ``<pre>``),
    and every later pass walks them. Same links, blocks and words; trafilatura then keeps a
    code block's line breaks. Extraction of 200 Django pages: about 10% less CPU."""
    from lxml import etree

    for code in list(tree.iter("pre", "code")):  # a list: stripping changes the tree
        if len(code):
            etree.strip_tags(code, "span")


def extract_links(html: str, base_url: str) -> list[Link]:
    """Links of ``html``: absolute, fragment-stripped, de-duplicated, http(s) only, in order."""
    tree = _parse(html)
    return [] if tree is None else _links_from_tree(tree, base_url)


_LANG_ATTR = re.compile(r"^[a-zA-Z]{2,3}")


def _html_lang(tree: Any) -> str | None:
    value = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    if not value:
        for meta in tree.iterfind(".//meta[@http-equiv]"):
            if (meta.get("http-equiv") or "").lower() == "content-language":
                value = meta.get("content")
                break
    match = _LANG_ATTR.match(value.strip()) if value else None
    return match.group(0).lower() if match else None


def _text_only(text: str, url: str, mime: str, is_html: bool) -> Extracted:
    from ..text.language import detect_language
    from ..text.units import blocks_from_text

    return Extracted(
        url=url,
        title=None,
        text=text,
        markdown=text,
        date=None,
        language=detect_language(text) if text else None,
        links=[],
        content_type=mime,
        is_html=is_html,
        blocks=blocks_from_text(text) if text else [],
    )


def extract_page(
    body: bytes | str,
    url: str,
    content_type: str | None = None,
    *,
    markdown: bool = True,
    listing: bool = False,
) -> Extracted:
    """Extract what a page says. Non-HTML content is reported by type, never parsed as HTML.

    ``text/plain``-like types keep their text; other non-HTML types (PDF, images, JSON...) get
    an empty text and ``is_html=False`` so callers can tell "nothing to read" from "empty page".
    ``markdown=False``: ``markdown`` is the plain text, not rendered (on long documentation
    pages rendering it costs about a tenth of the extraction; research never reads it).
    ``listing=True``: the page is read for its links only (a site's index, a source listing):
    no main-content pass (on such pages trafilatura costs ten times the rest); its text is the
    page's visible text, and it has no blocks.
    """
    mime, _ = _split_content_type(content_type)
    html_like = _is_html(mime, body if isinstance(body, bytes) else body[:2048])
    if not html_like:
        textual = mime in _TEXT_TYPES or (mime.startswith("text/") and mime != "text/xml")
        if not textual:
            return _text_only("", url, mime or "application/octet-stream", False)
        text = body if isinstance(body, str) else decode_body(body, content_type)[0]
        return _text_only(text.strip(), url, mime, False)

    html = body if isinstance(body, str) else decode_body(body, content_type)[0]
    tree = _load(html)
    mime = mime if mime in _HTML_TYPES else "text/html"
    if tree is None:
        return _text_only("", url, mime, True)
    links = _links_from_tree(tree, url)
    lang = _html_lang(tree)
    title, date = _title(tree), _date(tree, html, url)
    if listing:
        text = rendered = _visible_text(tree)
        blocks: list[Block] = []
    else:
        from ._blocks import container_blocks, page_blocks, plain_container

        main = _main_container(tree)
        if main is not None and plain_container(main):
            blocks = container_blocks(main)
            text = "\n".join(b.text for b in blocks)
            rendered = _markdown(blocks) if markdown else text
        else:
            text, rendered = _main_content(tree, url, markdown, main)
            blocks = page_blocks(tree, text)
    if lang is None and text:
        from ..text.language import detect_language

        lang = detect_language(text)
    return Extracted(
        url=url,
        title=title,
        text=text,
        markdown=rendered,
        date=date,
        language=lang,
        links=links,
        content_type=mime,
        is_html=True,
        blocks=blocks,
    )


_WARM_UP_PAGE = (
    "<html lang='en'><head><title>Warm-up article | Site</title>"
    "<meta property='article:published_time' content='2024-01-02'></head><body>"
    "<nav><a href='/'>Home</a> <a href='/topics/'>Topics</a></nav><article><h1>Warm-up</h1>"
    + "".join(
        f"<p>Paragraph {i} of a short article, long enough for the extractor to keep it as "
        f"main text, with <a href='/a/{i}'>a link</a> and <b>some</b> inline markup.</p>"
        for i in range(6)
    )
    + "<ul><li>One item</li><li>Another item</li></ul><table><tr><td>1</td><td>2</td></tr>"
    "</table></article><footer>Footer text</footer></body></html>"
)


def warm_up() -> None:
    """Extract a small article once: imports, compiled patterns and the options get built
    now, not during the first real page (for a fresh process that is ~10 ms vs ~2 ms)."""
    extract_page(_WARM_UP_PAGE.encode(), "http://warm-up.invalid/a", "text/html")


_OPTIONS: Any = None


def _options(url: str) -> Any:
    """trafilatura's options, built once per process (its constructor reads a ConfigParser)."""
    global _OPTIONS
    from copy import copy

    if _OPTIONS is None:
        from trafilatura.settings import Extractor

        # ``fast`` skips trafilatura's readability/justext comparison: on the article-extraction
        # benchmark it is both faster and slightly more accurate (see bench/extract_f1.py).
        _OPTIONS = Extractor(output_format="python", fast=True, comments=False, tables=True)
    options = copy(_OPTIONS)  # a copy per call: threads may extract concurrently
    options.url = options.source = url
    return options


def _main_content(tree: Any, url: str, markdown: bool, main: Any) -> tuple[str, str]:
    """Plain text and markdown of the main content, from one trafilatura pass.

    ``main``: the container ``_main_container`` found, if any, marked ``role="main"`` for the
    pass so trafilatura's own selector takes it instead of its slow "wild text" search.
    """
    import trafilatura
    from trafilatura.utils import normalize_unicode
    from trafilatura.xml import xmltotxt

    if main is not None:
        main.set("role", "main")
    try:
        doc = trafilatura.bare_extraction(tree, url=url, options=_options(url))
    finally:
        if main is not None:
            del main.attrib["role"]  # the tree goes on to page_blocks as it came
    if doc is None or isinstance(doc, dict) or doc.body is None:
        # Too little main text for trafilatura: fall back to the whole visible text.
        text = _visible_text(tree)
        return text, text
    text = normalize_unicode(doc.text or "").strip()  # already rendered by trafilatura
    if not markdown:
        return text, text
    rendered = normalize_unicode(xmltotxt(doc.body, True)).strip()
    return text, rendered or text


_MD_PREFIX = {"item": "- ", "quote": "> "}


def _markdown(blocks: list[Block]) -> str:
    """Markdown of a page's blocks: headings by level, items, quotes, table rows, fenced code."""
    out = []
    for b in blocks:
        if b.kind == "heading":
            out.append(f"{'#' * max(1, b.level)} {b.text}")
        elif b.kind == "code":
            out.append(f"```\n{b.text}\n```")
        elif b.kind == "table":
            out.append(f"| {b.text} |")
        else:
            out.append(_MD_PREFIX.get(b.kind, "") + b.text)
    return "\n\n".join(out)


_PARAGRAPHS: Any = None
_ROLES: Any = None
_MAIN_SHARE = 0.6  # of the page's paragraphs a main-content container must hold


def _main_container(tree: Any) -> Any:
    """The page's main-content container when the page marks none, else None.

    trafilatura finds the main content by its own class/id names, ``<article>``, ``<main>`` or
    ``[role=main]``; a page with none of them (Sphinx's and DocBook's themes: every page of the
    Django and PostgreSQL docs) falls back to a "wild text" search of the whole page, which
    keeps paragraphs, code and tables but drops headings and list items, and is the slowest
    part of its extraction. The container found here is the deepest element on the path to
    the page's title (its first ``<h1>`` that is not only a link, else its first ``<h2>``) that
    holds most of the page's paragraphs. When nothing in it is marked as boilerplate, the
    page's blocks are read from it directly (``_blocks.plain_container``); else trafilatura
    weighs it.
    """
    global _PARAGRAPHS, _ROLES
    if _PARAGRAPHS is None:
        from lxml import etree

        _PARAGRAPHS, _ROLES = etree.XPath("count(.//p)"), etree.XPath("//@role")
    if next(tree.iter("main", "article"), None) is not None or any(
        str(role).strip().lower() == "main" for role in _ROLES(tree)
    ):
        return None  # the page marks it: trafilatura's selectors find it and weigh it
    body = tree.find("body")
    if body is None:
        return None
    title = next((h for h in body.iter("h1") if not _only_link(h)), None)
    if title is None:
        title = next(body.iter("h2"), None)
    total = _PARAGRAPHS(body)
    if title is None or not total:
        return None
    path = set(title.iterancestors())
    node = body
    while True:
        child = next((c for c in node.iterchildren("*") if c in path), None)
        if child is None or _PARAGRAPHS(child) < _MAIN_SHARE * total:
            break
        node = child
    if node is body or node.tag not in ("div", "section"):  # trafilatura's [role] takes these
        return None
    return node


def _only_link(heading: Any) -> bool:
    """A heading whose whole text is a link (a site's name in its header), not a page title."""
    text = "".join(heading.itertext()).strip()
    linked = "".join(t for a in heading.iter("a") for t in a.itertext()).strip()
    return bool(text) and text == linked


_TITLE_SUFFIX = re.compile(r"\s+[|\u2013\u2014·•-]\s+[^|\u2013\u2014·•-]{2,40}$")
_DATE_META = (
    "article:published_time", "datepublished", "date", "pubdate", "publishdate",
    "publication_date", "dc.date", "dc.date.issued", "dcterms.created", "citation_publication_date",
    "citation_date", "og:published_time", "sailthru.date", "parsely-pub-date",
)  # fmt: skip
_ISO_DATE = re.compile(r"((?:19|20)\d\d)[-/.](\d\d?)[-/.](\d\d?)")
_JSONLD_DATE = re.compile(r'"datePublished"\s*:\s*"([^"]+)"')
_URL_DATE = re.compile(r"/((?:19|20)\d\d)/(\d\d)/(\d\d)/")


def _iso(value: str | None) -> str | None:
    match = _ISO_DATE.search(value or "")
    if not match:
        return None
    year, month, day = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def _title(tree: Any) -> str | None:
    for meta in tree.iterfind(".//meta[@property]"):
        if (meta.get("property") or "").lower() == "og:title" and (
            meta.get("content") or ""
        ).strip():
            return _clean(meta.get("content") or "")
    node = tree.find(".//title")
    if node is not None and node.text_content().strip():
        title = _clean(node.text_content())
        # "Article name | Site" -> "Article name" (only when something substantial is left).
        trimmed = _TITLE_SUFFIX.sub("", title)
        return trimmed if len(trimmed) >= 8 else title
    node = tree.find(".//h1")
    if node is not None and node.text_content().strip():
        return _clean(node.text_content())
    return None


def _date(tree: Any, html: str, url: str) -> str | None:
    """Publication date from metadata the page declares; no guessing from body text."""
    for meta in tree.iterfind(".//meta[@content]"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in _DATE_META:
            found = _iso(meta.get("content"))
            if found:
                return found
    # The pattern starts with this literal: a substring test skips the regex's scan of the
    # whole document on the pages (most) that carry no JSON-LD date.
    match = _JSONLD_DATE.search(html) if '"datePublished"' in html else None
    if match and (found := _iso(match.group(1))):
        return found
    for node in tree.iterfind(".//*[@itemprop]"):
        if (node.get("itemprop") or "").lower() == "datepublished":
            found = _iso(node.get("datetime") or node.get("content") or node.text_content())
            if found:
                return found
    for node in tree.iter("time"):
        found = _iso(node.get("datetime") or node.text_content())
        if found:
            return found
    match = _URL_DATE.search(url)
    return _iso("-".join(match.groups())) if match else None


_INVISIBLE = ("script", "style", "noscript", "template", "svg", "head")


def _visible_text(tree: Any) -> str:
    from copy import deepcopy

    body = tree.find(".//body")
    if body is None:
        return ""
    body = deepcopy(body)
    for bad in list(body.iter(*_INVISIBLE)):
        parent = bad.getparent()
        if parent is not None:
            parent.remove(bad)
    return _clean(body.text_content())
