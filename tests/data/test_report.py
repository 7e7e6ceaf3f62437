"""Reports: the workbook read back with openpyxl, and every other format from the same data."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from _datahelpers import run, write_csv

from aesoperator import Aesoperator, TaskResult

HEADER = ["Order Date", "Order ID", "Customer", "Product", "Region", "Qty", "Amount"]
ROWS = [
    [
        "2024-01-03",
        "A1",
        '=HYPERLINK("http://evil.test","click")',
        "Widget",
        "EU",
        "2",
        "$1,200.00",
    ],
    ["2024-01-20", "A2", "Bob", "+cmd|' /C calc'!A0", "US", "1", "$300.50"],
    ["2024-02-11", "A3", "Bob", "Widget", "US", "5", "$2,000.00"],
    ["2024-03-02", "A4", "@SUM(1+1)", "Gadget", "EU", "1", "($100.00)"],
    ["2024-03-09", "A5", "Cara", "-2+3", "APAC", "3", "$450.25"],
]
METRICS = [
    "revenue",
    "growth",
    "customers",
    "orders",
    "average_order_value",
    "units",
    "top_products",
    "top_customers",
    "revenue_by_region",
]


@pytest.fixture
def result(inline: Aesoperator, in_tmp: Path) -> TaskResult:
    write_csv(in_tmp / "sales.csv", HEADER, ROWS)
    return run(inline, {"data_files": ["sales.csv"], "metrics": METRICS})


def test_workbook_sheets_values_formats_and_charts(result: TaskResult, in_tmp: Path) -> None:
    result.save_report(in_tmp / "out" / "report.xlsx")
    wb = openpyxl.load_workbook(in_tmp / "out" / "report.xlsx")
    assert wb.sheetnames == [
        "Summary",
        "Revenue by month",
        "Top products",
        "Top customers",
        "Revenue by region",
        "Column mapping",
        "Data quality",
    ]
    summary = {r[0].value: r[1] for r in wb["Summary"].iter_rows(min_row=6) if r[0].value}
    assert summary["Revenue (net)"].value == pytest.approx(3850.75)
    assert summary["Revenue (net)"].number_format == '"$"#,##0.00;-"$"#,##0.00'
    assert summary["Average order value"].value == pytest.approx(3850.75 / 4)
    assert summary["Orders"].value == 4
    assert summary["Orders"].number_format == "#,##0"
    assert summary["Growth"].value == pytest.approx((350.25 - 2000) / 2000)
    assert "2024-03 vs 2024-02" in wb["Summary"]["C" + str(summary["Growth"].row)].value
    assert wb["Summary"].freeze_panes == "A6"

    months = wb["Revenue by month"]
    rows = list(months.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == ["2024-01", "2024-02", "2024-03"]
    assert months["B2"].number_format.startswith('"$"')
    assert months["C3"].number_format == "+0.0%;-0.0%;0.0%"  # growth column
    assert len(months._charts) == 2

    top = wb["Top products"]
    assert [c.value for c in top[1]][:3] == ["product", "revenue", "share"]
    assert top["C2"].number_format == "0.0%"
    assert len(top._charts) == 1
    assert [r[0] for r in top.iter_rows(min_row=2, values_only=True)] == [
        "Widget",
        "-2+3",
        "+cmd|' /C calc'!A0",
        "Gadget",
    ]

    mapping = {r[0]: r[1] for r in wb["Column mapping"].iter_rows(min_row=2, values_only=True)}
    assert mapping["amount"] == "Amount"
    assert mapping["order_id"] == "Order ID"
    quality = [r[0] for r in wb["Data quality"].iter_rows(values_only=True) if r[0]]
    assert any("1 refund rows" in str(v) for v in quality)

    # Text from the data is text: no cell anywhere holds a formula.
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
    customers = [r[0] for r in wb["Top customers"].iter_rows(min_row=2, values_only=True)]
    assert '=HYPERLINK("http://evil.test","click")' in customers
    with zipfile.ZipFile(in_tmp / "out" / "report.xlsx") as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/sheet")]
        assert all("<f>" not in zf.read(n).decode() for n in sheets)


def test_workbook_rebuilt_from_data_alone(inline: Aesoperator, in_tmp: Path) -> None:
    write_csv(in_tmp / "sales.csv", HEADER, ROWS)
    res = run(inline, {"data_files": ["sales.csv"], "metrics": METRICS, "output_format": "json"})
    assert [f.name for f in res.files] == ["report.json"]
    res.save_report(in_tmp / "rebuilt.xlsx")  # no workbook was kept: built from result.data
    wb = openpyxl.load_workbook(in_tmp / "rebuilt.xlsx")
    summary = {r[0].value: r[1] for r in wb["Summary"].iter_rows(min_row=6) if r[0].value}
    assert summary["Revenue (net)"].value == pytest.approx(3850.75)
    assert summary["Units"].value == 12
    assert summary["Units"].number_format == "#,##0"
    assert len(wb["Revenue by month"]._charts) == 2
    top = wb["Top products"]
    assert top["D1"].value == "units" and top["D2"].number_format == "#,##0"


def test_csv_report_defuses_formulas(result: TaskResult, in_tmp: Path) -> None:
    result.save_report(in_tmp / "r.csv")
    text = (in_tmp / "r.csv").read_text()
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    assert '\'=HYPERLINK("http://evil.test","click")' in cells
    assert "'+cmd|' /C calc'!A0" in cells
    assert "'@SUM(1+1)" in cells
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert ["revenue", "3850.75", ""] in list(csv.reader(io.StringIO(text)))


def test_other_formats_hold_the_same_numbers(result: TaskResult, in_tmp: Path) -> None:
    result.save_report(in_tmp / "r.json")
    assert json.loads((in_tmp / "r.json").read_text()) == result.data
    result.save_report(in_tmp / "r.md")
    assert (in_tmp / "r.md").read_text() == result.content
    assert "| Revenue (net) | $3,850.75 |" in result.content
    result.save_report(in_tmp / "r.html")
    page = (in_tmp / "r.html").read_text()
    assert "=HYPERLINK(&quot;http://evil.test&quot;" in page and "<td>$3,850.75</td>" in page
    result.save_report(in_tmp / "r.parquet")
    table = pl.read_parquet(in_tmp / "r.parquet")
    assert table["period"].to_list() == ["2024-01", "2024-02", "2024-03"]
    assert table["revenue"].sum() == pytest.approx(3850.75)


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown", "html", "parquet", "excel"])
def test_output_format_is_kept_as_an_artifact(inline: Aesoperator, in_tmp: Path, fmt: str) -> None:
    write_csv(in_tmp / "sales.csv", HEADER, ROWS)
    res = run(inline, {"data_files": ["sales.csv"], "output_format": fmt})
    ext = {"markdown": "md", "excel": "xlsx"}.get(fmt, fmt)
    assert [f.name for f in res.files] == [f"report.{ext}"]
    assert Path(res.files[0].path).stat().st_size > 100
