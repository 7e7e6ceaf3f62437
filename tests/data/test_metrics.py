"""Metrics equal an independent pandas computation of the documented semantics.

Random sales with refunds, missing values, exact duplicate rows (also across files), orders of
several lines and months without any sale.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from _datahelpers import approx, oracle, run, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aesoperator import Aesoperator

HEADER = ["order_id", "order_date", "customer_id", "product", "amount"]

amounts = st.one_of(
    st.decimals(min_value=-500, max_value=5000, places=2, allow_nan=False).map(str),
    st.just(""),  # no amount: left out of every metric
)
rows = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 30).map(lambda i: f"O{i}"), st.just("")),
        st.one_of(
            # Months 1, 2, 5 and 9 only: the months between have no sales.
            st.tuples(st.sampled_from([1, 2, 5, 9]), st.integers(1, 28)).map(
                lambda md: f"2024-{md[0]:02d}-{md[1]:02d}"
            ),
            st.just(""),
        ),
        st.one_of(st.integers(0, 40).map(lambda i: f"C{i}"), st.just("")),
        st.sampled_from(["Widget", "Gadget", "=SUM(A1:A2)"]),
        amounts,
    ),
    min_size=1,
    max_size=60,
)


def _check(result: Any, want: dict[str, Any]) -> None:
    got = result.data["metrics"]
    assert got["revenue"] == approx(want["revenue"])
    assert got["gross_revenue"] == approx(want["gross_revenue"])
    assert got["refunds"] == approx(want["refunds"])
    assert got["orders"] == want["orders"]
    assert got["customers"] == want["customers"]
    assert got["average_order_value"] == approx(want["average_order_value"])
    assert got["growth"] == approx(want["growth"])
    assert result.data["quality"]["duplicates_dropped"] == want["duplicates"]
    periods = result.data["tables"].get("by_period", [])
    assert [p["period"] for p in periods] == [p["period"] for p in want["by_period"]]
    for g, w in zip(periods, want["by_period"], strict=True):
        assert g["revenue"] == approx(w["revenue"])
        assert g["orders"] == w["orders"]
        assert g["customers"] == w["customers"]
        assert g["growth"] == approx(w["growth"])


METRICS = [
    "revenue",
    "gross_revenue",
    "refunds",
    "orders",
    "customers",
    "average_order_value",
    "growth",
]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=rows, second=rows, dup=st.booleans())
def test_metrics_equal_pandas_on_random_data(
    inline: Aesoperator, first: list[Any], second: list[Any], dup: bool
) -> None:
    if dup:
        second = [*second, first[0], first[0]]  # duplicates across files and within one
    with tempfile.TemporaryDirectory() as tmp:
        a = write_csv(Path(tmp) / "a.csv", HEADER, [list(r) for r in first])
        b = write_csv(Path(tmp) / "b.csv", HEADER, [list(r) for r in second])
        want = oracle([a, b])
        if not any(r[4] for r in first + second):
            return  # no amount at all: nothing to compare
        result = run(
            inline,
            {
                "data_files": [str(a), str(b)],
                "metrics": METRICS,
                "column_map": {"amount": "amount"},
                "output_format": "json",
            },
        )
        _check(result, want)


@pytest.mark.parametrize("period", ["month", "quarter", "year"])
def test_single_file_period_over_period(inline: Aesoperator, tmp_path: Path, period: str) -> None:
    data = [
        ["O1", "2024-01-05", "C1", "Widget", "100.00"],
        ["O2", "2024-01-20", "C2", "Gadget", "50.00"],
        ["O2", "2024-01-20", "C2", "Gadget", "50.00"],  # exact duplicate: counted once
        ["O3", "2024-04-02", "C1", "Widget", "-20.00"],  # refund
        ["O4", "2024-04-03", "", "Widget", "300.00"],  # no customer
        ["O4", "2024-04-04", "C9", "Gizmo", "-5.00"],  # refund only: C9 is not a customer
        ["O5", "", "C3", "Gizmo", "10.00"],  # no date: totals only
        ["O6", "2024-07-01", "C3", "Gizmo", ""],  # no amount: left out
    ]
    path = write_csv(tmp_path / "sales.csv", HEADER, data)
    result = run(inline, {"data_files": [str(path)], "metrics": METRICS, "period": period})
    want = oracle([path], {"month": "M", "quarter": "Q", "year": "Y"}[period])
    _check(result, want)
    q = result.data["quality"]
    assert (q["duplicates_dropped"], q["rows_without_amount"], q["rows_without_date"]) == (1, 1, 1)
    assert (q["refund_rows"], q["refund_amount"]) == (2, 25.0)
    if period == "month":
        # February and March had no sales: they are in the table with 0, and growth from 0
        # is undefined.
        assert [p["revenue"] for p in result.data["tables"]["by_period"]] == [150, 0, 0, 275]
        assert [p["growth"] for p in result.data["tables"]["by_period"]] == [None, -1.0, None, None]
