"""The monitor skill end to end: tasks run through ``Aesoperator`` in worker processes against
local servers the tests control; alerts arrive in this (the caller's) process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.errors import PolicyViolation, TaskCancelled, ValidationError
from aesoperator.execution import Alert


class Alerts:
    """An ``on_alert`` handler that records where and what it was called with."""

    def __init__(self) -> None:
        self.items: list[Alert] = []
        self.pids: set[int] = set()
        self.cond = threading.Condition()

    def __call__(self, alert: Alert) -> None:
        with self.cond:
            self.items.append(alert)
            self.pids.add(os.getpid())
            self.cond.notify_all()

    def kinds(self) -> list[str]:
        with self.cond:
            return [a.kind for a in self.items]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 15.0) -> Alert:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: sum(a.kind == kind for a in self.items) >= count, timeout
            )
            assert ok, f"no {count}x {kind!r} alert within {timeout}s; got {self.kinds()}"
            return [a for a in self.items if a.kind == kind][count - 1]


def config(**kw: Any) -> TaskConfig:
    base: dict[str, Any] = {"allow_private_network": True, "requests_per_second": 20}
    return TaskConfig(**{**base, **kw})


def test_tasks_md_monitor_snippet(aesop: Aesoperator, site: Any) -> None:
    # TASKS.md's snippet; only the URL (a local site), the duration and local access changed.
    monitor_task = Task(
        name="monitor_website",
        description="Monitor website availability and performance",
        config=TaskConfig(
            max_duration_seconds=3,  # Run for 3 seconds
            requests_per_second=0.1,  # One request every 10 seconds
            allow_private_network=True,  # the site is on 127.0.0.1
        ),
        inputs={
            "url": site.url,
            "checks": ["uptime", "latency", "ssl"],
            "alert_threshold_ms": 1000,
        },
    )

    # Run monitoring task in background
    execution = aesop.execute_task_async(monitor_task)

    # Setup alert handler
    seen: list[Alert] = []

    def handle_alert(alert: Alert) -> None:
        print(f"Alert: {alert.message}")
        print(f"Metrics: {alert.metrics}")
        seen.append(alert)

    execution.on_alert(handle_alert)

    result = execution.result(timeout=30)
    assert result.planner == "skill:monitor"
    summary = result.data["urls"][site.url]
    assert summary["checks"] == 1 == site.count()  # one tick in 3 s at 0.1 per second
    assert summary["uptime_percent"] == 100.0
    assert summary["tls"] is None  # ssl does not apply to an http:// URL
    assert seen == [] and result.alerts == []
    assert execution.status().state == "completed"


def test_steady_site_completes_with_summary_and_reports(
    aesop: Aesoperator, site: Any, tmp_path: Path
) -> None:
    task = Task(
        name="monitor_steady",
        config=config(max_duration_seconds=2.5),
        inputs={"url": site.url, "checks": ["uptime", "latency", "keyword", "status"],
                "keyword": "operational", "alert_threshold_ms": 2000},
    )  # fmt: skip
    execution = aesop.execute_task_async(task)
    alerts = Alerts()
    execution.on_alert(alerts)
    result = execution.result(timeout=30)
    status = execution.status()
    assert status.state == "completed" and status.progress == 100.0
    data = result.data
    assert data["state"] == "completed"
    s = data["urls"][site.url]
    assert s["checks"] >= 10 and s["failures"] == 0 and s["uptime_percent"] == 100.0
    # Every request made was a recorded check, but for a check cut off at the very end.
    assert s["checks"] <= site.count() <= s["checks"] + data["checks_dropped"]
    assert s["checks"] + s["skipped"] + data["checks_dropped"] <= data["checks_planned"]
    assert s["status_codes"] == {"200": s["checks"]}
    lat = s["latency_ms"]
    assert lat["count"] == s["checks"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert set(lat["phases"]) == {"dns", "connect", "tls", "ttfb"}
    assert lat["phases"]["connect"]["count"] == s["checks"]
    assert lat["phases"]["tls"]["count"] == 0
    assert s["incidents"] == [] and s["incidents_total"] == 0
    assert sum(p["checks"] for p in s["series"]) == s["checks"]
    assert alerts.items == [] and result.alerts == [] and aesop.get_alerts(execution.id) == []
    # Every check asked for the page; the keyword matched on each.
    assert all(r.method == "GET" and r.path == "/" for r in site.requests)

    html = result.save_report(tmp_path / "report.html").read_text()
    assert "<svg" in html and "<polyline" in html and site.url in html
    assert "No incidents." in html and "<script" not in html
    raw = json.loads(result.save_report(tmp_path / "report.json").read_text())
    assert raw == data
    # A bounded timeline: no per-check events.
    events = aesop.get_events(execution.id)
    assert len(events) < 40, [e.kind for e in events]
    assert any(e.kind == "monitor_started" for e in events)


def test_one_down_and_one_recovered_per_outage_and_raising_handler(
    aesop: Aesoperator, site: Any, tmp_path: Path
) -> None:
    task = Task(
        name="monitor_outages",
        config=config(max_duration_seconds=20),
        inputs={"url": site.url, "checks": ["uptime", "status"], "failure_threshold": 2,
                "recovery_threshold": 2, "timeout_ms": 5000},
    )  # fmt: skip
    execution = aesop.execute_task_async(task)
    calls = {"raising": 0}

    def raising(alert: Alert) -> None:
        calls["raising"] += 1
        raise RuntimeError("a broken alert handler")

    alerts = Alerts()
    execution.on_alert(raising)
    execution.on_alert(alerts)

    site.wait_requests(5)
    site.status = 500  # outage 1: server errors
    first = alerts.wait_for("down")
    site.status = 200
    back = alerts.wait_for("recovered")
    site.stop()  # outage 2: connection refused (or reset, for a check caught mid-stop)
    second = alerts.wait_for("down", 2)
    site.start()
    alerts.wait_for("recovered", 2)
    time.sleep(0.5)  # a few healthy checks: none may alert
    execution.cancel()
    with pytest.raises(TaskCancelled):
        execution.result(timeout=15)

    assert alerts.kinds() == ["down", "recovered", "down", "recovered"]
    assert alerts.pids == {os.getpid()}  # handlers run in the caller's process
    assert calls["raising"] == 4  # it raised every time, and monitoring went on
    assert first.severity == "critical" and first.url == site.url
    assert first.metrics["status"] == 500 and "HTTP 500" in first.message
    assert first.metrics["consecutive_failures"] == 2
    assert back.incident_id == first.incident_id and back.metrics["incident_kind"] == "down"
    assert back.metrics["duration_s"] > 0 and back.severity == "info"
    reason = second.metrics["reason"]
    assert "refused" in reason or "reset" in reason, reason
    assert second.incident_id != first.incident_id
    assert first.at <= back.at <= second.at

    status = aesop.get_task_status(execution.id)
    assert status.state == "cancelled" and len(status.alerts) == 4
    assert [a.kind for a in aesop.get_alerts(execution.id)] == alerts.kinds()
    assert status.result is not None  # the summary so far is kept
    s = status.result.data["urls"][site.url]
    assert status.result.data["state"] == "cancelled"
    assert [i["kind"] for i in s["incidents"]] == ["down", "down"]
    assert all(i["end"] is not None and i["duration_s"] > 0 for i in s["incidents"])
    # The cause is the first failed check's reason (the stop may first reset a connection).
    assert "HTTP 500" in s["incidents"][0]["cause"]
    assert "HTTP" not in s["incidents"][1]["cause"] and s["incidents"][1]["cause"]
    assert 0 < s["uptime_percent"] < 100 and s["failures"] >= 4
    html = status.result.save_report(tmp_path / "outages.html").read_text()
    assert html.count("<td class='bad'>down</td>") == 2 and "HTTP 500" in html


def test_latency_alert_with_threshold_and_recovery(aesop: Aesoperator, site: Any) -> None:
    task = Task(
        name="monitor_latency",
        config=config(max_duration_seconds=20, requests_per_second=10),
        # Far apart (0.8 s slow vs ~1 ms fast) so that a loaded machine cannot blur them.
        inputs={"url": site.url, "checks": ["uptime", "latency"], "alert_threshold_ms": 400,
                "failure_threshold": 3},
    )  # fmt: skip
    execution = aesop.execute_task_async(task)
    alerts = Alerts()
    execution.on_alert(alerts)
    site.wait_requests(3)
    site.delay = 0.8
    slow = alerts.wait_for("latency")
    site.delay = 0.0
    back = alerts.wait_for("recovered")
    execution.cancel()
    with pytest.raises(TaskCancelled):
        execution.result(timeout=15)
    assert alerts.kinds() == ["latency", "recovered"]
    assert slow.metrics["threshold_ms"] == 400 and slow.metrics["total_ms"] > 400
    assert slow.metrics["consecutive_failures"] == 3
    assert "400 ms threshold for 3 checks in a row" in slow.message
    assert slow.severity == "warning"
    assert back.incident_id == slow.incident_id and back.metrics["incident_kind"] == "latency"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("valid", []), ("expiring", ["ssl_expiring"]), ("expired", ["ssl_invalid"]),
     ("wrong_host", ["ssl_invalid"])],
)  # fmt: skip
def test_tls_certificates(
    aesop: Aesoperator, tls_site: Any, ca_file: str, kind: str, expected: list[str]
) -> None:
    s = tls_site(kind)
    task = Task(
        name="monitor_tls",
        config=config(max_duration_seconds=2, requests_per_second=10),
        inputs={"url": s.url, "checks": ["uptime", "ssl"], "ca_file": ca_file},
    )
    execution = aesop.execute_task_async(task)
    alerts = Alerts()
    execution.on_alert(alerts)
    result = execution.result(timeout=30)
    summary = result.data["urls"][s.url]
    tls = summary["tls"]
    # One alert however many checks saw the same certificate.
    assert summary["checks"] >= 5
    assert alerts.kinds() == expected == [a.kind for a in result.alerts]
    assert tls["issuer"].endswith("O=Aesoperator Test CA") or "Aesoperator Test CA" in tls["issuer"]
    assert tls["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert summary["uptime_percent"] == 100.0  # the server answered; the certificate is apart
    if kind == "valid":
        assert tls["valid"] and tls["hostname_match"] and 363 < tls["days_left"] < 366
        assert "127.0.0.1" in tls["sans"] and summary["latency_ms"]["phases"]["tls"]["count"] > 0
    elif kind == "expiring":
        alert = alerts.items[0]
        assert tls["valid"] and 2.9 < tls["days_left"] < 3.1
        assert alert.metrics["threshold_days"] == 7 and 2.9 < alert.metrics["days_left"] < 3.1
        assert alert.metrics["not_after"] == tls["not_after"]
    elif kind == "expired":
        assert not tls["valid"] and "expired" in tls["error"] and tls["days_left"] < 0
        assert "expired" in alerts.items[0].message and alerts.items[0].severity == "critical"
    else:
        assert not tls["valid"] and tls["hostname_match"] is False
        assert tls["sans"] == ["wrong.example"]
        assert "mismatch" in tls["error"].lower() or "match" in tls["error"].lower()


def test_bad_certificate_is_an_outage_without_ssl_check(
    aesop: Aesoperator, tls_site: Any, ca_file: str
) -> None:
    s = tls_site("expired")
    task = Task(
        name="monitor_tls_strict",
        config=config(max_duration_seconds=1.5, requests_per_second=10),
        inputs={"url": s.url, "checks": ["uptime"], "ca_file": ca_file},
    )
    result = aesop.execute_task(task, timeout=30)
    summary = result.data["urls"][s.url]
    assert [a.kind for a in result.alerts] == ["down"]
    assert "certificate" in result.alerts[0].message
    assert summary["uptime_percent"] == 0.0
    assert s.count() == 0  # no HTTP request went over a connection that did not verify


def test_cancel_mid_run_keeps_summary(aesop: Aesoperator, site: Any) -> None:
    task = Task(
        name="monitor_cancel",
        config=config(max_duration_seconds=60, requests_per_second=10),
        inputs={"url": site.url},
    )
    execution = aesop.execute_task_async(task)
    site.wait_requests(5)
    assert execution.status().state == "running"
    assert execution.status().current_action is not None
    # current_action names the check under way (or the monitor between checks)
    assert (execution.status().current_action or "").startswith(("check http", "monitor"))
    execution.cancel()
    status = execution.wait(timeout=15)
    assert status.state == "cancelled"
    with pytest.raises(TaskCancelled):
        execution.result()
    assert status.result is not None
    data = status.result.data
    assert data["state"] == "cancelled" and data["checks_run"] >= 5
    assert data["urls"][site.url]["uptime_percent"] == 100.0
    assert data["duration_seconds"] < 60
    before = site.count()
    time.sleep(0.5)
    assert site.count() == before  # nothing checks after a cancel


def test_webhook_delivery_signed_and_retried(aesop: Aesoperator, site: Any, make_site: Any) -> None:
    hook = make_site()
    hook.script = lambda n, body: (500 if n <= 2 else 200, b"ok")  # two failures, then OK
    secret = "s3cret"
    task = Task(
        name="monitor_webhooks",
        config=config(max_duration_seconds=20, retry_delay_seconds=0.05, max_retries=3),
        inputs={"url": site.url, "webhooks": [hook.url], "webhook_secret": secret},
    )
    site.status = 503
    execution = aesop.execute_task_async(task)
    hook.wait_requests(3)
    execution.cancel()
    with pytest.raises(TaskCancelled):
        execution.result(timeout=15)

    posts = hook.requests
    assert len(posts) == 3 and all(p.method == "POST" for p in posts)
    bodies = {p.body for p in posts}
    assert len(bodies) == 1  # the same delivery, retried
    body = posts[0].body
    for p in posts:
        signed = p.headers["x-aesoperator-timestamp"].encode() + b"." + body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(p.headers["x-aesoperator-signature"], expected)
        assert p.headers["content-type"] == "application/json"
    assert len({p.headers["x-aesoperator-delivery"] for p in posts}) == 1
    payload = json.loads(body)
    assert payload["execution_id"] == execution.id
    assert payload["alert"]["kind"] == "down" and payload["alert"]["url"] == site.url
    events = [e.data for e in aesop.get_events(execution.id) if e.kind == "webhook_delivery"]
    assert [(e["attempt"], e["ok"], e["status"], e["final"]) for e in events] == [
        (1, False, 500, False),
        (2, False, 500, False),
        (3, True, 200, True),
    ]


def test_url_outside_allowed_domains_refused_before_any_request(
    aesop: Aesoperator, make_site: Any
) -> None:
    forbidden = make_site("127.0.0.2")
    task = Task(
        name="monitor_forbidden",
        config=config(max_duration_seconds=5, allowed_domains=["127.0.0.1"]),
        inputs={"url": forbidden.url, "checks": ["uptime"]},
    )
    with pytest.raises(PolicyViolation) as info:
        aesop.execute_task(task, timeout=30)
    assert info.value.rule == "allowed_domains"
    # A forbidden webhook is refused as well, before the monitored (allowed) site is checked.
    allowed = make_site()
    task = Task(
        name="monitor_forbidden_hook",
        config=config(max_duration_seconds=5, allowed_domains=["127.0.0.1"]),
        inputs={"url": allowed.url, "webhooks": [forbidden.url], "webhook_secret": "x"},
    )
    with pytest.raises(PolicyViolation):
        aesop.execute_task(task, timeout=30)
    assert forbidden.connections == 0 and forbidden.count() == 0
    assert allowed.connections == 0


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"url": "ftp://x.org/", "checks": ["uptime"]}, ["inputs.url", "ftp://x.org/", "http"]),
        ({"url": "https://x.org/", "checks": ["uptme"]}, ["inputs.checks", "'uptme'", "uptime"]),
        ({"checks": ["uptime"]}, ["inputs.url", "required"]),
        ({"url": "https://x.org/", "webhooks": ["https://h.org/"]}, ["webhook_secret"]),
        ({"url": "https://x.org/", "failure_threshold": 0}, ["inputs.failure_threshold", "0"]),
        ({"url": "https://x.org/", "expected_status": "ok"}, ["inputs.expected_status", "2xx"]),
        ({"url": "https://x.org/", "method": "HEAD", "keyword": "x"}, ["inputs.method", "GET"]),
    ],
)
def test_bad_inputs_name_field_value_and_fix(
    aesop: Aesoperator, inputs: dict[str, Any], words: list[str]
) -> None:
    task = Task(name="monitor_bad", config=config(max_duration_seconds=5), inputs=inputs)
    with pytest.raises(ValidationError) as info:
        aesop.execute_task(task, timeout=30)
    for word in words:
        assert word in str(info.value)


def test_urls_share_the_rate_fairly_with_method_and_headers(
    aesop: Aesoperator, make_site: Any
) -> None:
    a, b = make_site(), make_site()
    task = Task(
        name="monitor_two",
        config=config(max_duration_seconds=2, requests_per_second=20),
        # The first URL as people type it: results are keyed by the caller's spelling.
        inputs={"urls": [a.url.rstrip("/"), b.url], "method": "HEAD", "headers": {"X-Probe": "yes"},
                "expected_status": ["2xx"]},
    )  # fmt: skip
    result = aesop.execute_task(task, timeout=30)
    data = result.data
    assert data["interval_seconds"] == 0.1  # 20 per second shared by two URLs
    assert list(data["urls"]) == [a.url.rstrip("/"), b.url]
    ua, ub = data["urls"][a.url.rstrip("/")], data["urls"][b.url]
    assert ua["checks"] >= 5 and ub["checks"] >= 5
    # URLs take turns on the ticks: their turns differ by one at most.
    turns = [u["checks"] + u["skipped"] for u in (ua, ub)]
    assert abs(turns[0] - turns[1]) <= 1 + data["checks_dropped"]
    for s in (a, b):
        assert {r.method for r in s.requests} == {"HEAD"}
        assert all(r.headers["x-probe"] == "yes" for r in s.requests)
        assert all(r.headers["user-agent"].startswith("Aesoperator-Monitor") for r in s.requests)


def test_keyword_alert_and_recovery(aesop: Aesoperator, site: Any) -> None:
    task = Task(
        name="monitor_keyword",
        config=config(max_duration_seconds=20),
        inputs={"url": site.url, "checks": ["uptime", "keyword"], "keyword": "operational"},
    )
    execution = aesop.execute_task_async(task)
    alerts = Alerts()
    execution.on_alert(alerts)
    site.wait_requests(3)
    site.body = b"<html><body>Maintenance</body></html>"
    missing = alerts.wait_for("keyword")
    site.body = b"<html><body>All systems operational again</body></html>"
    back = alerts.wait_for("recovered")
    execution.cancel()
    with pytest.raises(TaskCancelled):
        execution.result(timeout=15)
    assert alerts.kinds() == ["keyword", "recovered"]
    assert "'operational' not found" in missing.message and missing.metrics["status"] == 200
    assert back.metrics["incident_kind"] == "keyword"
    summary = aesop.get_task_status(execution.id).result.data["urls"][site.url]  # type: ignore[union-attr]
    assert summary["uptime_percent"] == 100.0  # a missing keyword is not downtime


def test_inline_isolation_cancel_keeps_summary(site: Any, tmp_path: Path) -> None:
    with Aesoperator(data_dir=tmp_path, isolation="inline") as client:
        task = Task(
            name="monitor_inline",
            config=config(max_duration_seconds=60, requests_per_second=10),
            inputs={"url": site.url, "interval_seconds": 0.2},
        )
        execution = client.execute_task_async(task)
        site.wait_requests(3)
        execution.cancel()
        status = execution.wait(timeout=15)
    assert status.state == "cancelled" and status.result is not None
    data = status.result.data
    assert data["interval_seconds"] == 0.2 and data["checks_run"] >= 3
    checks = data["urls"][site.url]["checks"]
    assert checks <= site.count() <= checks + data["checks_dropped"]


def test_timeout_is_a_failed_check_with_its_reason(aesop: Any, site: Any) -> None:
    task = Task(
        name="monitor_timeout",
        config=config(max_duration_seconds=20, requests_per_second=10),
        inputs={"url": site.url, "timeout_ms": 200},
    )
    execution = aesop.execute_task_async(task)
    alerts = Alerts()
    execution.on_alert(alerts)
    site.wait_requests(2)
    site.delay = 1.0
    down = alerts.wait_for("down")
    site.delay = 0.0
    alerts.wait_for("recovered")
    execution.cancel()
    status = execution.wait(timeout=15)
    assert status.state == "cancelled"  # time-outs never ended the task
    assert down.metrics["reason"] == "timed out after 200 ms during response"
    assert down.metrics["status"] is None
    assert status.result is not None
    reasons = status.result.data["urls"][site.url]["failure_reasons"]
    assert set(reasons) == {"timed out after 200 ms during response"}


def test_name_that_does_not_resolve_is_an_outage_not_a_crash(aesop: Any) -> None:
    url = "http://no-such-host.invalid/"
    task = Task(
        name="monitor_dns",
        config=TaskConfig(max_duration_seconds=1.5, requests_per_second=10),
        inputs={"url": url, "checks": ["uptime", "dns"]},
    )
    result = aesop.execute_task(task, timeout=30)
    s = result.data["urls"][url]
    assert [a.kind for a in result.alerts] == ["down"]
    assert result.alerts[0].metrics["reason"].startswith("DNS lookup failed")
    assert s["checks"] >= 3 and s["failures"] == s["checks"] and s["uptime_percent"] == 0.0
    assert s["incidents"][0].get("ongoing") is True


def test_example_runs_offline(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "examples" / "monitor_website.py"
    out = tmp_path / "report.html"
    run = subprocess.run(
        [sys.executable, str(script), "--seconds", "6", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    text = run.stdout
    assert "expires in 20.0 days" in text and "is down: HTTP 503" in text
    assert "recovered from down" in text and "Monitoring completed" in text
    assert "<svg" in out.read_text()
