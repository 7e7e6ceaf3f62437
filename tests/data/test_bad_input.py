"""Bad input gets a clear error naming the file, field or line, and loses nothing."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest
from _datahelpers import run, write_csv

from aesoperator import Aesoperator, ValidationError

HEADER = ["date", "customer", "amount"]
GOOD = [["2024-01-02", "Ann", "10.50"], ["2024-01-03", "Bob", "20.00"]]


def test_missing_file_is_named(inline: Aesoperator, in_tmp: Path) -> None:
    with pytest.raises(ValidationError, match=r"data_files\[1\]: file 'nope\.csv' does not exist"):
        write_csv(in_tmp / "ok.csv", HEADER, GOOD)
        run(inline, {"data_files": ["ok.csv", "nope.csv"]})


def test_glob_that_matches_nothing(inline: Aesoperator, in_tmp: Path) -> None:
    with pytest.raises(ValidationError, match=r"pattern 'sales_\*\.csv' matched no files"):
        run(inline, {"data_files": "sales_*.csv"})


def test_glob_reads_every_match_in_order(inline: Aesoperator, in_tmp: Path) -> None:
    write_csv(in_tmp / "sales_2.csv", HEADER, [GOOD[1]])
    write_csv(in_tmp / "sales_1.csv", HEADER, [GOOD[0]])
    result = run(inline, {"data_files": "sales_*.csv", "metrics": ["revenue", "growth"]})
    assert result.data["files"] == ["sales_1.csv", "sales_2.csv"]
    assert result.data["metrics"]["revenue"] == 30.5
    assert result.data["metrics"]["growth"] == pytest.approx(20 / 10.5 - 1)


def test_empty_file(inline: Aesoperator, in_tmp: Path) -> None:
    (in_tmp / "empty.csv").write_bytes(b"")
    with pytest.raises(ValidationError, match=r"file 'empty\.csv' is empty"):
        run(inline, {"data_files": ["empty.csv"]})


def test_header_only_file(inline: Aesoperator, in_tmp: Path) -> None:
    (in_tmp / "head.csv").write_text("date,customer,amount\n")
    with pytest.raises(ValidationError, match=r"'head\.csv' has a header .* but no data rows"):
        run(inline, {"data_files": ["head.csv"]})


def _ragged(path: Path) -> Path:
    path.write_text(
        "date,customer,amount\n"
        "2024-01-02,Ann,10.50\n"
        "2024-01-03,Bob\n"  # line 3: a field short
        "2024-01-04,Cid,5.00\n"
        "2024-01-05,Dan,7.00,extra\n"  # line 5: a field too many
        "2024-01-06,Eve,1.00\n"
    )
    return path


def test_ragged_rows_fail_with_line_numbers(inline: Aesoperator, in_tmp: Path) -> None:
    _ragged(in_tmp / "r.csv")
    with pytest.raises(ValidationError) as err:
        run(inline, {"data_files": ["r.csv"]})
    text = str(err.value)
    assert "'r.csv' has 2 bad row(s)" in text
    assert "line 3: ragged row: 2 fields, expected 3" in text
    assert "line 5: ragged row: 4 fields, expected 3" in text
    assert "on_bad_rows='skip'" in text


def test_ragged_rows_skipped_are_reported(inline: Aesoperator, in_tmp: Path) -> None:
    _ragged(in_tmp / "r.csv")
    result = run(inline, {"data_files": ["r.csv"], "on_bad_rows": "skip", "metrics": ["revenue"]})
    assert result.data["metrics"]["revenue"] == 10.5 + 5 + 1
    f = result.data["quality"]["files"][0]
    assert (f["rows_read"], f["rows_used"], f["rows_skipped"]) == (5, 3, 2)
    assert f["skipped_by_reason"] == {"ragged row (wrong number of fields)": 2}
    assert [s["line"] for s in f["samples"]] == [3, 5]
    assert "2 rows skipped: ragged row" in result.content


def test_mixed_types_column(inline: Aesoperator, in_tmp: Path) -> None:
    rows = [*GOOD, ["2024-01-04", "Cid", "twelve"], ["2024-01-05", "Dan", "N/A"]]
    write_csv(in_tmp / "m.csv", HEADER, rows)
    with pytest.raises(ValidationError, match=r"line 4: cannot read 'twelve' in column 'amount'"):
        run(inline, {"data_files": ["m.csv"]})
    result = run(inline, {"data_files": ["m.csv"], "on_bad_rows": "skip", "metrics": ["revenue"]})
    # 'N/A' is a missing value, not a bad one: that row is reported as without an amount.
    assert result.data["metrics"]["revenue"] == 30.5
    q = result.data["quality"]
    assert q["files"][0]["skipped_by_reason"] == {"unreadable value in column 'amount'": 1}
    assert q["rows_without_amount"] == 1
    assert q["rows_used"] == 2


def test_bad_date_is_a_bad_row(inline: Aesoperator, in_tmp: Path) -> None:
    write_csv(in_tmp / "d.csv", HEADER, [*GOOD, ["someday", "Cid", "1.00"]] + GOOD * 3)
    with pytest.raises(ValidationError, match=r"line 4: cannot read 'someday' in column 'date'"):
        run(inline, {"data_files": ["d.csv"]})


def test_cp1252_is_detected_and_converted(inline: Aesoperator, in_tmp: Path) -> None:
    rows = [["2024-01-02", "Zoë Müller", "10.00"], ["2024-01-03", "François Café", "5.00"]] * 20
    write_csv(in_tmp / "win.csv", HEADER, rows, encoding="cp1252")
    result = run(
        inline,
        {
            "data_files": ["win.csv"],
            "metrics": ["revenue", "top_customers"],
            "output_format": "json",
        },
    )
    assert [r["customer"] for r in result.data["tables"]["top_customers"]] == [
        "Zoë Müller",
        "François Café",
    ]
    assert any("cp1252" in n for n in result.data["quality"]["files"][0]["notes"])


def test_utf16_with_bom(inline: Aesoperator, in_tmp: Path) -> None:
    text = "date\tcustomer\tamount\n2024-01-02\tÅsa\t3.25\n"
    (in_tmp / "u16.tsv").write_bytes(text.encode("utf-16"))
    result = run(inline, {"data_files": ["u16.tsv"], "metrics": ["revenue", "customers"]})
    assert (result.data["metrics"]["revenue"], result.data["metrics"]["customers"]) == (3.25, 1)


def test_undecodable_bytes_are_an_error_not_a_crash(inline: Aesoperator, in_tmp: Path) -> None:
    (in_tmp / "bin.csv").write_bytes(b"date,amount\n2024-01-01,\x81\x8d\x8f\x90\x9d\n" * 3)
    with pytest.raises(ValidationError, match=r"bin\.csv"):
        run(inline, {"data_files": ["bin.csv"], "encoding": "cp1252"})


def test_compressed_inputs(inline: Aesoperator, in_tmp: Path) -> None:
    body = "date,customer,amount\n2024-01-02,Ann,10.50\n2024-02-03,Bob,20.00\n"
    (in_tmp / "s.csv.gz").write_bytes(gzip.compress(body.encode()))
    with zipfile.ZipFile(in_tmp / "s.zip", "w") as zf:
        zf.writestr("../../evil/q3.csv", body)  # a path that must not escape
        zf.writestr("notes.txt.md", "ignored")
    result = run(
        inline, {"data_files": ["s.csv.gz", "s.zip"], "metrics": ["revenue"], "duplicates": "keep"}
    )
    assert result.data["metrics"]["revenue"] == 61.0
    assert result.data["files"] == ["s.csv.gz", "s.zip:../../evil/q3.csv"]
    assert not (in_tmp.parent / "evil").exists()
    (in_tmp / "broken.csv.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ValidationError, match=r"'broken\.csv\.gz' is not a readable gzip file"):
        run(inline, {"data_files": ["broken.csv.gz"]})


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"data_files": ["x.csv"], "metrics": ["revenu"]},
            r"metrics\[0\]: got 'revenu'; unknown metric \(did you mean 'revenue'\?\)",
        ),
        (
            {"data_files": ["x.csv"], "on_bad_rows": "ignore"},
            r"on_bad_rows: got 'ignore'; use 'fail' .* or 'skip'",
        ),
        (
            {"data_files": ["x.csv"], "output_format": "pdf"},
            r"output_format: got 'pdf'; use one of",
        ),
        (
            {"data_files": ["x.csv"], "metric": ["revenue"]},
            r"inputs\.metric: .*unknown input \(did you mean 'metrics'\?\)",
        ),
        (
            {"data_files": ["x.csv"], "column_map": {"ammount": "x"}},
            r"column_map\.ammount: got 'x'; unknown role \(did you mean 'amount'\?\)",
        ),
        ({"data_files": []}, r"data_files: got \[\]; give at least one entry"),
        (
            {"data_files": ["x.csv"], "metrics": [{"name": "n", "sql": "SELECT 1"}, {"sql": "x"}]},
            r"metrics\[1\]: .*a custom metric is",
        ),
    ],
)
def test_bad_inputs_name_the_field(
    inline: Aesoperator, in_tmp: Path, inputs: dict[str, object], message: str
) -> None:
    write_csv(in_tmp / "x.csv", HEADER, GOOD)
    with pytest.raises(ValidationError, match=message):
        run(inline, inputs)


def test_forced_skill_without_files(inline: Aesoperator) -> None:
    from aesoperator import Task

    with pytest.raises(ValidationError, match=r"inputs\.data_files: required field is missing"):
        inline.execute_task(Task(name="numbers", skill="data", inputs={}))


def test_quoted_fields_across_chunk_boundaries(inline: Aesoperator, in_tmp: Path) -> None:
    # ~10 MB read in 4 MB chunks: records with quoted separators, quotes and line breaks fall
    # on chunk boundaries, and one ragged row sits far into the file.
    rows = []
    for i in range(250_000):
        name = f'Prod "{i % 97}", line one\nline two' if i % 7 == 0 else f"Prod {i % 97}"
        rows.append([f"2024-01-{i % 28 + 1:02d}", f"C{i % 500}", name, f"{(i % 50) + 0.25}"])
    write_csv(in_tmp / "q.csv", ["date", "customer", "product", "amount"], rows)
    with (in_tmp / "q.csv").open("a") as fh:
        fh.write("2024-01-02,C1\n")  # the last record is short
    assert (in_tmp / "q.csv").stat().st_size > 2 * 4 * 1024 * 1024
    inputs = {
        "data_files": ["q.csv"],
        "metrics": ["revenue", "customers", "top_products"],
        "top_n": 500,
        "duplicates": "keep",
    }
    last_line = 1 + len(rows) + sum(1 for r in rows if "\n" in r[2]) + 1
    with pytest.raises(
        ValidationError, match=rf"line {last_line}: ragged row: 2 fields, expected 4"
    ):
        run(inline, inputs, max_memory_mb=64)
    result = run(inline, {**inputs, "on_bad_rows": "skip"}, max_memory_mb=64)
    m = result.data["metrics"]
    assert m["revenue"] == pytest.approx(sum(float(r[3]) for r in rows))
    assert m["customers"] == 500
    top = {r["product"] for r in result.data["tables"]["top_products"]}
    assert any("line one\nline two" in p for p in top)
    assert result.data["quality"]["files"][0]["rows_skipped"] == 1
