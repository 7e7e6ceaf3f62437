"""Metrics of the real-site research quality bench, kept apart so tests can check them.

Pure functions over plain values: what a research result cites (``cited_sources``), which
sentences it wrote (``report_sentences``), whether a sentence is a whole one
(``fragment_reasons``), and the per-topic scores (``score_topic``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# A sentence that starts with one of these continues another one ("and group names in ...").
_CONTINUATIONS = frozenset(
    ["and", "or", "nor", "of", "than", "whereas", "whose", "i.e.", "e.g.", "etc.", "respectively"]
)
_CITATION = re.compile(r"\s*(?:\[\d+(?:\s*[,;]\s*\d+)*\])+\s*$")
_END = re.compile(r"[.!?…](?:[\"'”’)\]]*)$")
# Code: fences, grammar productions, doctest and shell prompts, statements ending in ';', a
# line break inside the sentence, a block opening or closing brace. Inline identifiers are prose.
_CODE = re.compile(r"```|::=|>>>|^\$ |;\s*$|\n\s*\S|\{\s*$|^\s*\}|\)\s*\{")
_IDENTIFIER = re.compile(r"^[`\"']?[a-z][\w.$-]*[_.($0-9-]")  # pg_dump, os.path.join(), e2fs


def fragment_reasons(sentence: str) -> list[str]:
    """Why ``sentence`` is not a whole sentence; empty when it is one.

    Reasons: ``short`` (fewer than four words), ``mid-sentence`` (starts lowercase or with a
    continuation word such as "and", "of"), ``table`` (table pipes), ``code``, ``no-end``
    (no sentence-end punctuation). A lowercase start that is an identifier (``pg_dump``,
    ``os.path.join()``) is not counted as mid-sentence; a plain lowercase word (``psql``) is,
    which errs towards calling a sentence a fragment.
    """
    text = _CITATION.sub("", sentence.strip()).strip()
    reasons: list[str] = []
    words = text.split()
    if len(words) < 4:
        reasons.append("short")
    first = words[0] if words else ""
    if first and (
        first.lower().rstrip(",;:") in _CONTINUATIONS
        or (first[0].islower() and not _IDENTIFIER.match(first))
    ):
        reasons.append("mid-sentence")
    if "|" in text:
        reasons.append("table")
    if _CODE.search(text):
        reasons.append("code")
    if not _END.search(text):
        reasons.append("no-end")
    return reasons


def site_path(url: str) -> str:
    """The page's path relative to the site root: no query, no fragment, directories as index."""
    path = urlsplit(url).path.lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    return path


def cited_sources(data: Any, content: str = "") -> list[str]:
    """Cited source URLs in citation order, from ``result.data`` or else the markdown report."""
    if isinstance(data, Mapping):
        sources = data.get("sources")
        if isinstance(sources, list) and all(isinstance(s, Mapping) for s in sources):
            ordered = sorted(
                enumerate(sources),
                key=lambda p: (p[1].get("n") if isinstance(p[1].get("n"), int) else 10**9, p[0]),
            )
            urls = [str(s.get("url") or s.get("href") or "") for _, s in ordered]
            return [u for u in urls if u]
    part = content.split("## Sources", 1)
    if len(part) < 2:
        return []
    return re.findall(r"^\s*\d+\.\s*\[[^\]]*\]\((\S+?)\)", part[1], re.M)


def report_sentences(data: Any, content: str = "") -> list[str]:
    """The summary and finding sentences: ``data["passages"]`` or else the markdown report."""
    if isinstance(data, Mapping):
        passages = data.get("passages")
        if isinstance(passages, list) and passages:
            return [str(p["text"]) for p in passages if isinstance(p, Mapping) and p.get("text")]
    out: list[str] = []
    section = ""
    for line in content.splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
        elif section == "summary" and line.strip() and not line.startswith("_"):
            # Summary sentences are joined, each followed by its citation(s).
            out += [s for s in re.split(r"(?<=\])\s+", line.strip()) if s]
        elif section == "findings" and line.startswith("- ") and not line.startswith("- No "):
            out.append(line[2:])
    return [_CITATION.sub("", s).strip() for s in out]


@dataclass
class TopicScore:
    topic: str
    cited: list[str]  # site paths, citation order
    accepted: list[str]
    sentences: list[str]
    fragments: list[tuple[str, list[str]]] = field(default_factory=list)
    pages: int = 0
    seconds: float = 0.0
    error: str = ""
    read: list[str] = field(default_factory=list)  # site paths of the pages read

    @property
    def read_accepted(self) -> int:
        """Accepted pages among those read: a miss here is the crawl's, not the ranking's."""
        return len(set(self.read) & set(self.accepted))

    @property
    def relevant(self) -> int:
        return sum(p in self.accepted for p in self.cited)

    @property
    def first_ok(self) -> bool:
        return bool(self.cited) and self.cited[0] in self.accepted

    @property
    def precision(self) -> float:
        return self.relevant / len(self.cited) if self.cited else 0.0

    @property
    def recall(self) -> float:
        return len(set(self.cited) & set(self.accepted)) / max(1, len(set(self.accepted)))


def score_topic(
    topic: str,
    accepted: Iterable[str],
    data: Any,
    content: str = "",
    pages: int = 0,
    seconds: float = 0.0,
) -> TopicScore:
    cited = list(dict.fromkeys(site_path(u) for u in cited_sources(data, content)))
    sentences = report_sentences(data, content)
    score = TopicScore(topic, cited, list(accepted), sentences, pages=pages, seconds=seconds)
    score.fragments = [(s, r) for s in sentences if (r := fragment_reasons(s))]
    return score


@dataclass
class Totals:
    topics: int
    p_at_1: float  # share of topics whose first cited source is accepted (no source: a miss)
    precision: float  # relevant cited / cited, pooled over topics
    recall: float  # mean over topics of accepted pages cited / accepted pages
    fragment_rate: float  # fragments / sentences, pooled
    sentences: int
    cited: int
    empty: int  # topics with no cited source
    pages_per_second: float


def totals(scores: list[TopicScore]) -> Totals:
    n = len(scores)
    cited = sum(len(s.cited) for s in scores)
    sentences = sum(len(s.sentences) for s in scores)
    seconds = sum(s.seconds for s in scores)
    return Totals(
        topics=n,
        p_at_1=sum(s.first_ok for s in scores) / max(1, n),
        precision=sum(s.relevant for s in scores) / max(1, cited),
        recall=sum(s.recall for s in scores) / max(1, n),
        fragment_rate=sum(len(s.fragments) for s in scores) / max(1, sentences),
        sentences=sentences,
        cited=cited,
        empty=sum(not s.cited for s in scores),
        pages_per_second=sum(s.pages for s in scores) / seconds if seconds > 0 else 0.0,
    )
