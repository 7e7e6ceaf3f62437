"""Per-URL state: statistics, incidents and the decision to alert.

An incident opens after ``failure_threshold`` bad checks in a row and closes after
``recovery_threshold`` good ones; each opening and each closing makes exactly one alert, so a
flapping site cannot cause an alert storm. ``ssl_expiring`` alerts once per threshold crossed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ...results import Alert
from ._inputs import Spec
from ._probe import Check
from ._stats import Histogram, Series

MAX_INCIDENTS_KEPT = 200  # per URL; older ones are counted, not kept
_MAX_REASONS = 20
_PHASES = ("dns", "connect", "tls", "ttfb")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def check_metrics(check: Check) -> dict[str, Any]:
    """The measured values of one check, as alerts and the summary show them."""
    out: dict[str, Any] = {
        "status": check.status,
        "total_ms": check.total_ms,
        "dns_ms": check.dns_ms,
        "connect_ms": check.connect_ms,
        "tls_ms": check.tls_ms,
        "ttfb_ms": check.ttfb_ms,
        "body_bytes": check.body_bytes,
        "ip": check.ip,
        "at": _when(check.at),
    }
    if check.reason:
        out["reason"] = check.reason
    if check.tls_version:
        out["tls_version"] = check.tls_version
    return out


class _Condition:
    """Streak counting for one kind of trouble (down, latency, keyword, ssl_invalid)."""

    __slots__ = ("bad", "first_bad_at", "first_good_at", "first_reason", "good", "incident", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.bad = 0
        self.good = 0
        self.first_bad_at = 0.0
        self.first_good_at = 0.0
        self.first_reason = ""
        self.incident: dict[str, Any] | None = None

    def step(self, bad: bool, at: float, reason: str, spec: Spec) -> str | None:
        """Count one check; return ``"open"``/``"close"`` when an incident starts or ends."""
        if bad:
            if self.bad == 0:
                self.first_bad_at, self.first_reason = at, reason
            self.bad += 1
            self.good = 0
            if self.incident is None and self.bad >= spec.failure_threshold:
                self.incident = {
                    "id": f"inc_{uuid.uuid4().hex[:12]}",
                    "kind": self.kind,
                    "cause": self.first_reason,
                    "start": _when(self.first_bad_at),
                    "start_ts": self.first_bad_at,
                    "end": None,
                    "duration_s": None,
                    "failed_checks": self.bad,
                }
                return "open"
            if self.incident is not None:
                self.incident["failed_checks"] += 1
            return None
        if self.good == 0:
            self.first_good_at = at
        self.good += 1
        self.bad = 0
        if self.incident is not None and self.good >= spec.recovery_threshold:
            # It ended with the first good check of the streak that confirmed the recovery.
            self.incident["end"] = _when(self.first_good_at)
            self.incident["duration_s"] = round(self.first_good_at - self.incident["start_ts"], 3)
            return "close"
        return None


class UrlWatch:
    """Everything a monitor knows about one URL; memory does not grow with checks."""

    def __init__(self, url: str, spec: Spec, origin: float, host: str | None = None) -> None:
        self.url = url
        # The host the certificate must match, normalised by the policy (IDNA, lower case).
        self.host = host or urlsplit(url).hostname or ""
        self.spec = spec
        self.https = url.lower().startswith("https:")
        self.checks = 0
        self.failures = 0
        self.skipped = 0
        self.total = Histogram()
        self.phases = {name: Histogram() for name in _PHASES}
        self.series = Series(origin, spec.interval_per_url_s)
        self.status_codes: dict[str, int] = {}
        self.reasons: dict[str, int] = {}
        self.last: Check | None = None
        self.incidents: list[dict[str, Any]] = []
        self.incidents_total = 0
        self.down = _Condition("down")
        self.latency = _Condition("latency")
        self.keyword = _Condition("keyword")
        self.ssl_invalid = _Condition("ssl_invalid")
        self.expiry_alerted: set[float] = set()
        self.tls: dict[str, Any] | None = None

    # -- one check in, alerts out ----------------------------------------------------------------
    def record(self, check: Check) -> list[Alert]:
        spec = self.spec
        self.checks += 1
        self.last = check
        status_ok = check.status is not None and any(
            lo <= check.status <= hi for lo, hi in spec.expected_status
        )
        is_down = not check.ok or not status_ok
        reason = check.reason or (
            f"HTTP {check.status} (expected {_ranges(spec.expected_status)})" if is_down else ""
        )
        if check.status is not None:
            key = str(check.status)
            self.status_codes[key] = self.status_codes.get(key, 0) + 1
        if is_down:
            self.failures += 1
            bucket = (
                reason if len(self.reasons) < _MAX_REASONS or reason in self.reasons else "other"
            )
            self.reasons[bucket] = self.reasons.get(bucket, 0) + 1
        elif check.total_ms is not None:
            self.total.add(check.total_ms)
            for name in _PHASES:
                value = getattr(check, f"{name}_ms")
                if value is not None:
                    self.phases[name].add(value)
        self.series.add(check.at, not is_down, check.total_ms)

        alerts: list[Alert] = []
        metrics = check_metrics(check)
        self._step(self.down, is_down, check, reason, metrics, alerts)
        if not is_down and spec.alert_threshold_ms is not None and check.total_ms is not None:
            slow = check.total_ms > spec.alert_threshold_ms
            why = f"{check.total_ms:.0f} ms > {spec.alert_threshold_ms:g} ms"
            self._step(self.latency, slow, check, why, metrics, alerts)
        if not is_down and (spec.keyword or spec.keyword_absent):
            bad, why = False, ""
            if spec.keyword and not check.keyword_found:
                bad, why = True, f"keyword {spec.keyword!r} not found"
            elif spec.keyword_absent and check.keyword_absent_found:
                bad, why = True, f"keyword {spec.keyword_absent!r} present"
            self._step(self.keyword, bad, check, why, metrics, alerts)
        if self.https and "ssl" in spec.checks and (check.cert or check.tls_error):
            self._tls(check, metrics, alerts)
        return alerts

    def _step(
        self,
        cond: _Condition,
        bad: bool,
        check: Check,
        reason: str,
        metrics: dict[str, Any],
        alerts: list[Alert],
    ) -> None:
        change = cond.step(bad, check.at, reason, self.spec)
        if change == "open":
            assert cond.incident is not None
            self._keep(cond.incident)
            alerts.append(self._opened(cond, check, metrics))
        elif change == "close":
            incident = cond.incident
            assert incident is not None
            cond.incident = None
            alerts.append(
                Alert(
                    kind="recovered",
                    severity="info",
                    message=f"{self.url} recovered from {cond.kind} after "
                    f"{incident['duration_s']:.1f} s (cause: {incident['cause']})",
                    metrics={
                        **metrics,
                        "incident_kind": cond.kind,
                        "duration_s": incident["duration_s"],
                        "failed_checks": incident["failed_checks"],
                    },
                    url=self.url,
                    at=datetime.fromtimestamp(check.at, UTC),
                    incident_id=incident["id"],
                )
            )

    def _opened(self, cond: _Condition, check: Check, metrics: dict[str, Any]) -> Alert:
        spec, incident = self.spec, cond.incident
        assert incident is not None
        n = cond.bad
        extra: dict[str, Any] = {"consecutive_failures": n, "cause": incident["cause"]}
        if cond.kind == "down":
            severity, message = "critical", f"{self.url} is down: {incident['cause']}"
        elif cond.kind == "latency":
            severity = "warning"
            message = (
                f"{self.url} is slow: {check.total_ms:.0f} ms, over the "
                f"{spec.alert_threshold_ms:g} ms threshold for {n} checks in a row"
            )
            extra["threshold_ms"] = spec.alert_threshold_ms
        elif cond.kind == "keyword":
            severity, message = "warning", f"{self.url}: {incident['cause']}"
            extra["keyword"] = spec.keyword
            extra["keyword_absent"] = spec.keyword_absent
        else:
            severity = "critical"
            message = f"{self.url}: TLS certificate not valid: {incident['cause']}"
            if self.tls:
                extra["certificate"] = self.tls
        return Alert(
            kind=cond.kind,
            severity=severity,
            message=message
            if cond.kind == "latency"
            else f"{message} ({n} failed checks in a row)",
            metrics={**metrics, **extra},
            url=self.url,
            at=datetime.fromtimestamp(check.at, UTC),
            incident_id=incident["id"],
        )

    def _tls(self, check: Check, metrics: dict[str, Any], alerts: list[Alert]) -> None:
        host = self.host
        cert = check.cert
        days = cert.days_left() if cert else None
        self.tls = {
            "valid": check.tls_error is None,
            "error": check.tls_error,
            "hostname_match": cert.matches_host(host) if cert else None,
            "tls_version": check.tls_version,
            "days_left": None if days is None else round(days, 3),
            **(cert.to_dict() if cert else {}),
        }
        invalid = check.tls_error is not None
        self._step(self.ssl_invalid, invalid, check, check.tls_error or "", metrics, alerts)
        if invalid or cert is None or days is None:
            return
        if self.expiry_alerted and days > max(self.expiry_alerted):
            self.expiry_alerted.clear()  # renewed: the thresholds apply afresh
        crossed = [t for t in self.spec.ssl_expiry_days if days <= t]
        fresh = [t for t in crossed if t not in self.expiry_alerted]
        if not fresh:
            return
        self.expiry_alerted.update(crossed)
        tightest = min(fresh)
        incident = {
            "id": f"inc_{uuid.uuid4().hex[:12]}",
            "kind": "ssl_expiring",
            "cause": f"certificate expires in {days:.1f} days (threshold {tightest:g})",
            "start": _when(check.at),
            "start_ts": check.at,
            "end": None,
            "duration_s": None,
            "failed_checks": 0,
        }
        self._keep(incident)
        alerts.append(
            Alert(
                kind="ssl_expiring",
                severity="critical" if tightest <= 7 else "warning",
                message=f"TLS certificate of {host} expires in {days:.1f} days "
                f"(on {cert.not_after.date().isoformat()}; threshold {tightest:g} days)",
                metrics={
                    **metrics,
                    "days_left": round(days, 3),
                    "threshold_days": tightest,
                    "not_after": cert.not_after.isoformat(),
                    "issuer": cert.issuer,
                    "subject": cert.subject,
                },
                url=self.url,
                at=datetime.fromtimestamp(check.at, UTC),
                incident_id=incident["id"],
            )
        )

    def _keep(self, incident: dict[str, Any]) -> None:
        self.incidents_total += 1
        self.incidents.append(incident)
        if len(self.incidents) > MAX_INCIDENTS_KEPT:
            # Drop the oldest closed one; open incidents are still referenced by a condition.
            for i, old in enumerate(self.incidents):
                if old["end"] is not None or old["kind"] == "ssl_expiring":
                    del self.incidents[i]
                    break

    # -- summary ---------------------------------------------------------------------------------
    def summary(self, now: float) -> dict[str, Any]:
        incidents = []
        for inc in self.incidents:
            item = {k: v for k, v in inc.items() if k != "start_ts"}
            if item["end"] is None and item["kind"] != "ssl_expiring":
                item["ongoing"] = True
                item["duration_s"] = round(now - inc["start_ts"], 3)
            incidents.append(item)
        up = self.checks - self.failures
        return {
            "url": self.url,
            "checks": self.checks,
            "failures": self.failures,
            "skipped": self.skipped,
            "uptime_percent": round(100.0 * up / self.checks, 3) if self.checks else None,
            "status_codes": dict(self.status_codes),
            "failure_reasons": dict(self.reasons),
            "latency_ms": {
                **self.total.summary(),
                "phases": {name: h.summary() for name, h in self.phases.items()},
            },
            "tls": self.tls,
            "incidents": incidents,
            "incidents_total": self.incidents_total,
            "open_incidents": sum(1 for i in incidents if i.get("ongoing")),
            "last_check": check_metrics(self.last) if self.last else None,
            "series_bucket_seconds": round(self.series.width, 3),
            "series": self.series.to_list(),
        }


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
