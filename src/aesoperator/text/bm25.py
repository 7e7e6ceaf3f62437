"""Okapi BM25 over short passages (sentences or paragraphs).

>>> index = BM25(["quantum computers use qubits", "cats sleep a lot", "qubits decohere"])
>>> [round(s, 2) > 0 for s in index.scores("qubit")]
[True, False, True]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from ._tokens import terms

__all__ = ["BM25"]


class BM25:
    """An in-memory BM25 index; ``k1`` and ``b`` are the usual Okapi parameters."""

    def __init__(
        self, docs: Sequence[str | Sequence[str]], *, k1: float = 1.2, b: float = 0.75
    ) -> None:
        """``docs``: texts, or their terms already made (``terms(text)``)."""
        self.k1, self.b = k1, b
        self._tfs = [Counter(terms(doc) if isinstance(doc, str) else doc) for doc in docs]
        self._lengths = [sum(tf.values()) for tf in self._tfs]
        self._avg = (sum(self._lengths) / len(self._lengths)) if self._lengths else 0.0
        df: Counter[str] = Counter()
        for tf in self._tfs:
            df.update(tf.keys())
        n = len(self._tfs)
        # The "+1" variant keeps idf positive for terms found in most documents.
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def __len__(self) -> int:
        return len(self._tfs)

    def scores(
        self, query: str | Sequence[str], weights: dict[str, float] | None = None
    ) -> list[float]:
        """Score every document against ``query`` (text, or already-made terms)."""
        q = terms(query) if isinstance(query, str) else list(query)
        q_counts = Counter(q)
        out = []
        avg = self._avg or 1.0
        for tf, length in zip(self._tfs, self._lengths, strict=True):
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / avg)
            for term, qf in q_counts.items():
                f = tf.get(term)
                if f:
                    w = weights.get(term, 1.0) if weights else 1.0
                    score += w * qf * self.idf[term] * f * (self.k1 + 1) / (f + norm)
            out.append(score)
        return out
