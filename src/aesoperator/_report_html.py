"""A result's markdown as a self-contained HTML document (``TaskResult.save_report("r.html")``).

Only the markdown our skills write: ``#`` headings, paragraphs, ``-`` and numbered lists,
``[text](url)`` links, ``_emphasis_``, ``**strong**`` and `` `code` ``. Citations ``[n]`` link to
the numbered source list (``n. [title](url) — date``), whose entries get ``id="source-n"``.
Everything is escaped before markup is added; links keep http(s), relative and fragment URLs
only. No scripts and no external assets: the file reads the same offline.
"""

from __future__ import annotations

import re
from html import escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^[-*]\s+(.*)$")
_NUMBERED = re.compile(r"^(\d+)[.)]\s+(.*)$")
# On escaped text: [label](url), citations [n] / [1, 2], emphasis, code.
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_CITE = re.compile(r"\[(\d+(?:,\s*\d+)*)\](?!\()")
_CODE = re.compile(r"`([^`\n]+)`")
_STRONG = re.compile(r"\*\*([^*\n]+)\*\*")
_EM = re.compile(r"(?<![\w/])_([^_\n]+)_(?![\w/])")
_SAFE_URL = re.compile(r"^(?:https?://|/|#|\./|\.\./|[\w.-]+(?:/|$|\.html?))", re.I)

_STYLE = """
body{max-width:46rem;margin:2rem auto;padding:0 1rem;font:17px/1.6 Georgia,'Times New Roman',serif;
color:#1f2328;background:#fff}
h1,h2,h3{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.25}
h1{font-size:1.7rem;margin-bottom:.3rem}h2{font-size:1.3rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h3{font-size:1.08rem;margin-top:1.4rem}
a{color:#0b57d0}sup{font-size:.75em;line-height:0}a.cite{text-decoration:none}
li{margin:.3rem 0}code{font-size:.9em;background:#f3f4f6;padding:0 .2rem;border-radius:3px}
.note{color:#57606a;font-style:italic}ol.sources li:target{background:#fff8c5}
.lead{font-size:1.05rem}
"""


def _inline(text: str, sources: set[str]) -> str:
    out = escape(text, quote=True)
    codes: list[str] = []

    def keep_code(m: re.Match[str]) -> str:
        codes.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = _CODE.sub(keep_code, out)

    def link(m: re.Match[str]) -> str:
        label, url = m.group(1), m.group(2)
        if not _SAFE_URL.match(url):
            return m.group(0)
        return f'<a href="{url}">{label}</a>'

    def cite(m: re.Match[str]) -> str:
        nums = [n.strip() for n in m.group(1).split(",")]
        if not all(n in sources for n in nums):
            return m.group(0)
        refs = ", ".join(f'<a class="cite" href="#source-{n}">{n}</a>' for n in nums)
        return f"<sup>[{refs}]</sup>"

    out = _LINK.sub(link, out)
    out = _CITE.sub(cite, out)
    out = _STRONG.sub(r"<strong>\1</strong>", out)
    out = _EM.sub(r"<em>\1</em>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


def _source_numbers(lines: list[str]) -> set[str]:
    """Numbers of the entries under a "Sources" heading: the targets of citations."""
    numbers: set[str] = set()
    inside = False
    for line in lines:
        heading = _HEADING.match(line)
        if heading:
            inside = heading.group(2).strip().lower() in ("sources", "references")
        elif inside and (m := _NUMBERED.match(line.strip())):
            numbers.add(m.group(1))
    return numbers


def markdown_to_html(markdown: str, *, title: str, summary: str = "") -> str:
    lines = markdown.splitlines()
    sources = _source_numbers(lines)
    body: list[str] = []
    paragraph: list[str] = []
    open_list = ""
    in_sources = False

    def flush() -> None:
        nonlocal open_list
        if paragraph:
            text = " ".join(paragraph)
            note = text.startswith("_") and text.endswith("_")
            cls = ' class="note"' if note else ""
            body.append(f"<p{cls}>{_inline(text, sources)}</p>")
            paragraph.clear()
        if open_list:
            body.append(f"</{open_list}>")
            open_list = ""

    has_h1 = False
    for raw in lines:
        line = raw.strip()
        if not line:
            flush()
            continue
        if m := _HEADING.match(line):
            flush()
            level = len(m.group(1))
            has_h1 = has_h1 or level == 1
            in_sources = level <= 2 and m.group(2).strip().lower() in ("sources", "references")
            body.append(f"<h{level}>{_inline(m.group(2), sources)}</h{level}>")
        elif m := _BULLET.match(line):
            if paragraph or open_list != "ul":
                flush()
                body.append("<ul>")
                open_list = "ul"
            body.append(f"<li>{_inline(m.group(1), sources)}</li>")
        elif m := _NUMBERED.match(line):
            if paragraph or open_list != "ol":
                flush()
                body.append('<ol class="sources">' if in_sources else "<ol>")
                open_list = "ol"
            n = m.group(1)
            ident = f' id="source-{n}"' if in_sources else ""
            body.append(f'<li value="{n}"{ident}>{_inline(m.group(2), sources)}</li>')
        else:
            if open_list:
                flush()
            paragraph.append(line)
    flush()
    head = [] if has_h1 else [f"<h1>{escape(title)}</h1>"]
    if summary and not markdown.strip():
        head.append(f'<p class="lead">{escape(summary)}</p>')
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join([*head, *body])
        + "\n</body>\n</html>\n"
    )
