"""Built-in skill: website monitoring (uptime, latency, status, keyword, DNS and TLS checks).

A task is served by this skill when ``Task(skill="monitor")`` forces it, when its name starts
with ``monitor``, or when its inputs carry a ``url``/``urls`` together with ``checks``::

    Task(
        name="monitor_website",
        config=TaskConfig(max_duration_seconds=86400, requests_per_second=0.1),
        inputs={"url": "https://example.com", "checks": ["uptime", "latency", "ssl"],
                "alert_threshold_ms": 1000},
    )

The monitor checks on a steady schedule (``requests_per_second`` shared by the URLs) until
``max_duration_seconds``, then *completes* with a per-URL summary in ``result.data["urls"]``.
Alerts (``down``, ``recovered``, ``latency``, ``ssl_expiring``, ``ssl_invalid``, ``keyword``)
go to ``execution.on_alert`` handlers and, signed, to ``inputs.webhooks``.
``result.save_report("x.html")`` writes a self-contained report; ``.json`` the raw summary.

This module stays cheap to import: the router imports it to ask :func:`matches`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...execution import Output, TaskResult
    from ...runtime.context import TaskContext
    from ...task import Task

__all__ = ["matches", "run", "save_report"]


def matches(task: Task) -> bool:
    """Whether the monitor skill serves ``task``."""
    if task.skill is not None:
        return task.skill == "monitor"
    if task.name.lower().startswith("monitor"):
        return True
    inputs = task.inputs
    return ("url" in inputs or "urls" in inputs) and "checks" in inputs


async def run(ctx: TaskContext) -> Output:
    """Monitor the task's URLs until its ``max_duration_seconds``; return the summary."""
    from ._skill import run as _run

    return await _run(ctx)


def save_report(result: TaskResult, path: Path) -> bool:
    """Write ``.html`` (self-contained, latency chart, incidents) or ``.json`` (raw summary).

    Returns False for other extensions, so that the generic writers take over.
    """
    data: Any = result.data
    if not isinstance(data, dict) or "urls" not in data:
        return False
    from ._report import write

    return write(result, Path(path))
