"""Column inference: names in several languages, currency strings, European decimals, date
formats; ambiguity and missing columns fail before computing, with the ``column_map`` fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _datahelpers import run, write_csv

from aesoperator import Aesoperator, ValidationError


def test_european_file(inline: Aesoperator, in_tmp: Path) -> None:
    rows = [
        ["31.01.2024", "Müller GmbH", "Schraube", "2", "1.234,50 €"],
        ["01.02.2024", "Schmidt AG", "Mutter", "1", "99,90 €"],
        ["15.02.2024", "Müller GmbH", "Schraube", "3", "-10,00 €"],
    ]
    write_csv(
        in_tmp / "umsatz.csv", ["Datum", "Kunde", "Artikel", "Menge", "Umsatz"], rows, delimiter=";"
    )
    result = run(
        inline,
        {"data_files": ["umsatz.csv"], "metrics": ["revenue", "customers", "units", "growth"]},
    )
    m = result.data["metrics"]
    assert m["revenue"] == pytest.approx(1234.50 + 99.90 - 10.00)
    assert (m["customers"], m["units"]) == (2, 6)
    assert m["growth"] == pytest.approx((89.90 - 1234.50) / 1234.50)
    mapping = result.data["column_mapping"]
    assert {
        r: mapping[r]["column"] for r in ("date", "amount", "customer", "product", "quantity")
    } == {
        "date": "Datum",
        "amount": "Umsatz",
        "customer": "Kunde",
        "product": "Artikel",
        "quantity": "Menge",
    }
    assert mapping["date"]["format"] == "%d.%m.%Y"
    assert mapping["amount"]["format"] == "1.234,56, currency €"
    assert result.data["currency"] == "€"
    assert "| Revenue (net) | 1,324.40€ |" not in result.content  # symbol placement is ours
    assert "€1,324.40" in result.content


def test_us_currency_strings_and_parenthesised_refunds(inline: Aesoperator, in_tmp: Path) -> None:
    rows = [
        ["01/31/2024", "INV-1", "Acme", "$1,234.50"],
        ["02/01/2024", "INV-2", "Beta", "$99.50"],
        ["02/13/2024", "INV-3", "Acme", "($34.00)"],
    ]
    write_csv(in_tmp / "us.csv", ["Invoice Date", "Invoice No", "Client", "Sale Amount"], rows)
    result = run(
        inline,
        {
            "data_files": ["us.csv"],
            "metrics": ["revenue", "refunds", "orders", "average_order_value"],
        },
    )
    m = result.data["metrics"]
    assert m["revenue"] == pytest.approx(1300.0)
    assert m["refunds"] == pytest.approx(34.0)
    assert m["orders"] == 2  # a refund is not an order
    assert m["average_order_value"] == pytest.approx(650.0)
    mapping = result.data["column_mapping"]
    assert mapping["date"] == {"column": "Invoice Date", "found_by": "name", "format": "%m/%d/%Y"}
    assert mapping["order_id"]["column"] == "Invoice No"
    assert mapping["customer"]["column"] == "Client"


def test_datetimes_and_other_languages(inline: Aesoperator, in_tmp: Path) -> None:
    rows = [["2024-03-01T10:15:00", "Ana", "10"], ["2024-04-02 08:00:00", "Luis", "30"]]
    write_csv(in_tmp / "ventas.csv", ["fecha", "cliente", "importe"], rows)
    result = run(inline, {"data_files": ["ventas.csv"], "metrics": ["revenue", "growth"]})
    assert result.data["metrics"]["growth"] == pytest.approx(2.0)
    assert result.data["column_mapping"]["date"]["format"].startswith("%Y-%m-%d (time")


def test_revenue_from_price_times_quantity(inline: Aesoperator, in_tmp: Path) -> None:
    rows = [["2024-01-01", "P1", "3", "2.50"], ["2024-01-02", "P2", "1", "10.00"]]
    write_csv(in_tmp / "lines.csv", ["date", "sku", "qty", "unit_price"], rows)
    result = run(inline, {"data_files": ["lines.csv"], "metrics": ["revenue", "units"]})
    assert result.data["metrics"] == {"revenue": 17.5, "units": 4.0}
    assert result.data["column_mapping"]["amount"]["column"] == "price × quantity"


def test_ambiguous_columns_fail_with_the_fix(inline: Aesoperator, in_tmp: Path) -> None:
    rows = [["2024-01-01", "5.00", "6.00"], ["2024-01-02", "7.00", "8.00"]]
    write_csv(in_tmp / "two.csv", ["date", "revenue", "sales"], rows)
    with pytest.raises(ValidationError) as err:
        run(inline, {"data_files": ["two.csv"], "metrics": ["revenue"]})
    text = str(err.value)
    assert "'revenue' needs the amount column and 2 columns of 'two.csv' fit equally well" in text
    assert "'revenue', 'sales'" in text
    assert '"column_map": {"amount": "revenue"}' in text
    fix = json.loads("{" + text.split("choose one with ")[1] + "}")
    result = run(inline, {"data_files": ["two.csv"], "metrics": ["revenue"], **fix})
    assert result.data["metrics"]["revenue"] == 12.0
    assert result.data["column_mapping"]["amount"]["found_by"] == "column_map"
    result = run(inline, {"data_files": ["two.csv"], "column_map": {"revenue": "sales"}})
    assert result.data["metrics"]["revenue"] == 14.0


def test_missing_column_for_a_requested_metric(inline: Aesoperator, in_tmp: Path) -> None:
    write_csv(in_tmp / "no_cust.csv", ["date", "amount"], [["2024-01-01", "1"]])
    with pytest.raises(ValidationError) as err:
        run(inline, {"data_files": ["no_cust.csv"], "metrics": ["revenue", "customers"]})
    text = str(err.value)
    assert "'customers' needs a customer column" in text
    assert "('date', 'amount')" in text
    assert '"column_map": {"customer": "<column>"}' in text
    # Default metrics leave out what cannot be computed, and say so.
    result = run(inline, {"data_files": ["no_cust.csv"]})
    assert "customers" not in result.data["metrics"]
    assert any("'customers' left out" in n for n in result.data["quality"]["notes"])


def test_column_map_names_a_missing_column(inline: Aesoperator, in_tmp: Path) -> None:
    write_csv(in_tmp / "a.csv", ["Date", "Total"], [["2024-01-01", "1"]])
    with pytest.raises(
        ValidationError,
        match=r"column_map\.amount: column 'total' is not in 'a\.csv' \(did you mean 'Total'\?\)",
    ):
        run(inline, {"data_files": ["a.csv"], "column_map": {"amount": "total"}})


def test_breakdowns_and_custom_sql(inline: Aesoperator, in_tmp: Path) -> None:
    header = ["order_date", "region", "channel", "customer", "amount"]
    rows = [
        ["2024-01-05", "EU", "web", "a", "100"],
        ["2024-02-05", "EU", "shop", "b", "2000"],
        ["2024-04-05", "US", "web", "a", "50"],
        ["2024-05-05", "", "web", "c", "-25"],
    ]
    write_csv(in_tmp / "s.csv", header, rows)
    result = run(
        inline,
        {
            "data_files": ["s.csv"],
            "period": "quarter",
            "group_by": "channel",
            "metrics": [
                "revenue",
                "revenue_by_region",
                {"name": "big_orders", "sql": "SELECT count(*) FROM data WHERE amount > 1000"},
                {
                    "name": "by_customer",
                    "sql": "SELECT customer, sum(amount) AS total FROM data "
                    "GROUP BY customer ORDER BY customer",
                },
            ],
        },
    )
    t = result.data["tables"]
    assert [(p["period"], p["revenue"]) for p in t["by_period"]] == [
        ("2024-Q1", 2100),
        ("2024-Q2", 25),
    ]
    assert [(r["region"], r["revenue"], r["share"]) for r in t["revenue_by_region"]] == [
        ("EU", 2100, pytest.approx(2100 / 2125)),
        ("US", 50, pytest.approx(50 / 2125)),
        ("(blank)", -25, pytest.approx(-25 / 2125)),
    ]
    assert [(r["channel"], r["revenue"]) for r in t["by_channel"]] == [("shop", 2000), ("web", 125)]
    assert result.data["metrics"]["big_orders"] == 1
    assert t["by_customer"] == [
        {"customer": "a", "total": 150},
        {"customer": "b", "total": 2000},
        {"customer": "c", "total": -25},
    ]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", r"only SELECT .* over the table 'data'"),
        ("DROP TABLE data", r"only SELECT"),
        (
            "SELECT nope FROM data",
            r"custom metric 'm' failed: .*columns date, period, file, amount",
        ),
    ],
)
def test_custom_sql_is_confined(inline: Aesoperator, in_tmp: Path, sql: str, message: str) -> None:
    write_csv(in_tmp / "s.csv", ["date", "amount"], [["2024-01-01", "1"]])
    with pytest.raises(ValidationError, match=message):
        run(inline, {"data_files": ["s.csv"], "metrics": [{"name": "m", "sql": sql}]})
