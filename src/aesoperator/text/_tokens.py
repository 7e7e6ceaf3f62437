"""Tokens for ranking: lower-cased words, stopwords out, a light suffix-stripping stemmer."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "may",
        "might",
        "must",
        "shall",
        "also",
        "however",
        "thus",
        "therefore",
        "although",
        "though",
        "yet",
        "one",
        "two",
        "new",
        "use",
        "used",
        "using",
        "many",
        "much",
        "well",
        "like",
        "get",
        "got",
        "since",
        "per",
        "via",
        "within",
        "without",
        "across",
        "among",
        "upon",
        "whether",
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "ein",
        "eine",
        "zu",
        "den",
        "mit",
        "sich",
        "auf",
        "für",
        "von",
        "dem",
        "des",
        "auch",
        "im",
        "sind",
        "le",
        "la",
        "les",
        "et",
        "des",
        "est",
        "un",
        "une",
        "du",
        "que",
        "en",
        "dans",
        "pour",
        "qui",
        "pas",
        "sur",
        "au",
        "avec",
        "ce",
        "sont",
        "par",
        "el",
        "los",
        "las",
        "y",
        "de",
        "que",
        "en",
        "un",
        "una",
        "es",
        "por",
        "con",
        "para",
        "del",
        "se",
        "no",
        "al",
        "lo",
        "como",
        "más",
        "pero",
    ]
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Strip common English inflections ("networks" -> "network", "computing" -> "comput")."""
    if len(word) <= 3 or not word.isascii():
        return word
    for suffix, keep in (
        ("ational", "ate"), ("ization", "ize"), ("fulness", "ful"), ("iveness", "ive"),
        ("ousness", "ous"), ("ations", "ate"), ("ation", "ate"), ("ities", "ity"),
        ("ments", "ment"), ("ingly", ""), ("edly", ""), ("ings", ""), ("ing", ""), ("ies", "y"),
        ("ied", "y"), ("sses", "ss"), ("es", "e"), ("ed", ""), ("ly", ""), ("s", ""),
    ):  # fmt: skip
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: len(word) - len(suffix)] + keep
    return word


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (CJK characters count as one word each)."""
    lowered = text.lower()
    tokens: list[str] = _WORD.findall(lowered)
    if not _CJK.search(lowered):  # the common case: one scan instead of one per token
        return tokens
    out: list[str] = []
    for token in tokens:
        if _CJK.search(token):
            out.extend(ch for ch in token if not ch.isspace())
        else:
            out.append(token)
    return out


class _TermOf(dict[str, str]):
    """word -> its index term, ``""`` for a stopword or a digits-only token; filled on first
    sight. A hit is a plain dict lookup in C: ``terms`` runs over every passage of every page
    read (the report's BM25 index), where a per-word Python test and call cost ~3x more."""

    def __missing__(self, word: str) -> str:
        term = "" if word in STOPWORDS or word.isdigit() else stem(word)
        if len(self) >= 1 << 17:  # bounded, like ``stem``'s cache: a long-lived worker
            self.clear()
        self[word] = term
        return term


_TERM_OF = _TermOf()


def terms(text: str) -> list[str]:
    """Index terms of ``text``: words without stopwords or digits-only tokens, stemmed."""
    # ``stem`` never returns "" for a word (it keeps at least three letters).
    return list(filter(None, map(_TERM_OF.__getitem__, words(text))))
