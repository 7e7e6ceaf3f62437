"""The monitor's bookkeeping without a network: incident streaks (no alert storms), expiry
thresholds, and statistics that stay small however many checks a monitor runs.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from aesoperator import Task, TaskConfig
from aesoperator.skills.monitor._certs import CertInfo
from aesoperator.skills.monitor._inputs import parse
from aesoperator.skills.monitor._probe import Check
from aesoperator.skills.monitor._stats import Histogram, Series
from aesoperator.skills.monitor._watch import UrlWatch

URL = "https://example.org/"


def watch(**inputs: Any) -> UrlWatch:
    task = Task(
        name="monitor_unit",
        config=TaskConfig(requests_per_second=1),
        inputs={"url": URL, "checks": ["uptime", "latency", "ssl"], **inputs},
    )
    return UrlWatch(URL, parse(task), origin=1_700_000_000.0)


def check(i: int, ok: bool = True, ms: float = 20.0, cert: CertInfo | None = None) -> Check:
    c = Check(url=URL, at=1_700_000_000.0 + i, ok=ok, total_ms=ms, dns_ms=1, connect_ms=2,
              tls_ms=3, ttfb_ms=ms * 0.9, cert=cert)  # fmt: skip
    if ok:
        c.status = 200
    else:
        c.reason = "connection refused (connect)"
    return c


def kinds(w: UrlWatch, pattern: str) -> list[str]:
    """Feed checks described by a pattern: '.' up, 'x' down, 's' slow (2 s)."""
    out: list[str] = []
    for ch in pattern:
        c = check(w.checks, ok=ch != "x", ms=2000.0 if ch == "s" else 20.0)
        out += [a.kind for a in w.record(c)]
    return out


def test_flapping_site_makes_no_alert_storm() -> None:
    w = watch(failure_threshold=2, recovery_threshold=2)
    assert kinds(w, "x.x.x.x.x.x.x.x.") == []  # never two failures in a row
    assert kinds(w, "xx") == ["down"]
    assert kinds(w, "x.x.x.x.x.x.x") == []  # one open incident; flapping does not re-alert
    assert kinds(w, "..") == ["recovered"]
    assert kinds(w, "xxxxxxxxxxxx..") == ["down", "recovered"]
    assert w.incidents_total == 2 and w.checks == 16 + 2 + 13 + 2 + 14


def test_thresholds_are_counts_of_consecutive_checks() -> None:
    w = watch(failure_threshold=3, recovery_threshold=1, alert_threshold_ms=500)
    assert kinds(w, "xx.xx.") == []
    assert kinds(w, "xxx") == ["down"]
    assert kinds(w, ".") == ["recovered"]
    assert kinds(w, "ss.ss.") == []
    assert kinds(w, "sss") == ["latency"]
    assert kinds(w, "x") == []  # a failed check says nothing about latency
    assert kinds(w, ".") == ["recovered"]


def cert(days: float) -> CertInfo:
    now = datetime.now(UTC)
    return CertInfo("CN=example.org", "CN=Test CA", ("example.org",), (), now - timedelta(days=1),
                    now + timedelta(days=days), "1")  # fmt: skip


def test_one_ssl_expiring_alert_per_threshold() -> None:
    w = watch()  # thresholds 30, 14, 7, 1
    seen: list[Any] = []
    for i, days in enumerate([60, 29.5, 29, 20, 13.9, 13, 10, 3, 3, 0.5, 0.4, 90, 25]):
        alerts = w.record(check(i, cert=cert(days)))
        seen += [(a.kind, a.metrics["threshold_days"]) for a in alerts]
    # 3 days crosses 7 only once; 0.5 crosses 1; a renewed certificate re-arms the thresholds.
    assert seen == [
        ("ssl_expiring", 30),
        ("ssl_expiring", 14),
        ("ssl_expiring", 7),
        ("ssl_expiring", 1),
        ("ssl_expiring", 30),
    ]
    assert w.tls is not None and w.tls["valid"] and w.tls["hostname_match"]


def test_first_check_past_several_thresholds_alerts_once() -> None:
    w = watch(ssl_expiry_days=[30, 14, 7, 1])
    alerts = w.record(check(0, cert=cert(3)))
    assert [(a.kind, a.metrics["threshold_days"]) for a in alerts] == [("ssl_expiring", 7)]
    assert w.record(check(1, cert=cert(2.9))) == []


def test_histogram_percentiles_within_one_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1) for _ in range(20_000)]
    h = Histogram()
    for v in values:
        h.add(v)
    values.sort()
    for p in (50, 95, 99):
        exact = values[int(len(values) * p / 100) - 1]
        got = h.percentile(p)
        assert got is not None and abs(got - exact) / exact < 0.01, (p, got, exact)
    assert h.max == values[-1] and h.count == len(values)
    assert len(h.buckets) < 1500


def test_day_of_one_check_per_second_stays_small() -> None:
    s = Series(origin=0.0, width=1.0, cap=1440)
    for t in range(86_400):
        s.add(float(t), ok=t % 1000 != 0, total_ms=10.0 + t % 7)
    points = s.to_list()
    assert len(points) <= 1440
    assert sum(p["checks"] for p in points) == 86_400
    assert sum(p["failures"] for p in points) == 87
    assert points[0]["t"] == 0.0 and s.width == 64.0
    assert max(p["max_ms"] for p in points) == 16.0


def test_watch_summary_is_bounded_after_many_checks() -> None:
    w = watch(alert_threshold_ms=1000)
    sizes = []
    for n in (1_000, 20_000):
        while w.checks < n:
            i = w.checks
            w.record(check(i, ok=i % 97 != 0, ms=5 + (i % 50)))
        sizes.append(len(json.dumps(w.summary(1_700_000_000.0 + n))))
    assert w.failures == len(range(0, 20_000, 97))
    assert sizes[1] < 200_000 and sizes[1] < sizes[0] * 3, sizes
