"""Constant-memory statistics: a log-bucket histogram and a self-downsampling time series.

A 24-hour monitor at one check per second makes 86,400 checks; neither structure grows with
that number, so a monitor's memory stays flat however long it runs.
"""

from __future__ import annotations

import math
from typing import Any

_BASE = 0.001  # ms: the smallest value told apart
_LOG_RATIO = math.log(1.01)  # 1 % wide buckets: percentiles within 0.5 %


class Histogram:
    """Percentiles of non-negative values with 1 % relative error in O(distinct buckets)."""

    __slots__ = ("buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.min = math.inf

    def add(self, value: float) -> None:
        index = int(math.log(max(value, _BASE) / _BASE) / _LOG_RATIO)
        self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.total += value
        self.max = max(self.max, value)
        self.min = min(self.min, value)

    def percentile(self, p: float) -> float | None:
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                mid = _BASE * math.exp((index + 0.5) * _LOG_RATIO)
                return min(max(mid, self.min), self.max)
        return self.max

    def summary(self) -> dict[str, float | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 2)

        return {
            "p50": r(self.percentile(50)),
            "p95": r(self.percentile(95)),
            "p99": r(self.percentile(99)),
            "max": r(self.max) if self.count else None,
            "mean": r(self.total / self.count) if self.count else None,
            "count": self.count,
        }


class Series:
    """Checks over time in at most ``cap`` points; past the cap, buckets double in width.

    A point is ``[start (epoch s), checks, failures, sum of total ms, max total ms]``.
    """

    __slots__ = ("cap", "origin", "points", "width")

    def __init__(self, origin: float, width: float, cap: int = 1440) -> None:
        self.origin = origin
        self.width = max(width, 1e-3)
        self.cap = cap
        self.points: list[list[float]] = []

    def _key(self, at: float) -> float:
        return self.origin + math.floor((at - self.origin) / self.width) * self.width

    def add(self, at: float, ok: bool, total_ms: float | None) -> None:
        key = self._key(at)
        ms = total_ms if ok and total_ms is not None else 0.0
        if self.points and self.points[-1][0] == key:
            p = self.points[-1]
            p[1] += 1
            p[2] += 0 if ok else 1
            p[3] += ms
            p[4] = max(p[4], ms)
            return
        self.points.append([key, 1, 0 if ok else 1, ms, ms])
        if len(self.points) > self.cap:
            self._halve()

    def _halve(self) -> None:
        self.width *= 2
        merged: list[list[float]] = []
        for p in self.points:
            key = self._key(p[0])
            if merged and merged[-1][0] == key:
                m = merged[-1]
                m[1] += p[1]
                m[2] += p[2]
                m[3] += p[3]
                m[4] = max(m[4], p[4])
            else:
                merged.append([key, *p[1:]])
        self.points = merged

    def to_list(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for t, n, fails, total, peak in self.points:
            good = n - fails
            out.append(
                {
                    "t": round(t, 3),
                    "checks": int(n),
                    "failures": int(fails),
                    "mean_ms": round(total / good, 2) if good else None,
                    "max_ms": round(peak, 2) if good else None,
                }
            )
        return out
