"""Validate a monitor task's inputs into a frozen spec; every error names field, value and fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ...errors import ValidationError
from ...task import Task

CHECKS = ("uptime", "latency", "ssl", "status", "keyword", "dns")
DEFAULT_CHECKS = ("uptime", "latency")
METHODS = ("GET", "HEAD", "POST", "OPTIONS")
DEFAULT_INTERVAL_S = 60.0  # when neither requests_per_second nor interval_seconds is set
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Spec:
    """Everything the monitor loop needs, checked once before any request."""

    urls: tuple[str, ...]
    checks: frozenset[str]
    tick_s: float  # time between two checks of the whole monitor (URLs take turns)
    alert_threshold_ms: float | None
    expected_status: tuple[tuple[int, int], ...]
    keyword: str | None
    keyword_absent: str | None
    ssl_expiry_days: tuple[float, ...]  # descending
    failure_threshold: int
    recovery_threshold: int
    method: str
    headers: tuple[tuple[str, str], ...]
    timeout_s: float
    ca_file: str | None
    webhooks: tuple[Webhook, ...] = field(default=())

    @property
    def interval_per_url_s(self) -> float:
        return self.tick_s * len(self.urls)


def _fail(name: str, value: Any, fix: str) -> ValidationError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValidationError(f"invalid monitor input: inputs.{name}: got {shown}; {fix}")


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "give an absolute http:// or https:// URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(name, value, "give an absolute http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise _fail(name, value, "the port must be a number from 1 to 65535") from None
    return value.strip()


def _number(name: str, value: Any, *, minimum: float, integer: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer and isinstance(value, float) and not value.is_integer():
        ok = False
    if not ok or value != value or value < minimum or value in (float("inf"),):
        kind = "a whole number" if integer else "a number"
        raise _fail(name, value, f"use {kind} >= {minimum:g}")
    return float(value)


def _status_ranges(value: Any) -> tuple[tuple[int, int], ...]:
    fix = "use a code (200), a class ('2xx'), a range ('200-299') or a list of those"
    items = value if isinstance(value, list | tuple) else [value]
    out: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            out.append((item, item))
            continue
        text = str(item).strip().lower() if isinstance(item, str) else ""
        if re.fullmatch(r"[1-5]xx", text):
            base = int(text[0]) * 100
            out.append((base, base + 99))
        elif m := re.fullmatch(r"([1-5]\d\d)\s*-\s*([1-5]\d\d)", text):
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise _fail("expected_status", value, fix)
            out.append((lo, hi))
        elif re.fullmatch(r"[1-5]\d\d", text):
            out.append((int(text), int(text)))
        else:
            raise _fail("expected_status", value, fix)
    if not out:
        raise _fail("expected_status", value, fix)
    return tuple(out)


def _webhooks(inputs: dict[str, Any]) -> tuple[Webhook, ...]:
    raw = inputs.get("webhooks")
    if raw is None:
        return ()
    if isinstance(raw, str | dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise _fail("webhooks", raw, "give a list of URLs or of {'url': ..., 'secret': ...}")
    default_secret = inputs.get("webhook_secret")
    if default_secret is not None and (not isinstance(default_secret, str) or not default_secret):
        raise _fail("webhook_secret", default_secret, "give a non-empty string")
    out: list[Webhook] = []
    for i, item in enumerate(raw):
        url, secret = (item, default_secret) if isinstance(item, str) else (None, None)
        if isinstance(item, dict):
            url, secret = item.get("url"), item.get("secret", default_secret)
            unknown = set(item) - {"url", "secret"}
            if unknown:
                raise _fail(
                    f"webhooks[{i}]", item, f"unknown keys {sorted(unknown)}; use url, secret"
                )
        url = _url(f"webhooks[{i}]", url)
        if not isinstance(secret, str) or not secret:
            raise _fail(
                f"webhooks[{i}]",
                item,
                "deliveries are signed with HMAC-SHA256: set inputs.webhook_secret or a 'secret'",
            )
        out.append(Webhook(url=url, secret=secret))
    return tuple(out)


_KNOWN = {
    "url", "urls", "checks", "alert_threshold_ms", "expected_status", "keyword",
    "keyword_absent", "ssl_expiry_days", "failure_threshold", "recovery_threshold", "method",
    "headers", "timeout_ms", "webhooks", "webhook_secret", "interval_seconds", "ca_file",
}  # fmt: skip


def parse(task: Task) -> Spec:
    """Turn ``task.inputs`` (and its rate limit) into a :class:`Spec` or raise ValidationError."""
    inputs = task.inputs
    unknown = sorted(set(inputs) - _KNOWN)
    if unknown:
        raise _fail(unknown[0], inputs[unknown[0]], f"not a monitor input; known: {sorted(_KNOWN)}")

    raw_urls: list[Any] = []
    if "url" in inputs:
        raw_urls.append(inputs["url"])
    if "urls" in inputs:
        if not isinstance(inputs["urls"], list) or not inputs["urls"]:
            raise _fail("urls", inputs["urls"], "give a non-empty list of http(s) URLs")
        raw_urls.extend(inputs["urls"])
    if not raw_urls:
        raise ValidationError(
            "invalid monitor input: inputs.url: required; give the URL to watch, "
            "e.g. inputs={'url': 'https://example.com', 'checks': ['uptime']}"
        )
    urls: list[str] = []
    for i, raw in enumerate(raw_urls):
        url = _url("url" if "url" in inputs and i == 0 else f"urls[{i}]", raw)
        if url not in urls:
            urls.append(url)

    checks_raw = inputs.get("checks", list(DEFAULT_CHECKS))
    if isinstance(checks_raw, str):
        checks_raw = [checks_raw]
    if not isinstance(checks_raw, list) or not checks_raw:
        raise _fail("checks", checks_raw, f"give a non-empty list drawn from {list(CHECKS)}")
    for item in checks_raw:
        if item not in CHECKS:
            raise _fail("checks", checks_raw, f"{item!r} is not a check; use {list(CHECKS)}")
    checks = frozenset(checks_raw)

    threshold = inputs.get("alert_threshold_ms")
    alert_ms = None if threshold is None else _number("alert_threshold_ms", threshold, minimum=1)

    keyword = inputs.get("keyword")
    keyword_absent = inputs.get("keyword_absent")
    for name, kw in (("keyword", keyword), ("keyword_absent", keyword_absent)):
        if kw is not None and (not isinstance(kw, str) or not kw):
            raise _fail(name, kw, "give the non-empty text to look for in the body")
    if "keyword" in checks and keyword is None and keyword_absent is None:
        raise _fail("keyword", None, "the 'keyword' check needs inputs.keyword or keyword_absent")

    expiry_raw = inputs.get("ssl_expiry_days", [30, 14, 7, 1])
    if isinstance(expiry_raw, int | float) and not isinstance(expiry_raw, bool):
        expiry_raw = [expiry_raw]
    if not isinstance(expiry_raw, list):
        raise _fail("ssl_expiry_days", expiry_raw, "give a list of days such as [30, 14, 7, 1]")
    expiry = tuple(
        sorted({_number("ssl_expiry_days", d, minimum=0) for d in expiry_raw}, reverse=True)
    )

    failure = int(_number("failure_threshold", inputs.get("failure_threshold", 2), minimum=1,
                          integer=True))  # fmt: skip
    recovery = int(_number("recovery_threshold", inputs.get("recovery_threshold", 2), minimum=1,
                           integer=True))  # fmt: skip

    method = inputs.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _fail("method", method, f"use one of {list(METHODS)}")

    if method.upper() == "HEAD" and (keyword is not None or keyword_absent is not None):
        raise _fail("method", method, "a HEAD response has no body to search; use GET with keyword")

    headers_raw = inputs.get("headers", {})
    if not isinstance(headers_raw, dict):
        raise _fail("headers", headers_raw, "give a dict of header name to value")
    headers: list[tuple[str, str]] = []
    for key, val in headers_raw.items():
        if not isinstance(key, str) or not _TOKEN.match(key) or key.lower() in (
            "host", "connection", "content-length", "transfer-encoding",
        ):  # fmt: skip
            raise _fail("headers", {key: val}, "use a valid header name other than Host, "
                        "Connection, Content-Length, Transfer-Encoding")  # fmt: skip
        if not isinstance(val, str) or "\r" in val or "\n" in val:
            raise _fail("headers", {key: val}, "header values must be strings without newlines")
        headers.append((key, val))

    cfg = task.config
    n = len(urls)
    floor_tick = 1.0 / cfg.requests_per_second if cfg.requests_per_second else 0.0
    if "interval_seconds" in inputs:
        per_url = _number("interval_seconds", inputs["interval_seconds"], minimum=0.001)
        tick = per_url / n
        if tick < floor_tick:
            raise _fail(
                "interval_seconds",
                inputs["interval_seconds"],
                f"{n} URL(s) every {per_url:g} s exceed config.requests_per_second="
                f"{cfg.requests_per_second:g}; use at least {floor_tick * n:g} s or raise the rate",
            )
    elif cfg.requests_per_second:
        tick = floor_tick
    else:
        tick = DEFAULT_INTERVAL_S / n

    default_timeout = min(cfg.request_timeout_seconds, 10.0) * 1000
    timeout_ms = _number("timeout_ms", inputs.get("timeout_ms", default_timeout), minimum=1)

    ca_file = inputs.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not ca_file):
        raise _fail("ca_file", ca_file, "give the path of a PEM file of extra trusted CAs")

    return Spec(
        urls=tuple(urls),
        checks=checks,
        tick_s=tick,
        alert_threshold_ms=alert_ms,
        expected_status=_status_ranges(inputs.get("expected_status", ["200-399"])),
        keyword=keyword,
        keyword_absent=keyword_absent,
        ssl_expiry_days=expiry,
        failure_threshold=failure,
        recovery_threshold=recovery,
        method=method.upper(),
        headers=tuple(headers),
        timeout_s=timeout_ms / 1000.0,
        ca_file=ca_file,
        webhooks=_webhooks(inputs),
    )
