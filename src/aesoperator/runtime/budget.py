"""``Budget``: the pages and time an execution has left, shared with its sub-tasks."""

from __future__ import annotations

import threading
import time

from ..errors import PageLimitExceeded, TimeLimitExceeded


class Budget:
    """Time and pages left. Page reservations are atomic and shared with sub-task budgets.

    Reserve *before* fetching: ``max_pages`` is exact under any concurrency.
    """

    def __init__(self, max_pages: int, deadline: float, parent: Budget | None = None) -> None:
        self.max_pages = max_pages
        self.deadline = deadline  # time.monotonic() value
        self._parent = parent
        self._used = 0
        self._lock = threading.Lock()

    @property
    def pages_used(self) -> int:
        return self._used

    @property
    def pages_left(self) -> int:
        own = self.max_pages - self._used
        return min(own, self._parent.pages_left) if self._parent else own

    @property
    def time_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def try_reserve_page(self) -> bool:
        with self._lock:
            if self._used >= self.max_pages:
                return False
            if self._parent is not None and not self._parent.try_reserve_page():
                return False
            self._used += 1
            return True

    def reserve_page(self) -> None:
        if not self.try_reserve_page():
            raise PageLimitExceeded(f"max_pages={self.max_pages} reached")

    def release_page(self) -> None:
        """Give back a reservation whose request never left (refused, or not needed)."""
        with self._lock:
            if self._used > 0:
                self._used -= 1
                if self._parent is not None:
                    self._parent.release_page()

    def check_time(self) -> None:
        if time.monotonic() >= self.deadline:
            raise TimeLimitExceeded("max_duration_seconds reached")
