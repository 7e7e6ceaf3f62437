"""Reports of a data result: Excel workbook, CSV, JSON, Markdown, HTML and Parquet.

Every writer works from ``result.data`` alone, so ``result.save_report(path)`` rebuilds the same
report in any process. Text from the data is always written as text: a cell that looks like a
formula (``=HYPERLINK(...)``) stays a string in Excel and is defused in CSV.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT_BY_SUFFIX = {
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".csv": "csv",
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "markdown",
    ".html": "html",
    ".htm": "html",
    ".parquet": "parquet",
}
EXTENSION = {
    "excel": "xlsx",
    "csv": "csv",
    "json": "json",
    "markdown": "md",
    "html": "html",
    "parquet": "parquet",
}
_MONEY = {"revenue", "gross_revenue", "refunds", "average_order_value", "refund_amount"}
_PCT = {"growth"}
_SHARE = {"share"}
_INT = {"orders", "customers", "rows", "refund_rows", "rows_read", "rows_used", "rows_skipped"}
_LABELS = {
    "revenue": "Revenue (net)",
    "gross_revenue": "Gross revenue",
    "refunds": "Refunds",
    "growth": "Growth",
    "customers": "Customers",
    "orders": "Orders",
    "average_order_value": "Average order value",
    "units": "Units",
    "rows": "Rows",
}
_TITLES = {
    "by_period": "Revenue by period",
    "by_file": "Revenue by file",
    "top_products": "Top products",
    "top_customers": "Top customers",
}


def title_of(name: str, data: dict[str, Any]) -> str:
    if name == "by_period":
        return f"Revenue by {data.get('period', 'period')}"
    if name in _TITLES:
        return _TITLES[name]
    if name.startswith("revenue_by_"):
        return "Revenue by " + name.removeprefix("revenue_by_")
    if name.startswith("by_"):
        return "Metrics by " + name.removeprefix("by_")
    return name


def _kind(column: str) -> str:
    if column in _MONEY:
        return "money"
    if column in _PCT:
        return "pct"
    if column in _SHARE:
        return "share"
    if column in _INT:
        return "int"
    return "num"


def _fmt_text(value: Any, kind: str, currency: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if kind == "money":
        sign = "-" if value < 0 else ""
        return f"{sign}{currency or ''}{abs(value):,.2f}"
    if kind == "pct":
        return f"{value * 100:+.1f}%"
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "int" or (isinstance(value, float) and value.is_integer()) or isinstance(value, int):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _metric_rows(data: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """(key, label, value, note) for the Summary table."""
    metrics = data.get("metrics", {})
    rows = []
    for key, value in metrics.items():
        if key == "growth_basis":
            continue
        note = metrics.get("growth_basis", "") if key == "growth" else ""
        if key == "growth" and value is None:
            note = note or "needs two periods or two files"
        rows.append((key, _LABELS.get(key, key), value, note))
    return rows


# -- Markdown -----------------------------------------------------------------------------------


def _md_cell(value: str) -> str:
    return html.escape(value, quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[dict[str, Any]], currency: str | None, limit: int = 50) -> str:
    if not rows:
        return "_(no rows)_\n"
    cols = list(rows[0])
    out = ["| " + " | ".join(_md_cell(c) for c in cols) + " |"]
    out.append("|" + "|".join("---:" if _numeric_col(rows, c) else "---" for c in cols) + "|")
    for row in rows[:limit]:
        cells = [_md_cell(_fmt_text(row.get(c), _kind(c), currency)) for c in cols]
        out.append("| " + " | ".join(cells) + " |")
    if len(rows) > limit:
        out.append(f"\n_{len(rows) - limit} more rows in the full report._")
    return "\n".join(out) + "\n"


def _numeric_col(rows: list[dict[str, Any]], col: str) -> bool:
    return any(
        isinstance(r.get(col), int | float) and not isinstance(r.get(col), bool) for r in rows
    )


def markdown(data: dict[str, Any]) -> str:
    cur = data.get("currency")
    q = data.get("quality", {})
    parts = ["# Data report\n"]
    parts.append(
        f"**Files:** {_md_cell(', '.join(data.get('files', [])))} · **Rows used:** "
        f"{q.get('rows_used', 0):,} of {q.get('rows_read', 0):,} read\n"
    )
    parts.append("## Metrics\n")
    lines = ["| Metric | Value | Note |", "|---|---:|---|"]
    for key, label, value, note in _metric_rows(data):
        shown = _md_cell(_fmt_text(value, _kind(key), cur))
        lines.append(f"| {_md_cell(label)} | {shown} | {_md_cell(note)} |")
    parts.append("\n".join(lines) + "\n")
    for name, rows in data.get("tables", {}).items():
        parts.append(f"## {_md_cell(title_of(name, data))}\n")
        parts.append(_md_table(rows, cur))
    parts.append("## Column mapping\n")
    mapping = [
        {"role": role, "column": info.get("column"), "found by": info.get("found_by"),
         "format": info.get("format") or ""}
        for role, info in data.get("column_mapping", {}).items()
    ]  # fmt: skip
    parts.append(_md_table(mapping, cur))
    parts.append("## Data quality\n")
    parts.append("\n".join(f"- {_md_cell(n)}" for n in quality_lines(data)) + "\n")
    return "\n".join(parts)


def quality_lines(data: dict[str, Any]) -> list[str]:
    q = data.get("quality", {})
    cur = data.get("currency")
    out = [
        f"{q.get('rows_read', 0):,} rows read, {q.get('rows_used', 0):,} used.",
    ]
    if q.get("rows_skipped"):
        out.append(f"{q['rows_skipped']:,} bad rows skipped (on_bad_rows='skip').")
    if q.get("duplicates_dropped"):
        out.append(
            f"{q['duplicates_dropped']:,} duplicate rows (identical in every column) counted once."
        )
    if q.get("rows_without_amount"):
        out.append(f"{q['rows_without_amount']:,} rows without an amount left out of every metric.")
    if q.get("rows_without_date"):
        out.append(f"{q['rows_without_date']:,} rows without a date: in totals, not in periods.")
    if q.get("refund_rows"):
        out.append(
            f"{q['refund_rows']:,} refund rows (negative amounts) totalling "
            f"{_fmt_text(q.get('refund_amount', 0), 'money', cur)}, netted in revenue."
        )
    for f in q.get("files", []):
        for reason, n in f.get("skipped_by_reason", {}).items():
            out.append(f"{f['file']}: {n:,} rows skipped: {reason}.")
        for s in f.get("samples", []):
            out.append(f"{f['file']} line {s['line']}: {s['reason']}")
        for note in f.get("notes", []):
            out.append(f"{f['file']}: {note}.")
    out.extend(q.get("notes", []))
    return out


# -- HTML -----------------------------------------------------------------------------------


def html_report(data: dict[str, Any]) -> str:
    cur = data.get("currency")
    e = html.escape

    def table(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "<p><em>no rows</em></p>"
        cols = list(rows[0])
        head = "".join(f"<th>{e(c)}</th>" for c in cols)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{e(_fmt_text(r.get(c), _kind(c), cur))}</td>" for c in cols)
            + "</tr>"
            for r in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    metrics = [{"metric": label, "value": _fmt_text(v, _kind(k), cur), "note": n}
               for k, label, v, n in _metric_rows(data)]  # fmt: skip
    sections = [f"<h2>Metrics</h2>{table(metrics)}"]
    for name, rows in data.get("tables", {}).items():
        sections.append(f"<h2>{e(title_of(name, data))}</h2>{table(rows)}")
    mapping = [{"role": r, **i} for r, i in data.get("column_mapping", {}).items()]
    sections.append(f"<h2>Column mapping</h2>{table(mapping)}")
    notes = "".join(f"<li>{e(n)}</li>" for n in quality_lines(data))
    sections.append(f"<h2>Data quality</h2><ul>{notes}</ul>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#1f4e78;"
        "color:#fff}td:first-child{text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Data report</title>"
        f"<style>{style}</style></head><body><h1>Data report</h1>"
        f"<p>Files: {e(', '.join(data.get('files', [])))}</p>{''.join(sections)}</body></html>"
    )


# -- CSV, JSON, Parquet -------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    # OWASP CSV injection: a text cell that a spreadsheet would run as a formula gets a quote.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def csv_report(data: dict[str, Any]) -> str:
    """Sections one after another: the metrics, then each table under its title."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "value", "note"])
    for key, _label, value, note in _metric_rows(data):
        w.writerow([key, _csv_safe(value), _csv_safe(note)])
    for name, rows in data.get("tables", {}).items():
        w.writerow([])
        w.writerow([_csv_safe(f"# {name}")])
        if rows:
            cols = list(rows[0])
            w.writerow([_csv_safe(c) for c in cols])
            for r in rows:
                w.writerow([_csv_safe(r.get(c)) for c in cols])
    return buf.getvalue()


def main_table(data: dict[str, Any]) -> list[dict[str, Any]]:
    tables = data.get("tables", {})
    for name in ("by_period", "by_file"):
        if tables.get(name):
            return list(tables[name])
    return [{k: v for k, v in data.get("metrics", {}).items() if k != "growth_basis"}]


def write(data: dict[str, Any], fmt: str, target: Path) -> None:
    """Write the report of ``data`` in ``fmt`` to ``target``."""
    if fmt == "excel":
        excel(data, target)
    elif fmt == "csv":
        target.write_text(csv_report(data), encoding="utf-8", newline="")
    elif fmt == "json":
        target.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    elif fmt == "markdown":
        target.write_text(markdown(data), encoding="utf-8")
    elif fmt == "html":
        target.write_text(html_report(data), encoding="utf-8")
    elif fmt == "parquet":
        import polars as pl

        pl.DataFrame(main_table(data), infer_schema_length=None).write_parquet(target)
    else:  # pragma: no cover - formats are validated in _spec
        raise ValueError(fmt)


# -- Excel ----------------------------------------------------------------------------------

_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _money_format(currency: str | None) -> str:
    if not currency:
        return "#,##0.00;-#,##0.00"
    if currency in ("€", "CHF"):
        return f'#,##0.00 "{currency}";-#,##0.00 "{currency}"'
    return f'"{currency}"#,##0.00;-"{currency}"#,##0.00'


class _Book:
    def __init__(self, target: Path, currency: str | None) -> None:
        import xlsxwriter

        # Data text is never turned into formulas, numbers or links.
        self.wb = xlsxwriter.Workbook(
            str(target),
            {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False},
        )
        add = self.wb.add_format
        self.title = add({"bold": True, "font_size": 16, "font_color": "#1F4E78"})
        self.sub = add({"italic": True, "font_color": "#595959"})
        self.head = add({"bold": True, "bg_color": "#1F4E78", "font_color": "#FFFFFF",
                         "border": 1, "text_wrap": True, "valign": "vcenter"})  # fmt: skip
        self.fmt = {
            "money": add({"num_format": _money_format(currency)}),
            "pct": add({"num_format": "+0.0%;-0.0%;0.0%"}),
            "share": add({"num_format": "0.0%"}),
            "int": add({"num_format": "#,##0"}),
            "num": add({"num_format": "#,##0.00"}),
            "whole": add({"num_format": "#,##0"}),
            "text": add({}),
        }
        self.names: set[str] = set()

    def sheet(self, name: str) -> Any:
        base = _SHEET_BAD.sub(" ", name).strip()[:31] or "Sheet"
        candidate, n = base, 2
        while candidate.lower() in self.names:
            suffix = f" ({n})"
            candidate = base[: 31 - len(suffix)] + suffix
            n += 1
        self.names.add(candidate.lower())
        return self.wb.add_worksheet(candidate)

    def cell(self, ws: Any, row: int, col: int, value: Any, kind: str = "text") -> None:
        if value is None:
            ws.write_blank(row, col, None)
        elif isinstance(value, bool):
            ws.write_boolean(row, col, value)
        elif isinstance(value, int | float):
            ws.write_number(row, col, value, self.fmt.get(kind, self.fmt["num"]))
        else:
            ws.write_string(row, col, str(value))

    def table(self, ws: Any, top: int, rows: list[dict[str, Any]], *, freeze: bool = True) -> int:
        """Write ``rows`` under a header at ``top``; return the last row index written."""
        if not rows:
            ws.write_string(top, 0, "(no rows)")
            return top
        cols = list(rows[0])
        kinds = [_excel_kind(c, [r.get(c) for r in rows]) for c in cols]
        for j, c in enumerate(cols):
            ws.write_string(top, j, c.replace("_", " "), self.head)
            width = max([len(c)] + [len(_fmt_text(r.get(c), _kind(c), None)) for r in rows[:200]])
            ws.set_column(j, j, min(max(width + 2, 10), 60))
        for i, r in enumerate(rows, start=1):
            for j, c in enumerate(cols):
                self.cell(ws, top + i, j, r.get(c), kinds[j])
        if freeze:
            ws.freeze_panes(top + 1, 0)
        ws.autofilter(top, 0, top + len(rows), len(cols) - 1)
        return top + len(rows)


def _excel_kind(column: str, values: list[Any]) -> str:
    """The cell format of a column: money, percent, or a number with decimals only if needed."""
    kind = _kind(column)
    if kind != "num":
        return kind
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return "whole" if all(float(v).is_integer() for v in numbers) else "num"


def excel(data: dict[str, Any], target: Path) -> None:
    """The workbook: Summary, one sheet per table (with charts), mapping and data quality."""
    book = _Book(target, data.get("currency"))
    wb = book.wb
    ws = book.sheet("Summary")
    ws.write_string(0, 0, "Data report", book.title)
    ws.write_string(1, 0, "Files: " + ", ".join(data.get("files", [])), book.sub)
    q = data.get("quality", {})
    ws.write_string(
        2, 0,
        f"{q.get('rows_used', 0):,} of {q.get('rows_read', 0):,} rows used · generated "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        book.sub,
    )  # fmt: skip
    head = 4
    for j, h in enumerate(("Metric", "Value", "Note")):
        ws.write_string(head, j, h, book.head)
    rows = _metric_rows(data)
    for i, (key, label, value, note) in enumerate(rows, start=1):
        ws.write_string(head + i, 0, label)
        book.cell(ws, head + i, 1, value, _excel_kind(key, [value]))
        ws.write_string(head + i, 2, note)
    ws.set_column(0, 0, 24)
    ws.set_column(1, 1, 18)
    ws.set_column(2, 2, 48)
    ws.freeze_panes(head + 1, 0)
    ws.autofilter(head, 0, head + max(len(rows), 1), 2)
    ws.activate()

    for name, table_rows in data.get("tables", {}).items():
        sheet = book.sheet(title_of(name, data))
        last = book.table(sheet, 0, table_rows)
        if not table_rows or last < 1:
            continue
        _charts(book, sheet, name, table_rows, last, data)

    ms = book.sheet("Column mapping")
    mapping = [
        {"role": role, "column": info.get("column"), "found_by": info.get("found_by"),
         "format": info.get("format") or ""}
        for role, info in data.get("column_mapping", {}).items()
    ]  # fmt: skip
    book.table(ms, 0, mapping)

    qs = book.sheet("Data quality")
    files = [
        {"file": f["file"], "rows_read": f["rows_read"], "rows_used": f["rows_used"],
         "rows_skipped": f["rows_skipped"],
         "why": "; ".join(f"{k}: {v}" for k, v in f.get("skipped_by_reason", {}).items())}
        for f in q.get("files", [])
    ]  # fmt: skip
    last = book.table(qs, 0, files)
    row = last + 2
    qs.write_string(row, 0, "Notes", book.head)
    for i, line in enumerate(quality_lines(data), start=1):
        qs.write_string(row + i, 0, line)
    row += len(quality_lines(data)) + 2
    samples = [
        {"file": f["file"], "line": s["line"], "problem": s["reason"]}
        for f in q.get("files", [])
        for s in f.get("samples", [])
    ]
    if samples:
        qs.write_string(row, 0, "Sample bad rows", book.head)
        book.table(qs, row + 1, samples, freeze=False)
    wb.close()


def _charts(
    book: _Book, ws: Any, name: str, rows: list[dict[str, Any]], last: int, data: dict[str, Any]
) -> None:
    cols = list(rows[0])
    sheet = ws.get_name()
    place = len(cols) + 1
    if "revenue" not in cols:
        return
    rev = cols.index("revenue")
    if name == "by_period" or name == "by_file":
        kind = "line" if name == "by_period" and len(rows) > 2 else "column"
        chart = book.wb.add_chart({"type": kind})
        series: dict[str, Any] = {
            "name": "Revenue",
            "categories": [sheet, 1, 0, last, 0],
            "values": [sheet, 1, rev, last, rev],
        }
        if kind == "line":
            series["marker"] = {"type": "circle"}
        chart.add_series(series)
        chart.set_title({"name": title_of(name, data)})
        chart.set_legend({"none": True})
        chart.set_size({"width": 640, "height": 320})
        ws.insert_chart(1, place, chart)
        if "growth" in cols and len(rows) > 1:
            g = cols.index("growth")
            growth = book.wb.add_chart({"type": "column"})
            growth.add_series({
                "name": "Growth",
                "categories": [sheet, 1, 0, last, 0],
                "values": [sheet, 1, g, last, g],
                "invert_if_negative": False,
            })  # fmt: skip
            growth.set_title({"name": "Growth"})
            growth.set_y_axis({"num_format": "0%"})
            growth.set_legend({"none": True})
            growth.set_size({"width": 640, "height": 320})
            ws.insert_chart(18, place, growth)
        return
    shown = min(last, 20)
    chart = book.wb.add_chart({"type": "bar"})
    chart.add_series({
        "name": "Revenue",
        "categories": [sheet, 1, 0, shown, 0],
        "values": [sheet, 1, rev, shown, rev],
    })  # fmt: skip
    chart.set_title({"name": title_of(name, data)})
    chart.set_legend({"none": True})
    chart.set_size({"width": 640, "height": max(320, 22 * shown)})
    ws.insert_chart(1, place, chart)
