"""The ``href`` of every ``<a>`` of a page and its first ``<base href>``, without building a tree.

A breadth-first crawl needs only link targets; a full parse of a 50-200 KB documentation
page (lxml) costs ten to twenty times what this tokenizer does. It reads tags the way the
HTML tokenizer does, so what a tree would not show is not read as a link either: comments,
the content of raw-text elements (``script``, ``style``, ``textarea``, ``title``...), markup
inside another tag's quoted attribute value, end tags. Attribute values are unescaped by the
attribute rules (a legacy entity without ``;`` before ``=`` or an alphanumeric stays as is:
``?a=1&copy=2``). The first of duplicated attributes wins.
"""

from __future__ import annotations

import re
from html import unescape
from html.entities import html5

__all__ = ["raw_hrefs"]

_SP = r"\t\n\f\r "
# One attribute (name, optional value) or the separators between them; possessive, so a
# tag never backtracks however malformed.
_ATTR = (
    rf"(?:[{_SP}/]++|[^{_SP}/>][^{_SP}/>=]*+"
    rf"""(?:[{_SP}]*+=[{_SP}]*+(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^{_SP}>]*+))?+)"""
)
# The attributes of a tag only skipped: quotes delimit a value only after "=" (a quote
# elsewhere is part of a name), so a ">" inside a quoted value does not end the tag.
_SKIP_ATTRS = rf"""(?:[^>"'=]++|=[{_SP}]*+(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^{_SP}>]*+)|["'])*+"""
# Elements whose content is text up to their end tag (the tokenizer's RAWTEXT and RCDATA).
_RAW = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"})
_WANTED = rf"(?i:a|base|plaintext|{'|'.join(sorted(_RAW))})(?=[{_SP}/>]|\Z)"
# Text, and every tag, comment or doctype but the start tags wanted, skipped inside the regex
# engine; then the next wanted start tag (name, attributes), if any. Two shortcuts, same
# tokens (a fifth less time on documentation pages): a plain end tag, and a tag whose first
# letter no wanted name has, skip the test of the wanted names.
_INITIALS = "".join(
    sorted({c for n in ("a", "base", "plaintext", *_RAW) for c in (n[0], n[0].upper())})
)
_NEXT = re.compile(
    rf"(?:[^<]++|</[a-zA-Z][^{_SP}/>]*+[{_SP}]*+>|<(?:(?![{_INITIALS}])|(?!{_WANTED}))(?:"
    rf"/?[a-zA-Z][^{_SP}/>]*+{_SKIP_ATTRS}(?:>|\Z)"  # another start tag, or an end tag
    r"|!--(?:-?>|.*?(?:--!?>|\Z))"  # a comment, <!--> and <!---> included
    r"|[!?/][^>]*+(?:>|\Z)"  # doctype, <?xml ...?>, a bogus comment
    r"|))*+"  # a "<" that starts nothing: text
    rf"<([a-zA-Z][^{_SP}/>]*+)((?:{_ATTR})*+)(?:>|\Z)",
    re.DOTALL,
)
_ONE_ATTR = re.compile(
    rf"([^{_SP}/>][^{_SP}/>=]*+)"
    rf"""(?:[{_SP}]*+=[{_SP}]*+(?:"([^"]*+)"?|'([^']*+)'?|([^{_SP}>]*+)))?"""
)
_RAW_END = {name: re.compile(rf"</{name}[{_SP}/>]", re.IGNORECASE) for name in _RAW}
_REF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[a-zA-Z][a-zA-Z0-9]*;?)")


def _ref(match: re.Match[str]) -> str:
    ref = match.group(1)
    if ref[0] == "#":
        return unescape(match.group(0))
    if ref[-1] == ";":
        return html5.get(ref, match.group(0))
    # Without ";": only a legacy entity taking the whole name, not followed by "=".
    after = match.string[match.end() : match.end() + 1]
    if ref in html5 and after != "=":
        return html5[ref]
    return match.group(0)


def _attr(attrs: str, wanted: str) -> str | None:
    for m in _ONE_ATTR.finditer(attrs):
        if m.group(1).lower() == wanted:
            value = m.group(2) if m.group(2) is not None else m.group(3)
            if value is None:
                value = m.group(4) or ""
            return _REF.sub(_ref, value) if "&" in value else value
    return None


def raw_hrefs(html: str) -> tuple[str | None, list[str]]:
    """The first ``<base href>`` (or None) and the ``href`` of each ``<a>``, in order, as
    written (unescaped, not resolved)."""
    base: str | None = None
    out: list[str] = []
    scan = _NEXT.match
    pos = 0
    while (m := scan(html, pos)) is not None:
        pos = m.end()
        name = m.group(1).lower()
        if name == "a":
            attrs = m.group(2)
            if "=" in attrs:
                href = _attr(attrs, "href")
                if href is not None:
                    out.append(href)
        elif name == "base":
            if base is None:
                base = _attr(m.group(2), "href")
        elif name in _RAW:
            end = _RAW_END[name].search(html, pos)
            pos = len(html) if end is None else end.start()
        else:  # plaintext: the rest is text
            break
    return base, out
