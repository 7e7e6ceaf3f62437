"""Every input format gives the same numbers: CSV, TSV, Excel, Parquet, JSON, JSON lines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from _datahelpers import run

from aesoperator import Aesoperator

ROWS = [
    {"date": dt.date(2024, 1, 5), "customer": "Ann", "product": "Widget", "amount": 120.5},
    {"date": dt.date(2024, 1, 9), "customer": "Bob", "product": "Gadget", "amount": 80.0},
    {"date": dt.date(2024, 2, 1), "customer": "Ann", "product": "Widget", "amount": -20.5},
    {"date": dt.date(2024, 3, 3), "customer": "Cid", "product": "Gizmo", "amount": 300.0},
]
METRICS = ["revenue", "growth", "customers", "orders", "top_products"]


def _write(path: Path) -> Path:
    df = pl.DataFrame(ROWS)
    suffix = path.name.split(".", 1)[1]
    if suffix == "csv":
        df.write_csv(path)
    elif suffix == "tsv":
        df.write_csv(path, separator="\t")
    elif suffix == "parquet":
        df.write_parquet(path)
    elif suffix == "json":
        path.write_text(json.dumps([{**r, "date": r["date"].isoformat()} for r in ROWS]))
    elif suffix == "jsonl":
        df.write_ndjson(path)
    elif suffix == "xlsx":
        # A workbook as a person makes it: real dates and numbers, not text.
        wb = xlsxwriter.Workbook(str(path))
        ws = wb.add_worksheet("Sales")
        date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        for j, name in enumerate(ROWS[0]):
            ws.write_string(0, j, name)
        for i, r in enumerate(ROWS, start=1):
            ws.write_datetime(i, 0, dt.datetime.combine(r["date"], dt.time()), date_fmt)
            ws.write_string(i, 1, str(r["customer"]))
            ws.write_string(i, 2, str(r["product"]))
            ws.write_number(i, 3, float(r["amount"]))  # type: ignore[arg-type]
        wb.close()
    return path


@pytest.mark.parametrize("name", ["s.csv", "s.tsv", "s.parquet", "s.json", "s.jsonl", "s.xlsx"])
def test_each_format(inline: Aesoperator, tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name)
    result = run(inline, {"data_files": [str(path)], "metrics": METRICS})
    m = result.data["metrics"]
    assert m["revenue"] == pytest.approx(480.0)
    assert m["customers"] == 3
    assert m["orders"] == 3
    assert m["growth"] == pytest.approx((300 + 20.5) / 20.5)  # from a negative month
    periods = result.data["tables"]["by_period"]
    assert [(p["period"], p["revenue"]) for p in periods] == [
        ("2024-01", 200.5),
        ("2024-02", -20.5),
        ("2024-03", 300.0),
    ]
    assert [r["product"] for r in result.data["tables"]["top_products"]] == [
        "Gizmo",
        "Widget",
        "Gadget",
    ]
