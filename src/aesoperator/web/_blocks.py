"""Structural blocks of a page's main content (``Extracted.blocks``).

One lxml walk over the parsed page: headings keep their level, ``<pre>`` is code, tables are
rows, link lists are navigation. trafilatura decides what the main content is: a block is kept
when its text is in trafilatura's main text (so sidebars, footers and menus go, whatever the
site's markup), and a heading when its section kept something. trafilatura's own XML is not
used for the structure: it drops DocBook's section titles and turns ``<pre>`` into quotes.
A page whose main container was found by its title and holds no boilerplate-marked element
(documentation themes) is read from that container alone, without trafilatura
(``container_blocks``).
"""

from __future__ import annotations

from typing import Any

from ..text.units import Block, Kind

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "head", "nav", "header", "footer",
     "aside", "form", "button", "select", "textarea", "iframe", "object", "math"}
)  # fmt: skip
_BLOCK_TAGS = frozenset(
    {"p", "div", "section", "article", "main", "ul", "ol", "dl", "li", "dt", "dd", "pre",
     "table", "blockquote", "figure", "figcaption", "hr", "details", "summary", "center",
     "address", "fieldset", "body", "caption", "tbody", "thead", "tr", "td", "th"}
    | set(_HEADINGS) | _SKIP
)  # fmt: skip
_KINDS: dict[str, Kind] = {
    "p": "paragraph", "li": "item", "dt": "term", "dd": "definition", "blockquote": "quote",
    "figcaption": "caption", "caption": "caption",
}  # fmt: skip
# Navigation by its usual class, id or role names (DocBook, Sphinx, common themes); the
# containment test against trafilatura's text catches the rest.
_NAV = frozenset(
    {"nav", "navheader", "navfooter", "navigation", "navbar", "sphinxsidebar",
     "sphinxsidebarwrapper", "sidebar", "toc", "toctree-wrapper", "contents", "breadcrumb",
     "breadcrumbs", "related", "headerlink", "searchbox", "global-nav", "menu", "skip-link",
     "footer", "header", "hd", "ft", "viewcode-link", "banner", "contentinfo", "complementary"}
)  # fmt: skip
# Asides whose heading ("Note", "Warning") titles only themselves, not what follows them.
_ASIDES = frozenset(
    {"note", "warning", "tip", "caution", "important", "admonition", "seealso", "hint",
     "attention", "danger", "error", "versionadded", "versionchanged", "deprecated"}
)  # fmt: skip
_INHERITED = frozenset({"item", "definition", "quote"})
_NAV_SHARE = 0.6  # a block whose text is mostly link text is navigation
_PROBE = 60  # characters of a block looked up in the main text


def _clean(text: str) -> str:
    return " ".join(text.replace("¶", " ").split())  # str.split: ~3x faster than a regex


def _skipped(el: Any) -> bool:
    tag = el.tag
    if not isinstance(tag, str) or tag in _SKIP:
        return True
    cls, ident, role = el.get("class"), el.get("id"), el.get("role")
    if cls is None and ident is None and role is None:
        return False  # most elements: no marks to test
    marks = f"{cls or ''} {ident or ''} {role or ''}".lower()
    return not _NAV.isdisjoint(marks.split())


class _Walker:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.path: list[tuple[int, str]] = []
        self.names: tuple[str, ...] = ()  # one tuple per section: pickled once, not per block

    def _emit(self, kind: Kind, text: str, links: int = 0, level: int = 0) -> None:
        if not text or text.isspace():
            return
        text = _clean(text)
        if not text:
            return
        if links > _NAV_SHARE * len(text) and kind != "heading":
            kind = "nav"
        self.blocks.append(Block(kind, text, self.names, level))

    def container(self, el: Any, kind: Kind) -> None:
        """Runs of inline content between block children become blocks of ``kind``."""
        run: list[str] = [el.text or ""]
        links = 0
        for child in el:
            tag = child.tag
            if isinstance(tag, str) and tag in _BLOCK_TAGS:
                self._emit(kind, "".join(run), links)
                run, links = [], 0
                self.element(child, kind)
            elif isinstance(tag, str) and not _skipped(child):
                text = "".join(t for t in child.itertext() if isinstance(t, str))
                run.append(text)
                if tag == "a":
                    links += len(_clean(text))
                elif len(child):  # a childless element holds no link (most inline code, em)
                    links += sum(len(_clean(a.text_content())) for a in child.iter("a"))
            run.append(child.tail or "")
        self._emit(kind, "".join(run), links)

    def element(self, el: Any, parent: Kind = "paragraph") -> None:
        if _skipped(el):
            return
        tag = el.tag
        if tag in _HEADINGS:
            level = _HEADINGS[tag]
            text = _clean(" ".join(_inline_text(el)))
            if text:
                self.path[:] = [p for p in self.path if p[0] < level]
                self.names = tuple(n for _, n in self.path)
                self._emit("heading", text, level=level)
                self.path.append((level, text))
                self.names = tuple(n for _, n in self.path)
        elif tag == "pre":
            text = "".join(el.itertext())
            if text.strip():
                self.blocks.append(Block("code", text.strip(), self.names))
        elif tag == "table":
            self.table(el)
        elif tag == "div" and not _ASIDES.isdisjoint((el.get("class") or "").lower().split()):
            path, names = list(self.path), self.names
            self.container(el, "paragraph")
            self.path, self.names = path, names
        elif tag == "p" and parent in _INHERITED:
            self.container(el, parent)  # a paragraph of a list item is part of the item
        else:
            self.container(el, _KINDS.get(tag, "paragraph"))

    def table(self, el: Any) -> None:
        for child in el.iter("caption", "tr"):
            if child.tag == "caption":
                self._emit("caption", " ".join(child.itertext()))
                continue
            cells = [_clean(" ".join(c.itertext())) for c in child if c.tag in ("td", "th")]
            self._emit("table", " | ".join(c for c in cells if c))


def _inline_text(el: Any) -> list[str]:
    parts = [el.text or ""]
    for child in el:
        if not _skipped(child):
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return parts


def _normal(text: str) -> str:
    return "".join(text.split()).lower()


def _main_blocks(blocks: list[Block], main_text: str) -> list[Block]:
    """Blocks that trafilatura counted as main content; headings of sections that kept some."""
    main = _normal(main_text.replace("¶", ""))
    kept: list[Block | None] = []
    at = 0  # blocks come in the main text's order: search on from the last one found
    for block in blocks:
        if block.kind == "heading":
            kept.append(block)
            continue
        probe = _normal(block.text.split(" | ", 1)[0])[:_PROBE]
        found = main.find(probe, at) if probe else -1
        if found < 0 and probe:
            found = main.find(probe)
        if found >= 0:
            at = found
        kept.append(block if found >= 0 else None)
    out: list[Block] = []
    for i, maybe in enumerate(kept):
        if maybe is not None and (maybe.kind != "heading" or _has_content(kept, i, maybe.level)):
            out.append(maybe)
    return out


def _has_content(kept: list[Block | None], start: int, level: int) -> bool:
    for block in kept[start + 1 :]:
        if block is None:
            continue
        if block.kind != "heading":
            return True
        if block.level <= level:
            return False
    return False


# Class names of what news and blog themes put inside an article's container: a container
# holding any of them (beyond what the walk skips) is left to trafilatura's weighing.
_BOILERPLATE = frozenset(
    {"share", "sharing", "social", "related", "comment", "comments", "newsletter", "subscribe",
     "subscription", "advert", "advertisement", "ad", "ads", "promo", "sponsor", "sponsored",
     "popup", "cookie", "cookies", "byline", "author", "recommended", "widget", "signup", "tag",
     "tags", "teaser", "outbrain", "taboola", "disqus", "footer", "header", "meta", "menu",
     "sidebar"}
)  # fmt: skip


def _boilerplate(cls: str) -> bool:
    """A class token that is, begins or ends with such a name ("share", "post-comments"), not
    one that only holds it mid-way (Sphinx's ``admonition-<slug of the note's title>``)."""
    for token in cls.lower().split():
        parts = token.replace("_", "-").split("-")
        if parts[0] in _BOILERPLATE or parts[-1] in _BOILERPLATE:
            return True
    return False


def plain_container(node: Any) -> bool:
    """True when no element the walk would read inside ``node`` has a boilerplate class."""
    stack = list(node)
    while stack:
        el = stack.pop()
        if _skipped(el):
            continue
        cls = el.get("class")
        if cls and _boilerplate(cls):
            return False
        stack.extend(el)
    return True


def container_blocks(node: Any) -> list[Block]:
    """The blocks of a known main-content container, in reading order, without trafilatura.

    For a container ``extract._main_container`` found that ``plain_container`` passes: the walk
    skips navigation by its marks, and link lists inside the container go too. (trafilatura's
    pass over such a container cost five times the rest of the extraction on the real
    documentation sites, and dropped paragraphs, definitions and list items it judged too short
    or too linked.)
    """
    walker = _Walker()
    walker.container(node, "paragraph")
    blocks: list[Block | None] = [b for b in walker.blocks if b.kind != "nav"]
    return [
        b
        for i, b in enumerate(blocks)
        if b is not None and (b.kind != "heading" or _has_content(blocks, i, b.level))
    ]


def page_blocks(tree: Any, main_text: str) -> list[Block]:
    """The blocks of ``tree``'s main content, in reading order (``main_text``: trafilatura's)."""
    # The parsed page's root is <html> with <body> as its child: found without a walk of the
    # whole tree (``.//body``, the fallback, visits every element).
    body = tree.find("body")
    if body is None:
        body = tree.find(".//body")
    if body is None or not main_text:
        return []
    walker = _Walker()
    walker.container(body, "paragraph")  # not ``element``: a body class is no navigation
    return _main_blocks(walker.blocks, main_text)
