"""Rule-based sentence splitting that needs no downloaded data.

Sentences are returned exactly as they appear in the text (whitespace inside collapsed), so a
quoted sentence can always be found again in its source.

>>> split_sentences("Dr. Smith arrived at 3 p.m. on Monday. He left! Did he? 東京は大きい。")
['Dr. Smith arrived at 3 p.m. on Monday.', 'He left!', 'Did he?', '東京は大きい。']
"""

from __future__ import annotations

import re

__all__ = ["split_sentences"]

# Abbreviations after which a period rarely ends a sentence (lower-cased, without the dot).
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "al",
        "fig",
        "figs",
        "no",
        "nos",
        "vol",
        "vols",
        "pp",
        "ed",
        "eds",
        "approx",
        "dept",
        "est",
        "inc",
        "ltd",
        "co",
        "corp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "gen",
        "gov",
        "rep",
        "sen",
        "rev",
        "col",
        "capt",
        "lt",
        "sgt",
        "u.s",
        "u.k",
        "a.m",
        "p.m",
        "ph.d",
        "b.a",
        "m.a",
        "z.b",
        "bzw",
        "usw",
        "ca",
        "nr",
        "art",
        "abs",
        "ch",
        "sec",
        "eq",
        "eqs",
        "ref",
        "refs",
        "resp",
    ]
)
# Candidate end: terminal punctuation, optional closing quotes/brackets, then whitespace.
_END = re.compile(r"""([.!?…]+|[。！？]+|[।؟])(["'”’»)\]]*)(\s*)""")
_CJK_END = re.compile(r"[。！？]")
_WORD_BEFORE = re.compile(r"(\S+)$")
_WS = re.compile(r"\s+")


def _is_boundary(text: str, start: int, end_punct: int, after: int) -> bool:
    punct = text[end_punct]
    if punct != ".":
        return True
    nxt = text[after : after + 1]
    if not nxt:
        return True
    # "e.g. the cat": a lower-case continuation is not a new sentence.
    if nxt.islower() or nxt in ",;:)":
        return False
    match = _WORD_BEFORE.search(text[start:end_punct])
    if match is None:
        return True
    word = match.group(1).lstrip("(\"'“‘[").lower()
    if word in _ABBREVIATIONS:
        return False
    # Initials ("J. R. R. Tolkien") and enumerations ("1. First") are not ends.
    if len(word) == 1 and word.isalpha():
        return False
    if word.isdigit() and len(word) <= 2 and nxt.isdigit():
        return False
    # "Table 73.3. The", "v2.1.3. Then": a dotted number ends the sentence; dotted letters
    # ("U.S.", "e.g.") are abbreviations.
    if any(c.isdigit() for c in word):
        return True
    return "." not in word[:-1] or not all(len(p) <= 2 for p in word.split("."))


def _split_block(block: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _END.finditer(block):
        end_punct = match.start(1) + len(match.group(1)) - 1
        after = match.end()
        if (
            match.group(3) == ""
            and match.end() < len(block)
            and not _CJK_END.match(block[end_punct])
        ):
            continue  # "3.14", "example.org": no space, no break (except CJK full stops)
        if not _is_boundary(block, start, end_punct, after):
            continue
        piece = block[start : match.end(2)].strip()
        if piece:
            out.append(piece)
        start = after
    rest = block[start:].strip()
    if rest:
        out.append(rest)
    return out


_HARD_END = re.compile(r"""[.!?…:;。！？।؟]["'”’»)\]]*$""")
_ITEM = re.compile(r"^(?:[-*•#>]|\d+[.)])\s")


def _blocks(text: str) -> list[str]:
    """Paragraphs: blank lines, list items and headings always break; a hard-wrapped line
    (no end punctuation, long enough to be prose) joins the next one."""
    blocks: list[str] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            if current:
                blocks.append(" ".join(current))
                current = []
            continue
        if current and _ITEM.match(line):
            blocks.append(" ".join(current))
            current = []
        current.append(line)
        if _HARD_END.search(line) or len(line) < 60 or line.startswith("#"):
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return blocks


def split_sentences(text: str, *, lines: bool = False) -> list[str]:
    """Split ``text`` into sentences; paragraphs, list items and headings always break.

    ``lines=True`` treats every line as its own block (extracted page text, where each line is
    a paragraph or heading); otherwise short or hard-wrapped lines are joined heuristically.
    """
    sentences: list[str] = []
    for block in text.splitlines() if lines else _blocks(text):
        block = _WS.sub(" ", block).strip()
        if block:
            sentences.extend(_split_block(block))
    return sentences
