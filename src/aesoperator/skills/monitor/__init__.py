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

Inputs (all optional but ``url``/``urls``):

* ``checks``: any of ``uptime``, ``latency``, ``ssl``, ``status``, ``keyword``, ``dns``
  (default ``["uptime", "latency"]``). Every check measures DNS, connect, TLS, time to first
  byte and total time (ms; ``ttfb`` and ``total`` count from the start of the check), status
  and body size. A check that fails (time-out, refused, unexpected status, DNS) is recorded
  with its reason. With ``ssl``, a certificate that does not verify raises ``ssl_invalid``
  and the server is still measured; without it, such a certificate makes the check fail.
* ``alert_threshold_ms``: a ``latency`` incident opens when the total time is over it.
* ``expected_status``: ``200``, ``"2xx"``, ``"200-299"`` or a list (default ``"200-399"``).
  Redirects are not followed: a 3xx is the site's answer (up, by default).
* ``keyword`` / ``keyword_absent``: text that must (must not) be in the body.
* ``ssl_expiry_days``: ``ssl_expiring`` thresholds (default ``[30, 14, 7, 1]``), one alert
  per threshold crossed (for the tightest, when one check crosses several: a certificate first
  seen with 3 days left makes one alert, at 7); a renewed certificate re-arms them.
* ``failure_threshold`` / ``recovery_threshold``: consecutive bad / good checks that open /
  close an incident (default 2 / 2). One alert per opening and one ``recovered`` per closing.
* ``method`` (``GET``, ``HEAD``, ``POST``, ``OPTIONS``), ``headers``, ``timeout_ms``
  (default ``min(request_timeout_seconds, 10 s)``), ``interval_seconds`` (per URL; default
  from ``requests_per_second``, which URLs share in turn, else 60 s), ``ca_file`` (extra
  trusted CAs, PEM).
* ``webhooks`` (URLs or ``{"url", "secret"}``) and ``webhook_secret``: each alert is POSTed
  as JSON with ``X-Aesoperator-Signature: sha256=<HMAC-SHA256 of the body>`` and
  ``X-Aesoperator-Delivery`` (the same on every retry), retried with backoff
  (``max_retries``, ``retry_delay_seconds``); every attempt is a ``webhook_delivery`` event.

Every request (checks and webhooks) passes the task's :class:`aesoperator.web.Policy` and
connects only to the addresses it approved; a URL the policy refuses fails the task before
any request. Checks do not count against ``max_pages``. Cancelling ends the execution as
``cancelled`` with the summary so far in ``status.result``.

This module stays cheap to import: the router imports it to ask :func:`matches`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...results import Output, TaskResult
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
