"""A finished execution's result as one HTML document, for the execution page's report frame.

Reuses the reports the package already writes: the research (markdown) report with clickable
citations, the monitor's page with its latency chart and incidents, the data report's tables,
to which a bar chart of the main table is added here. Every value that came from a page or a
task is escaped by those writers; the frame is served sandboxed, without scripts.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from ...results import TaskResult

_EXTERNAL = re.compile(r'<a href="(https?://)')
_W, _H, _PAD = 760, 240, 48


def result_html(result: TaskResult) -> str:
    skill = result.planner.removeprefix("skill:") if result.planner.startswith("skill:") else ""
    data = result.data if isinstance(result.data, dict) else None
    if skill == "monitor" and data is not None and "urls" in data:
        from ...skills.monitor._report import html as monitor_html

        page = monitor_html(result.task_name, data)
    elif skill == "data" and data is not None and "tables" in data:
        from ...skills.data._report import html_report

        metrics = "<h2>Metrics</h2>"
        page = html_report(data).replace(metrics, _data_chart(data) + metrics, 1)
    else:
        page = result._html()
    # Sources open in a new tab: the frame is sandboxed and most sites refuse to be framed.
    return _EXTERNAL.sub(r'<a target="_blank" rel="noopener noreferrer" href="\1', page)


def _data_chart(data: dict[str, Any]) -> str:
    """Bars of the first numeric column of the data report's main table (revenue by period)."""
    tables: dict[str, list[dict[str, Any]]] = data.get("tables") or {}
    name = next((n for n in ("by_period", "by_file") if tables.get(n)), None)
    name = name or next((n for n, rows in tables.items() if rows), None)
    if name is None:
        return ""
    rows = tables[name][:40]
    label_col = next(iter(rows[0]))
    value_col = next(
        (c for c in ("revenue", "orders", "units") if c in rows[0]),
        next((c for c in rows[0] if c != label_col and _is_num(rows[0][c])), None),
    )
    if value_col is None:
        return ""
    values = [float(r[value_col]) if _is_num(r.get(value_col)) else 0.0 for r in rows]
    peak = max([abs(v) for v in values] + [1e-9])
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD
    step = inner_w / len(rows)
    bar = max(step * 0.7, 1.0)
    parts = [
        f"<h2>{escape(value_col)} by {escape(label_col)}</h2>",
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(value_col)} by '
        f'{escape(label_col)}">',
        f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{_PAD + inner_h}" y2="{_PAD + inner_h}" '
        'stroke="#999"/>',
    ]
    for i, (row, value) in enumerate(zip(rows, values, strict=True)):
        h = abs(value) / peak * inner_h
        x = _PAD + i * step + (step - bar) / 2
        colour = "#1f4e78" if value >= 0 else "#b03030"
        label = escape(str(row.get(label_col, "")))
        parts.append(
            f'<rect x="{x:.1f}" y="{_PAD + inner_h - h:.1f}" width="{bar:.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{label}: {value:,.2f}</title></rect>'
        )
        if len(rows) <= 12:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{_H - _PAD + 16}" font-size="11" '
                f'text-anchor="middle">{label[:14]}</text>'
            )
    parts.append(f'<text x="4" y="{_PAD + 4}" font-size="11">{peak:,.0f}</text>')
    parts.append(f'<text x="4" y="{_PAD + inner_h}" font-size="11">0</text></svg>')
    return "".join(parts)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
