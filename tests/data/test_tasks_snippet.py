"""TASKS.md's data processing task, run as written, and the workbook it saves read back."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest
from _datahelpers import SALES_HEADER, approx, oracle, sales_rows, write_csv

from aesoperator import Aesoperator, Task, TaskConfig


def test_process_sales_data_as_written(pooled: Aesoperator, in_tmp: Path) -> None:
    write_csv(in_tmp / "sales_q1.csv", SALES_HEADER, sales_rows(400, 1, (1, 2, 3)))
    write_csv(in_tmp / "sales_q2.csv", SALES_HEADER, sales_rows(400, 2, (4, 5, 6)))
    aesop = pooled

    # -- TASKS.md, verbatim ------------------------------------------------------------------
    # fmt: off
    process_task = Task(
        name="process_sales_data",
        description="Extract and analyze sales data from CSV files",
        config=TaskConfig(
            max_memory_mb=2048,
            max_duration_seconds=600
        ),
        inputs={
            "data_files": ["sales_q1.csv", "sales_q2.csv"],
            "metrics": ["revenue", "growth", "customers"],
            "output_format": "excel"
        }
    )

    result = aesop.execute_task(process_task)
    result.save_report("sales_analysis.xlsx")
    # fmt: on
    # ------------------------------------------------------------------------------------------

    want = oracle([in_tmp / "sales_q1.csv", in_tmp / "sales_q2.csv"])
    assert result.planner == "skill:data"
    assert result.data["metrics"]["revenue"] == approx(want["revenue"])
    assert result.data["metrics"]["growth"] == approx(want["growth"])
    assert result.data["metrics"]["customers"] == want["customers"]
    assert "sales_q2.csv vs sales_q1.csv" in result.data["metrics"]["growth_basis"]
    assert [f.name for f in result.files] == ["report.xlsx"]
    assert "| Revenue (net) |" in result.content
    assert "revenue" in result.summary

    wb = openpyxl.load_workbook(in_tmp / "sales_analysis.xlsx")
    assert wb.sheetnames[0] == "Summary"
    assert {"Revenue by month", "Revenue by file", "Column mapping", "Data quality"} <= set(
        wb.sheetnames
    )
    summary = {row[0].value: row[1] for row in wb["Summary"].iter_rows(min_row=6) if row[0].value}
    assert summary["Revenue (net)"].value == pytest.approx(want["revenue"])
    assert summary["Growth"].value == pytest.approx(want["growth"])
    assert summary["Growth"].number_format.startswith("+0.0%")
    assert summary["Customers"].value == want["customers"]
    assert summary["Customers"].number_format == "#,##0"
    months = wb["Revenue by month"]
    header = [c.value for c in months[1]]
    assert header[:2] == ["period", "revenue"]
    got = [(r[0], r[1]) for r in months.iter_rows(min_row=2, values_only=True)]
    assert got == [(p["period"], pytest.approx(p["revenue"])) for p in want["by_period"]]
    assert months.freeze_panes == "A2"
    assert (
        months.auto_filter.ref
        == f"A1:{months.cell(1, months.max_column).column_letter}{len(got) + 1}"
    )
    assert len(months._charts) == 2  # revenue over time and growth
    # The artifact kept by the execution is the same workbook.
    with zipfile.ZipFile(result.files[0].path) as zf:
        assert any(n.startswith("xl/charts/chart") for n in zf.namelist())
