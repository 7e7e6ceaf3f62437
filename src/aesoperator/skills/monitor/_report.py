"""Monitoring reports: a self-contained HTML page (inline SVG chart, no scripts) or raw JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...results import TaskResult

_W, _H, _PAD = 760, 220, 40


def write(result: TaskResult, path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(result.data, indent=2, ensure_ascii=False), encoding="utf-8")
        return True
    if suffix in (".html", ".htm"):
        path.write_text(html(result.task_name, result.data), encoding="utf-8")
        return True
    return False


def _num(value: Any, unit: str = " ms") -> str:
    return "–" if value is None else f"{value:,.1f}{unit}"


def chart(series: list[dict[str, Any]], threshold_ms: float | None = None) -> str:
    """An inline SVG of mean and max latency per time bucket; failed buckets marked in red."""
    points = [p for p in series if p["checks"]]
    if not points:
        return "<p>No checks ran.</p>"
    t0, t1 = points[0]["t"], points[-1]["t"]
    span = max(t1 - t0, 1e-9)
    peak = max([p["max_ms"] or 0.0 for p in points] + [threshold_ms or 0.0, 1.0])
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD

    def x(t: float) -> float:
        return _PAD + (t - t0) / span * inner_w if len(points) > 1 else _PAD + inner_w / 2

    def y(ms: float) -> float:
        return _PAD + inner_h - ms / peak * inner_h

    def line(key: str, colour: str) -> str:
        # A bucket where every check failed breaks the line rather than being bridged.
        runs: list[list[tuple[float, float]]] = [[]]
        for p in points:
            if p[key] is None:
                runs.append([])
            else:
                runs[-1].append((x(p["t"]), y(p[key])))
        out = []
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0]
                out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2" fill="{colour}"/>')
            elif run:
                coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
                style = f'fill="none" stroke="{colour}" stroke-width="1.5"'
                out.append(f'<polyline {style} points="{coords}"/>')
        return "".join(out)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="latency over time">',
        f'<rect x="{_PAD}" y="{_PAD}" width="{inner_w}" height="{inner_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
        line("max_ms", "#f0a040"),
        line("mean_ms", "#2060c0"),
    ]
    for p in points:
        if p["failures"]:
            parts.append(
                f'<line x1="{x(p["t"]):.1f}" x2="{x(p["t"]):.1f}" y1="{_PAD}" '
                f'y2="{_PAD + inner_h}" stroke="#d03030" stroke-opacity="0.5"/>'
            )
    if threshold_ms:
        parts.append(
            f'<line x1="{_PAD}" x2="{_PAD + inner_w}" y1="{y(threshold_ms):.1f}" '
            f'y2="{y(threshold_ms):.1f}" stroke="#d03030" stroke-dasharray="4 3"/>'
        )
    when = [datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S") for t in (t0, t1)]
    parts += [
        f'<text x="{_PAD}" y="{_H - 12}" font-size="11">{when[0]} UTC</text>',
        f'<text x="{_W - _PAD}" y="{_H - 12}" font-size="11" text-anchor="end">{when[1]}</text>',
        f'<text x="4" y="{_PAD + 4}" font-size="11">{peak:,.0f} ms</text>',
        f'<text x="4" y="{_PAD + inner_h}" font-size="11">0</text>',
        f'<text x="{_PAD + 4}" y="{_PAD - 8}" font-size="11" fill="#2060c0">mean</text>',
        f'<text x="{_PAD + 48}" y="{_PAD - 8}" font-size="11" fill="#f0a040">max</text>',
        f'<text x="{_PAD + 86}" y="{_PAD - 8}" font-size="11" fill="#d03030">failures</text>',
        "</svg>",
    ]
    return "".join(parts)


def html(title: str, data: dict[str, Any]) -> str:
    e = escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)} – monitoring report</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;"
        "text-align:left}th{background:#f4f4f4}.bad{color:#b00}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(str(data.get('state', '')))}: {e(str(data.get('started_at', '')))} → "
        f"{e(str(data.get('finished_at', '')))} ({data.get('duration_seconds', 0):.1f} s); "
        f"{data.get('checks_run', 0)} checks of {data.get('checks_planned', 0)} planned.</p>",
    ]
    for url, s in data.get("urls", {}).items():
        lat = s["latency_ms"]
        up = s["uptime_percent"]
        out.append(f"<h2>{e(url)}</h2>")
        out.append(
            "<table><tr><th>uptime</th><th>checks</th><th>failures</th><th>p50</th><th>p95</th>"
            "<th>p99</th><th>max</th></tr>"
            f"<tr><td>{'n/a' if up is None else f'{up:.3f}%'}</td><td>{s['checks']}</td>"
            f"<td>{s['failures']}</td><td>{_num(lat['p50'])}</td><td>{_num(lat['p95'])}</td>"
            f"<td>{_num(lat['p99'])}</td><td>{_num(lat['max'])}</td></tr></table>"
        )
        phases = lat.get("phases", {})
        if phases:
            out.append("<h3>Phases, p50 / p95 (ttfb counts from the start of the check)</h3>")
            out.append("<table><tr>")
            out.extend(f"<th>{e(name)}</th>" for name in phases)
            out.append("</tr><tr>")
            out.extend(f"<td>{_num(h['p50'])} / {_num(h['p95'])}</td>" for h in phases.values())
            out.append("</tr></table>")
        out.append("<h3>Latency</h3>")
        out.append(chart(s.get("series", [])))
        out.append("<h3>Incidents</h3>")
        if s["incidents"]:
            out.append(
                "<table><tr><th>kind</th><th>start</th><th>end</th><th>duration</th>"
                "<th>cause</th></tr>"
            )
            for inc in s["incidents"]:
                end = inc["end"] or ("ongoing" if inc.get("ongoing") else "–")
                out.append(
                    f"<tr><td class='bad'>{e(inc['kind'])}</td><td>{e(inc['start'])}</td>"
                    f"<td>{e(str(end))}</td><td>{_num(inc['duration_s'], ' s')}</td>"
                    f"<td>{e(str(inc['cause']))}</td></tr>"
                )
            out.append("</table>")
        else:
            out.append("<p>No incidents.</p>")
        tls = s.get("tls")
        if tls:
            out.append("<h3>TLS certificate</h3><table>")
            for key in ("valid", "error", "hostname_match", "subject", "issuer", "sans",
                        "not_before", "not_after", "days_left", "tls_version"):  # fmt: skip
                if tls.get(key) is not None:
                    value = ", ".join(tls[key]) if isinstance(tls[key], list) else tls[key]
                    out.append(f"<tr><th>{e(key)}</th><td>{e(str(value))}</td></tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "".join(out)
