"""Rate ceiling, per-host politeness and the concurrency bound of one execution."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

# Requests are counted when their first bytes are written; a server sees them a little later
# and not always with the same spacing. A window slightly longer than a second keeps the
# ceiling true as counted at the server (up to 35 ms of jitter), at ~3% of throughput.
_WINDOW_MARGIN = 0.035


class RateLimiter:
    """A hard ceiling: in no window of one second do more than ``rps`` requests start.

    A sliding log (not a token bucket, which allows bursts): ``k = max(1, floor(rps))``
    requests per window of ``max(1, k / rps)`` seconds. So ``rps=5`` is 5 per second and
    ``rps=0.1`` one request per 10 s; a fractional ceiling above 1 rounds down (``2.5`` → 2/s)
    because the one-second ceiling must hold in every window.
    """

    def __init__(self, rps: float | None) -> None:
        self._k = 0 if rps is None else max(1, math.floor(rps))
        self._window = 0.0 if rps is None else max(1.0, self._k / rps) + _WINDOW_MARGIN
        self._log: deque[list[float]] = deque()
        self._lock = asyncio.Lock()

    @property
    def unlimited(self) -> bool:
        return self._k == 0

    async def acquire(self) -> list[float] | None:
        """Wait for a slot; return it (a one-item list) so ``mark_sent`` can move it later."""
        if self._k == 0:
            return None
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                now = time.monotonic()
                while self._log and self._log[0][0] <= now - self._window:
                    self._log.popleft()
                if len(self._log) < self._k:
                    slot = [now]
                    self._log.append(slot)
                    return slot
                await asyncio.sleep(max(0.0, self._log[0][0] + self._window - now))

    @staticmethod
    def mark_sent(slot: list[float] | None) -> None:
        """The request's first bytes leave now: count it from here, not from ``acquire``.

        Opening a connection can take tens of milliseconds; a server counts arrivals, so the
        window must start when the request is written, or two could land in one second.
        """
        if slot is not None:
            slot[0] = max(slot[0], time.monotonic())


class HostGate:
    """Per-host earliest start times: robots.txt crawl-delay and ``Retry-After``."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._why: dict[str, str] = {}  # what set _next: "Retry-After: 120", "Crawl-delay: 5"
        self._delay: dict[str, float] = {}

    def set_delay(self, host: str, seconds: float) -> None:
        self._delay[host] = max(0.0, seconds)

    def back_off(self, host: str, seconds: float, why: str) -> None:
        """The host asked us to wait (``Retry-After``): nobody starts a request before then."""
        until = time.monotonic() + max(0.0, seconds)
        if until > self._next.get(host, 0.0):
            self._next[host], self._why[host] = until, why

    async def wait(self, host: str, before: Callable[[float, str], None]) -> None:
        """Wait for the host's turn. ``before(seconds, why)`` is called before each sleep (the
        wait may grow meanwhile: a 429 to another request); it may raise to give up."""
        while True:
            now = time.monotonic()
            start = self._next.get(host, 0.0)
            if start <= now:
                delay = self._delay.get(host, 0.0)
                if delay:
                    self._next[host] = now + delay
                    self._why[host] = f"robots.txt Crawl-delay: {delay:g}"
                return
            before(start - now, self._why.get(host, ""))
            await asyncio.sleep(start - now)
