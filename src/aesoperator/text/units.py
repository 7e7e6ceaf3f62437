"""Text units from a document's structure: blocks, the sentences inside them, and a test for
whole sentences.

A page is first cut into ``Block``\\ s (headings with their level, paragraphs, list items,
definition terms and definitions, table rows, code, quotes, captions, navigation) by
``web.extract`` (``Extracted.blocks``), or from raw text with ``blocks_from_text`` (paragraphs
are separated by blank lines). Sentences are split inside one block only, so a sentence never
crosses a heading, a list item, a table cell or a code block.

For the research report and summaries::

    from aesoperator.text.units import candidates, sentences_of

    for s in sentences_of(page.blocks):  # every sentence of the prose blocks, in order
        s.text, s.block_index, s.heading_path  # ("8.1. Numeric Types", "8.1.1. Integer Types")
    for s in candidates(page.blocks):  # only those that can stand alone in a summary
        ...

Code, tables, headings, definition terms (API signatures) and navigation (link lists, tables
of contents, index pages) never yield sentences; a table stays available as blocks of kind
``"table"`` (one per row, cells joined by ``" | "``).

>>> blocks = blocks_from_text("Intro line.\\n\\nThe parser reads e.g. JSON. It is fast.")
>>> [s.text for s in sentences_of(blocks)]
['Intro line.', 'The parser reads e.g. JSON.', 'It is fast.']
>>> is_whole_sentence("of the UID. data must be in the range")
False
>>> is_whole_sentence("Use os.path.join() to build paths portably.")
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from .sentences import split_sentences

__all__ = [
    "PROSE",
    "Block",
    "Kind",
    "Sentence",
    "blocks_from_text",
    "candidate_texts",
    "candidates",
    "is_whole_sentence",
    "sentences_of",
]

Kind = Literal[
    "heading", "paragraph", "item", "term", "definition", "table", "code", "quote", "caption",
    "nav",
]  # fmt: skip
# Kinds whose text is prose: the only ones that yield sentences.
PROSE: frozenset[str] = frozenset({"paragraph", "item", "definition", "quote", "caption"})


@dataclass(frozen=True)
class Block:
    """One structural unit of a page, its text whitespace-collapsed.

    ``heading_path`` holds the texts of the enclosing headings, outermost first (for a heading:
    its parents); ``level`` is 1-6 for headings, 0 otherwise.
    """

    kind: Kind
    text: str
    heading_path: tuple[str, ...] = ()
    level: int = 0


@dataclass(frozen=True)
class Sentence:
    """A sentence, the index of the block it came from, and that block's headings."""

    text: str
    block_index: int
    heading_path: tuple[str, ...] = ()


_WS = re.compile(r"\s+")
_BULLET = re.compile(r"^(?:[-*•]|\d{1,3}[.)])\s+")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_TITLE_CHARS = 40


def blocks_from_text(text: str) -> list[Block]:
    """Blocks of raw text: paragraphs separated by blank lines (hard wraps joined), list items,
    markdown headings and short title lines on their own."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    for para in re.split(r"\n\s*\n", text):
        current: list[str] = []
        lines = [raw.strip() for raw in para.splitlines() if raw.strip()]
        for i, line in enumerate(lines):
            heading = _MD_HEADING.match(line)
            if heading or _BULLET.match(line):
                _flush(blocks, current, "paragraph", path)
            if heading:
                level = len(heading.group(1))
                path[:] = [p for p in path if p[0] < level]
                blocks.append(Block("heading", heading.group(2).strip(), _names(path), level))
                path.append((level, heading.group(2).strip()))
            elif _BULLET.match(line):
                _flush(blocks, [_BULLET.sub("", line)], "item", path)
            else:
                current.append(line)
                if _is_title(current, lines[i + 1 : i + 2]):
                    _flush(blocks, current, "paragraph", path)
        _flush(blocks, current, "paragraph", path)
    return blocks


def _is_title(current: list[str], following: list[str]) -> bool:
    """A short first line without an end, before a capitalised line: a title, not the start
    of a hard-wrapped sentence."""
    line = current[0]
    return (
        len(current) == 1
        and len(line) < _TITLE_CHARS
        and not _END.search(line)
        and bool(following)
        and following[0][:1].isupper()
    )


def _flush(blocks: list[Block], lines: list[str], kind: Kind, path: list[tuple[int, str]]) -> None:
    if lines:
        blocks.append(Block(kind, _WS.sub(" ", " ".join(lines)), _names(path)))
        lines.clear()


def _names(path: list[tuple[int, str]]) -> tuple[str, ...]:
    return tuple(name for _, name in path)


def sentences_of(blocks: Sequence[Block]) -> list[Sentence]:
    """Every sentence of the prose blocks, in reading order; none crosses a block."""
    out: list[Sentence] = []
    for index, block in enumerate(blocks):
        if block.kind not in PROSE:
            continue
        for text in split_sentences(block.text, lines=True):
            out.append(Sentence(text, index, block.heading_path))
    return out


def candidates(blocks: Sequence[Block]) -> list[Sentence]:
    """The sentences of ``blocks`` that can stand alone in a summary or a finding."""
    return [s for s in sentences_of(blocks) if is_whole_sentence(s.text)]


def candidate_texts(blocks: Iterable[Block]) -> str:
    """The prose of ``blocks`` as raw text, one paragraph per block (for ``summarize``)."""
    return "\n\n".join(b.text for b in blocks if b.kind in PROSE)


# Ends: terminal punctuation, then closing quotes or brackets. A colon is no end: what it
# introduces (a list, a code block) is not part of the sentence, so it cannot stand alone.
# An ellipsis is no end either: "…in the range…" was cut.
_END = re.compile(r"""[.!?。！？]["'”’»)\]]*$""")
_OPENERS = "\"'“‘«(["
# A lower-case first word is a sentence start only when it is an identifier (pg_dump,
# os.path.join(), django.db): plain lower case means the start was cut off.
_IDENTIFIER = re.compile(r"^[a-z][\w.]*(?:[_.]\w|\(\))")
_CODE = re.compile(r"[{}]|\s[=:]=\s|\s=\s|;$|^>>>|::=|^\$\s|^#include|=>|->\s*\w+\s*[:;{]")
_SYMBOLS = re.compile(r"[^\w\s.,;:'\"!?()\-’“”‘«»…/%]")
_NON_LATIN_START = re.compile(r"^[^\x00-\u024f]")


def is_whole_sentence(sentence: str) -> bool:
    """Whether ``sentence`` can stand alone: a proper start (capital, digit, quote, or an
    identifier), an end (. ! ?), at least four words, no table pipes, not code."""
    s = sentence.strip()
    if not s or "|" in s or not _END.search(s):
        return False
    if _NON_LATIN_START.match(s):
        return len(s) >= 8  # scripts without case or spaces (CJK, Arabic...): end is enough
    if len(s.split()) < 4:
        return False
    first = s.lstrip(_OPENERS)[:1]
    if not (first.isupper() or first.isdigit() or _IDENTIFIER.match(s)):
        return False
    if _CODE.search(s):
        return False
    return len(_SYMBOLS.findall(s)) <= 0.1 * len(s)
