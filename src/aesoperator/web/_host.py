"""What the web layer needs from whoever runs it: ``WebHost``.

The web layer sits below the runtime: it never imports it. A ``WebSession`` is given a host
(the runtime's ``TaskContext`` satisfies this protocol structurally) and asks it only for the
task's configuration, the page/time budget, cancellation, and where to record what happened.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..task import TaskConfig

__all__ = ["PageBudget", "WebHost"]


class PageBudget(Protocol):
    """The execution's pages and time, shared by everything it runs.

    A page is reserved *before* its first byte is sent and given back when nothing was sent,
    so ``max_pages`` is exact under any concurrency.
    """

    @property
    def max_pages(self) -> int: ...

    @property
    def pages_left(self) -> int: ...

    @property
    def time_left(self) -> float:
        """Seconds left of ``max_duration_seconds`` (never negative)."""
        ...

    def try_reserve_page(self) -> bool:
        """Reserve one page; False when the budget is spent."""
        ...

    def release_page(self) -> None:
        """Give back a reservation whose request never left."""
        ...


class WebHost(Protocol):
    """The execution a ``WebSession`` works for (``TaskContext`` in the runtime)."""

    @property
    def config(self) -> TaskConfig:
        """The task's limits and web settings (policy, rate, timeouts, browser)."""
        ...

    @property
    def budget(self) -> PageBudget: ...

    def check_cancelled(self) -> None:
        """Raise when the execution was cancelled or ran out of time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait, waking early (with an error) when the execution is cancelled."""
        ...

    def emit(self, kind: str, /, **data: Any) -> None:
        """Record a timeline event (``policy_refused``, ``retry``, ``host_wait``...)."""
        ...

    def action(self, name: str, /, **details: Any) -> AbstractContextManager[object]:
        """Record one step (``fetch``, ``crawl``...) for as long as the block runs."""
        ...

    def page_visited(self, url: str, status: int | None = None, **data: Any) -> None:
        """Count one page fetched (``pages_visited``)."""
        ...
