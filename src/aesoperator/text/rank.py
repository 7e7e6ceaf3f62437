"""Centrality (LexRank: PageRank over cosine similarity of TF-IDF vectors) and MMR selection.

Pure Python on sparse vectors: inputs are a few hundred sentences at most (callers pre-select
with BM25), where this beats importing numpy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

from ._tokens import terms

__all__ = ["Vectors", "lexrank", "mmr"]

Vector = dict[str, float]


class Vectors:
    """Unit-length TF-IDF vectors of ``docs``, with cosine similarity."""

    def __init__(self, docs: Sequence[str]) -> None:
        counts = [Counter(terms(doc)) for doc in docs]
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        n = len(docs)
        self.sets = [frozenset(c) for c in counts]
        self.vectors: list[Vector] = []
        for c in counts:
            vec = {t: (1 + math.log(f)) * math.log((n + 1) / (df[t] + 0.5)) for t, f in c.items()}
            norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
            self.vectors.append({t: v / norm for t, v in vec.items()})

    def __len__(self) -> int:
        return len(self.vectors)

    def sim(self, i: int, j: int) -> float:
        a, b = self.vectors[i], self.vectors[j]
        if len(a) > len(b):
            a, b = b, a
        return sum(v * b.get(t, 0.0) for t, v in a.items())

    def jaccard(self, i: int, j: int) -> float:
        """Share of terms in common: near-duplicates score high whatever the corpus size
        (TF-IDF cosine on a handful of sentences is dominated by the few rare words)."""
        a, b = self.sets[i], self.sets[j]
        union = len(a | b)
        return len(a & b) / union if union else 1.0


def lexrank(
    vectors: Vectors, *, threshold: float = 0.02, damping: float = 0.85, iterations: int = 50
) -> list[float]:
    """Centrality of each document (sums to 1): continuous LexRank with a similarity floor."""
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [1.0]
    edges: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            s = vectors.sim(i, j)
            if s > threshold:
                edges[i].append((j, s))
                edges[j].append((i, s))
    totals = [sum(w for _, w in e) for e in edges]
    rank = [1.0 / n] * n
    for _ in range(iterations):
        dangling = sum(rank[i] for i in range(n) if totals[i] == 0)
        new = [(1 - damping) / n + damping * dangling / n] * n
        for i in range(n):
            if totals[i]:
                share = damping * rank[i] / totals[i]
                for j, w in edges[i]:
                    new[j] += share * w
        delta = sum(abs(a - b) for a, b in zip(new, rank, strict=True))
        rank = new
        if delta < 1e-6:
            break
    return rank


def mmr(
    relevance: Sequence[float],
    sim: Callable[[int, int], float],
    k: int,
    *,
    diversity: float = 0.3,
    accept: Callable[[int, list[int]], bool] | None = None,
    min_relevance: float = 0.0,
    max_similarity: float = 1.0,
    duplicate: Callable[[int, int], float] | None = None,
) -> list[int]:
    """Maximal marginal relevance: pick ``k`` indices, trading relevance for novelty.

    ``relevance`` should be scaled to [0, 1]; ``diversity`` is the weight of redundancy.
    ``accept(i, chosen)`` may veto a candidate (e.g. a length budget); candidates below
    ``min_relevance`` are never chosen (filler is worse than a shorter answer), nor those more
    similar than ``max_similarity`` to one already chosen (a near-duplicate says nothing new),
    measured by ``duplicate`` (default: ``sim``).
    """
    near = duplicate or sim
    chosen: list[int] = []
    top = max(relevance, default=0.0)
    left = {i for i, r in enumerate(relevance) if r >= min_relevance or r == top}
    while left and len(chosen) < k:
        best, best_score = -1, -math.inf
        for i in list(left):
            redundancy = max((sim(i, j) for j in chosen), default=0.0)
            if max_similarity < 1.0 and any(near(i, j) > max_similarity for j in chosen):
                left.discard(i)
                continue
            score = (1 - diversity) * relevance[i] - diversity * redundancy
            if score > best_score:
                best, best_score = i, score
        if best < 0:
            break
        left.discard(best)
        if accept is not None and not accept(best, chosen):
            continue
        chosen.append(best)
    return chosen
