"""The monitor loop: checks on a steady schedule until the task's duration, then a summary.

Ticks are planned against the event loop's monotonic clock (``start + k * tick``), never as
``sleep(interval)`` after a check, so the cadence does not drift with check durations. URLs take
turns on the ticks, which shares ``requests_per_second`` fairly. Checks run as their own tasks
(at most ``concurrent_requests`` at once): a slow site does not delay the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ...errors import FetchError, PolicyViolation, TaskCancelled, ValidationError
from ...results import Alert, Output
from ...runtime.context import TaskContext
from ...web.policy import Policy
from ._inputs import Spec, parse
from ._probe import Target, probe, tls_contexts
from ._stats import Histogram
from ._watch import UrlWatch
from ._webhooks import Deliveries

END_MARGIN_S = 0.5  # finish this long before the runtime's hard deadline
_POLL_S = 1.0  # the cancel flag is a fallback: the runtime also cancels the asyncio task
_PROGRESS_EVERY_S = 1.0


class _Monitor:
    def __init__(self, ctx: TaskContext, spec: Spec, policy: Policy) -> None:
        self.ctx = ctx
        self.spec = spec
        self.policy = policy
        self.loop = asyncio.get_running_loop()
        try:
            self.contexts = tls_contexts(spec.ca_file)
        except (OSError, ValueError) as exc:
            raise ValidationError(
                f"invalid monitor input: inputs.ca_file: got {spec.ca_file!r}; "
                f"cannot load it ({exc}); give the path of a readable PEM file"
            ) from None
        self.wall_start = time.time()
        self.start = self.loop.time()
        duration = ctx.config.max_duration_seconds
        # The runtime kills at its deadline; finish on our own a little before.
        self.end = min(self.start + duration, ctx.budget.deadline) - END_MARGIN_S
        self.duration = max(1e-3, self.end - self.start)
        strict = "ssl" not in spec.checks  # without an ssl check a bad certificate is an outage
        # Results are keyed by the URL as the caller wrote it; requests use the policy's form.
        self.targets = [
            Target.build(policy.check_url(url), method=spec.method, headers=spec.headers)
            for url in spec.urls
        ]
        self.watches = [
            UrlWatch(url, spec, self.wall_start, host=t.host)
            for url, t in zip(spec.urls, self.targets, strict=True)
        ]
        self.strict_tls = strict
        words: list[bytes] = []
        if spec.keyword or spec.keyword_absent:
            words = [(spec.keyword or "\x00").encode(), (spec.keyword_absent or "\x00").encode()]
        self.keywords = tuple(words)
        self.max_bytes = ctx.config.max_response_bytes
        self.lag = Histogram()
        self.planned = 0
        self.dropped = 0  # checks still in flight when the monitor ended
        self.alert_counts: dict[str, int] = {}
        self.inflight: set[asyncio.Task[None]] = set()
        self.cap = ctx.config.concurrent_requests
        self.hooks = Deliveries(
            spec.webhooks,
            policy,
            self.contexts,
            execution_id=ctx.execution_id,
            task_name=ctx.task.name,
            retries=ctx.config.max_retries,
            first_delay=ctx.config.retry_delay_seconds,
            record=lambda **info: ctx.emit("webhook_delivery", **info),
        )

    # -- the schedule --------------------------------------------------------------------------
    async def run(self) -> bool:
        """Run until the end of the duration (True) or a cancellation (False)."""
        ctx, spec, loop = self.ctx, self.spec, self.loop
        n = len(self.watches)
        ctx.emit(
            "monitor_started",
            urls=list(spec.urls),
            checks=sorted(spec.checks),
            interval_seconds=round(spec.interval_per_url_s, 6),
            until=datetime.fromtimestamp(self.wall_start + self.duration, UTC).isoformat(),
        )
        heartbeat_every = max(10.0, self.duration / 100)
        next_heartbeat = self.start + heartbeat_every
        next_progress = self.start
        # Each progress report is a store write: at most ~1,000 over the run, one a second at most.
        progress_every = max(_PROGRESS_EVERY_S, self.duration / 1000)
        k = 0
        while True:
            planned = self.start + k * spec.tick_s
            if planned >= self.end:
                return await self._wait_until(self.end)  # the monitor lasts its full duration
            if not await self._wait_until(planned):
                return False
            now = loop.time()
            behind = int((now - planned) / spec.tick_s)
            if behind >= 1:
                # The loop was held up (a suspended machine, a long GC): skip the missed ticks
                # rather than burst, since requests_per_second is a hard ceiling.
                for j in range(k, k + behind):
                    self.watches[j % n].skipped += 1
                self.planned += behind
                k += behind
                continue
            watch, target = self.watches[k % n], self.targets[k % n]
            self.planned += 1
            k += 1
            if len(self.inflight) >= self.cap:
                watch.skipped += 1
            else:
                task = loop.create_task(self._check(watch, target, planned))
                self.inflight.add(task)
                task.add_done_callback(self.inflight.discard)
            if now >= next_progress:
                next_progress = now + progress_every
                ctx.progress((now - self.start) / self.duration * 100.0)
            if now >= next_heartbeat:
                next_heartbeat = now + heartbeat_every
                ctx.emit("monitor_stats", **self._brief())

    async def _wait_until(self, when: float) -> bool:
        """Sleep until ``when`` (monotonic); False as soon as the task is cancelled."""
        while True:
            if self.ctx.cancelled:
                return False
            left = when - self.loop.time()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, _POLL_S))

    async def _check(self, watch: UrlWatch, target: Target, planned: float) -> None:
        self.lag.add(max(0.0, self.loop.time() - planned) * 1000.0)
        self.ctx.set_current_action(f"check {target.url}")
        check = await probe(
            target,
            self.policy,
            timeout=self.spec.timeout_s,
            contexts=self.contexts,
            keywords=self.keywords,
            max_bytes=self.max_bytes,
            strict_tls=self.strict_tls,
        )
        for alert in watch.record(check):
            self._alert(alert)

    def _alert(self, alert: Alert) -> None:
        self.alert_counts[alert.kind] = self.alert_counts.get(alert.kind, 0) + 1
        try:
            self.ctx.alert(alert)
        except Exception as exc:  # reporting must not stop monitoring
            with contextlib.suppress(Exception):
                self.ctx.log(f"alert delivery failed: {type(exc).__name__}: {exc}", "error")
        self.hooks.send(alert)

    async def stop(self, *, cancelled: bool) -> None:
        """Give checks in flight a moment to finish, then drop (and count) the rest."""
        if self.inflight:
            grace = 0.1 if cancelled else min(0.25, self.ctx.budget.time_left - 0.4)
            _, late = await asyncio.wait(set(self.inflight), timeout=max(0.0, grace))
            for task in late:
                task.cancel()
            self.dropped += len(late)
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        # Webhooks under way get what is left of the margin (little on a cancel: the runtime
        # kills a cancelled worker after a short grace period).
        left = 0.3 if cancelled else self.ctx.budget.time_left - END_MARGIN_S * 0.8
        await self.hooks.flush(min(left, 5.0))

    # -- results -------------------------------------------------------------------------------
    def _brief(self) -> dict[str, Any]:
        return {
            "checks": sum(w.checks for w in self.watches),
            "failures": sum(w.failures for w in self.watches),
            "uptime_percent": {
                w.url: round(100.0 * (w.checks - w.failures) / w.checks, 3) if w.checks else None
                for w in self.watches
            },
        }

    def output(self, state: str) -> Output:
        now = time.time()
        per_url = {w.url: w.summary(now) for w in self.watches}
        checks_run = sum(w.checks for w in self.watches)
        data: dict[str, Any] = {
            "state": state,
            "started_at": datetime.fromtimestamp(self.wall_start, UTC).isoformat(),
            "finished_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "duration_seconds": round(now - self.wall_start, 3),
            "interval_seconds": round(self.spec.interval_per_url_s, 6),
            "checks_planned": self.planned,
            "checks_run": checks_run,
            "checks_skipped": sum(w.skipped for w in self.watches),
            "checks_dropped": self.dropped,
            "schedule_lag_ms": self.lag.summary(),
            "alerts": dict(self.alert_counts),
            "webhooks": dict(self.hooks.stats) if self.spec.webhooks else None,
            "urls": per_url,
        }
        return Output(content=_markdown(data), summary=_one_line(data), data=data)


def _fmt(value: float | None, unit: str = " ms") -> str:
    return "–" if value is None else f"{value:,.1f}{unit}"


def _one_line(data: dict[str, Any]) -> str:
    parts = []
    for url, s in data["urls"].items():
        up = s["uptime_percent"]
        parts.append(
            f"{url}: {'n/a' if up is None else f'{up:.2f}%'} up over {s['checks']} checks, "
            f"p95 {_fmt(s['latency_ms']['p95'])}, {s['incidents_total']} incident(s)"
        )
    head = "Monitoring cancelled" if data["state"] == "cancelled" else "Monitoring completed"
    return f"{head} after {data['duration_seconds']:.0f} s. " + "; ".join(parts)


def _markdown(data: dict[str, Any]) -> str:
    lines = [f"# Monitoring report ({data['state']})", ""]
    lines.append(
        f"{data['started_at']} → {data['finished_at']} ({data['duration_seconds']:.1f} s), "
        f"one check per URL every {data['interval_seconds']:g} s; "
        f"{data['checks_run']} checks run of {data['checks_planned']} planned."
    )
    lines += ["", "| URL | uptime | checks | failures | p50 | p95 | p99 | max | incidents |"]
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for url, s in data["urls"].items():
        lat = s["latency_ms"]
        up = "n/a" if s["uptime_percent"] is None else f"{s['uptime_percent']:.2f}%"
        lines.append(
            f"| {url} | {up} | {s['checks']} | {s['failures']} | {_fmt(lat['p50'])} | "
            f"{_fmt(lat['p95'])} | {_fmt(lat['p99'])} | {_fmt(lat['max'])} | "
            f"{s['incidents_total']} |"
        )
    for url, s in data["urls"].items():
        if s["incidents"]:
            lines += ["", f"## Incidents of {url}", ""]
            for inc in s["incidents"]:
                end = inc["end"] or ("ongoing" if inc.get("ongoing") else "–")
                dur = "" if inc["duration_s"] is None else f" ({inc['duration_s']:.1f} s)"
                lines.append(f"- **{inc['kind']}** {inc['start']} → {end}{dur}: {inc['cause']}")
        tls = s["tls"]
        if tls:
            lines += ["", f"## TLS certificate of {url}", ""]
            lines.append(
                f"- valid: {tls['valid']}" + (f" ({tls['error']})" if tls["error"] else "")
            )
            for key in ("subject", "issuer", "not_after", "days_left", "tls_version"):
                if tls.get(key) is not None:
                    lines.append(f"- {key}: {tls[key]}")
    return "\n".join(lines) + "\n"


async def run(ctx: TaskContext) -> Output:
    spec = parse(ctx.task)
    policy = Policy.from_config(ctx.config)
    # Refuse before any request: every URL and webhook must pass the policy up front.
    normalised: dict[str, str] = {}  # policy's form -> the caller's first spelling of it
    for url in spec.urls:
        normalised.setdefault(policy.check_url(url), url)
    for hook in spec.webhooks:
        policy.check_url(hook.url)
    for url in normalised:
        _, host, port = policy.host_port(url)
        try:
            await policy.resolve(host, port)
        except FetchError:
            pass  # an unresolvable name is an outage to report, not a refusal
        except PolicyViolation as exc:
            if exc.rule != "dns":  # nor is a resolver's answer that is not an address
                raise
    spec = replace(spec, urls=tuple(normalised.values()))
    monitor = _Monitor(ctx, spec, policy)
    finished = False
    every = f"{spec.interval_per_url_s:g} s"
    label = f"{', '.join(spec.urls)} every {every}: {', '.join(sorted(spec.checks))}"
    # One action for the whole run names what is under way; an action per check would put
    # 86,400 records a day in the timeline.
    with ctx.action("monitor", what=label):
        try:
            finished = await monitor.run()
        except asyncio.CancelledError:
            finished = False  # the runtime cancels the task on cancel(): end with the summary
        # Shielded: a cancel arriving while we wind down must not lose the summary.
        stopping = asyncio.ensure_future(monitor.stop(cancelled=not finished))
        while not stopping.done():
            try:
                await asyncio.shield(stopping)
            except asyncio.CancelledError:
                finished = False
    out = monitor.output("completed" if finished else "cancelled")
    if not finished:
        # The runner keeps ``ctx.partial_output`` as the result of a cancelled execution.
        ctx.partial_output = out
        ctx.emit("monitor_cancelled", checks=out.data["checks_run"] if out.data else 0)
        raise TaskCancelled("cancelled; " + out.summary)
    return out
