"""Helpers of the data skill's tests: running a task, writing files, an independent oracle.

The oracle computes the documented semantics with pandas, from the raw CSV text, without any
code from the skill, so that a test of the skill can fail.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aesoperator import Aesoperator, Task, TaskConfig, TaskResult


def run(client: Aesoperator, inputs: dict[str, Any], **config: Any) -> TaskResult:
    task = Task(name="data_test", inputs=inputs, config=TaskConfig(**config))
    return client.execute_task(task)


def write_csv(path: Path, header: list[str], rows: list[list[Any]], **kw: Any) -> Path:
    with path.open("w", newline="", encoding=kw.pop("encoding", "utf-8")) as fh:
        w = csv.writer(fh, **kw)
        w.writerow(header)
        w.writerows(rows)
    return path


SALES_HEADER = ["order_id", "order_date", "customer_id", "product", "region", "quantity", "amount"]


def sales_rows(n: int, seed: int, months: tuple[int, ...], year: int = 2024) -> list[list[Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        month = rng.choice(months)
        qty = rng.randint(1, 5)
        amount = round(qty * rng.choice([9.99, 19.5, 100.0, 4.25]), 2)
        if rng.random() < 0.05:
            amount = -amount
        rows.append(
            [
                f"O{seed}-{i // 2}",
                f"{year}-{month:02d}-{rng.randint(1, 28):02d}",
                f"C{rng.randint(1, 40)}",
                rng.choice(["Widget", "Gadget", "Gizmo"]),
                rng.choice(["EU", "US", "APAC"]),
                qty,
                amount,
            ]
        )
    return rows


def oracle(paths: list[Path], period: str = "M") -> dict[str, Any]:
    """The documented semantics, computed independently with pandas from the raw text."""
    frames = []
    for i, p in enumerate(paths):
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
        df["__file"] = i
        frames.append(df)
    raw = pd.concat(frames, ignore_index=True)
    cols = [c for c in raw.columns if c != "__file"]
    raw = raw.drop_duplicates(subset=cols)  # identical rows count once, across files too
    amount = pd.to_numeric(raw["amount"].replace("", None), errors="coerce")
    df = raw.assign(amount=amount)
    df = df[df["amount"].notna()]
    df = df.assign(
        date=pd.to_datetime(df["order_date"].replace("", None), format="%Y-%m-%d"),
        customer=df["customer_id"].replace("", None),
        order=df["order_id"].replace("", None),
    )
    sale = df["amount"] > 0

    def orders(d: pd.DataFrame) -> int:
        s = d["amount"] > 0
        return int(d.loc[s & d["order"].notna(), "order"].nunique() + (s & d["order"].isna()).sum())

    def customers(d: pd.DataFrame) -> int:
        return int(d.loc[(d["amount"] > 0) & d["customer"].notna(), "customer"].nunique())

    out: dict[str, Any] = {
        "revenue": float(df["amount"].sum()),
        "gross_revenue": float(df.loc[sale, "amount"].sum()),
        "refunds": float(-df.loc[df["amount"] < 0, "amount"].sum()),
        "orders": orders(df),
        "customers": customers(df),
        "duplicates": len(pd.concat(frames)) - len(raw),
    }
    out["average_order_value"] = out["revenue"] / out["orders"] if out["orders"] else None
    dated = df[df["date"].notna()]
    by_period = []
    if len(dated):
        keys = dated["date"].dt.to_period(period)
        full = pd.period_range(keys.min(), keys.max(), freq=period)
        prev = None
        for key in full:
            part = dated[keys == key]
            rev = float(part["amount"].sum())
            growth = (rev - prev) / abs(prev) if prev not in (None, 0) else None
            label = str(key) if period != "Q" else f"{key.year}-Q{key.quarter}"
            by_period.append(
                {
                    "period": label,
                    "revenue": rev,
                    "orders": orders(part),
                    "customers": customers(part),
                    "growth": growth,
                }
            )
            prev = rev
    out["by_period"] = by_period
    by_file = [float(df.loc[df["__file"] == i, "amount"].sum()) for i in range(len(paths))]
    out["by_file"] = by_file
    if len(paths) > 1:
        prev = by_file[-2]
        out["growth"] = (by_file[-1] - prev) / abs(prev) if prev else None
    elif len(by_period) > 1:
        out["growth"] = by_period[-1]["growth"]
    else:
        out["growth"] = None
    return out


def approx(value: float | None, rel: float = 1e-9) -> Any:
    return None if value is None else pytest.approx(value, rel=rel, abs=1e-6)
