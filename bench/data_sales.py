"""Benchmark: TASKS.md's sales analysis on 10 million rows (about 1 GB of CSV in four files).

Three contenders compute the same numbers on the same files, each in its own process, and
write an Excel report:

* ``ours``: ``Aesoperator().execute_task(...)`` with ``max_memory_mb=2048`` (a warm worker
  process that has run one small data task, as in a long-lived client), then
  ``result.save_report("....xlsx")``;
* ``pandas``: a hand-written pandas script;
* ``polars``: a hand-written polars (lazy) script.

The numbers are those of the data skill's README: exact duplicate rows count once, rows without
an amount are left out, revenue is net of refunds, customers and orders are distinct among
sales (amount > 0), growth is file over file, plus revenue, orders and customers by month and by
file. The script prints wall time (after imports, input files cached on disk) and the peak RSS
of each contender's whole process tree, the ratios, and checks that the numbers agree.

    .venv/bin/python bench/data_sales.py               # 10M rows, ~1 GB, cached in .bench/
    .venv/bin/python bench/data_sales.py --rows 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REGIONS = ["North America", "Europe", "Asia Pacific", "Latin America", "Middle East", "Africa"]


# -- input ----------------------------------------------------------------------------------


def generate(out_dir: Path, rows: int, files: int = 4, seed: int = 42) -> list[Path]:
    """Write ``files`` CSVs (one per quarter of 2024), ``rows`` in total, ~100 bytes a row."""
    import numpy as np
    import polars as pl

    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    per = rows // files
    n_customers = max(10, rows // 50)
    for q in range(files):
        n = per if q < files - 1 else rows - per * (files - 1)
        path = out_dir / f"sales_2024_q{q + 1}.csv"
        paths.append(path)
        if path.exists():
            continue
        start = np.datetime64("2024-01-01") + np.timedelta64(91 * q, "D")
        days = rng.integers(0, 91, n)
        qty = rng.integers(1, 10, n)
        price = np.round(rng.gamma(2.0, 20.0, n) + 1, 2)
        amount = np.round(qty * price, 2)
        amount = np.where(rng.random(n) < 0.02, -amount, amount)  # 2 % refunds
        first = q * per
        df = pl.DataFrame(
            {
                "order_id": pl.Series(np.arange(first, first + n) // 2).cast(pl.String),
                "order_date": pl.Series(start + days.astype("timedelta64[D]")).cast(pl.Date),
                "customer_id": pl.Series(rng.integers(0, n_customers, n)).cast(pl.String),
                "product": pl.Series(rng.zipf(1.3, n) % 5000).cast(pl.String),
                "region": pl.Series(np.array(REGIONS)[rng.integers(0, len(REGIONS), n)]),
                "quantity": qty,
                "unit_price": price,
                "amount": amount,
                "channel": pl.Series(
                    np.array(["online", "store", "partner"])[rng.integers(0, 3, n)]
                ),
                "sales_rep": pl.Series(rng.integers(0, 400, n)).cast(pl.String),
            }
        ).with_columns(
            ("O" + pl.col("order_id").str.zfill(9)).alias("order_id"),
            ("C" + pl.col("customer_id").str.zfill(7)).alias("customer_id"),
            ("Product " + pl.col("product").str.zfill(4)).alias("product"),
            ("rep" + pl.col("sales_rep").str.zfill(3) + "@example.com").alias("sales_rep"),
        )
        if q == files - 1 and n > 1000:
            df = pl.concat([df, df.head(500)])  # some exact duplicate rows
        tmp = path.with_suffix(".tmp")
        df.write_csv(tmp)
        tmp.rename(path)
    return paths


# -- contenders (each runs in its own process) -----------------------------------------------


def run_ours(files: list[str], out: Path) -> dict[str, Any]:
    from aesoperator import Aesoperator, Task, TaskConfig

    with Aesoperator(data_dir=out / "store", pool_size=1) as aesop:
        aesop.warmup()
        # Like the baselines, timed after imports: a first small task loads polars in the worker.
        tiny = out / "tiny.csv"
        tiny.write_text("date,amount\n2024-01-01,1\n")
        aesop.execute_task(Task(name="warm", inputs={"data_files": [str(tiny)]}))
        start = time.perf_counter()
        result = aesop.execute_task(
            Task(
                name="process_sales_data",
                config=TaskConfig(max_memory_mb=2048, max_duration_seconds=600),
                inputs={
                    "data_files": files,
                    "metrics": ["revenue", "growth", "customers"],
                    "output_format": "excel",
                },
            )
        )
        result.save_report(out / "ours.xlsx")
        wall = time.perf_counter() - start
    m = result.data["metrics"]
    months = result.data["tables"]["by_period"]
    return {
        "wall": wall,
        "revenue": m["revenue"],
        "growth": m["growth"],
        "customers": m["customers"],
        "months": [(p["period"], p["revenue"], p["orders"], p["customers"]) for p in months],
    }


def run_pandas(files: list[str], out: Path) -> dict[str, Any]:
    import pandas as pd

    start = time.perf_counter()
    frames = []
    for i, f in enumerate(files):
        df = pd.read_csv(f)
        df["file"] = i
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df = df.drop_duplicates(subset=[c for c in df.columns if c != "file"])
    df = df[df["amount"].notna()]
    df["month"] = df["order_date"].str.slice(0, 7)
    sale = df[df["amount"] > 0]

    def table(key: str) -> pd.DataFrame:
        t = df.groupby(key).agg(revenue=("amount", "sum"))
        t["orders"] = sale.groupby(key)["order_id"].nunique()
        t["customers"] = sale.groupby(key)["customer_id"].nunique()
        t = t.fillna(0)
        t["average_order_value"] = t["revenue"] / t["orders"]
        t["growth"] = t["revenue"].pct_change()
        return t.reset_index()

    by_month, by_file = table("month"), table("file")
    revenue = float(df["amount"].sum())
    customers = int(sale["customer_id"].nunique())
    growth = float(by_file["growth"].iloc[-1])
    summary = pd.DataFrame(
        {"metric": ["revenue", "growth", "customers"], "value": [revenue, growth, customers]}
    )
    with pd.ExcelWriter(out / "pandas.xlsx", engine="xlsxwriter") as xw:
        summary.to_excel(xw, sheet_name="Summary", index=False)
        by_month.to_excel(xw, sheet_name="By month", index=False)
        by_file.to_excel(xw, sheet_name="By file", index=False)
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "revenue": revenue,
        "growth": growth,
        "customers": customers,
        "months": [
            (r.month, r.revenue, int(r.orders), int(r.customers)) for r in by_month.itertuples()
        ],
    }


def run_polars(files: list[str], out: Path) -> dict[str, Any]:
    import polars as pl

    start = time.perf_counter()
    lf = pl.concat(
        [pl.scan_csv(f).with_columns(pl.lit(i).alias("file")) for i, f in enumerate(files)]
    )
    cols = [c for c in lf.collect_schema().names() if c != "file"]
    df = (
        lf.unique(subset=cols)
        .filter(pl.col("amount").is_not_null())
        .select(
            "file",
            "order_id",
            "customer_id",
            "amount",
            pl.col("order_date").str.slice(0, 7).alias("month"),
        )
        .collect(engine="streaming")
    )
    sale = pl.col("amount") > 0
    aggs = [
        pl.col("amount").sum().alias("revenue"),
        pl.col("order_id").filter(sale).n_unique().alias("orders"),
        pl.col("customer_id").filter(sale).n_unique().alias("customers"),
    ]

    def table(key: str) -> pl.DataFrame:
        return (
            df.group_by(key)
            .agg(aggs)
            .sort(key)
            .with_columns(
                (pl.col("revenue") / pl.col("orders")).alias("average_order_value"),
                pl.col("revenue").pct_change().alias("growth"),
            )
        )

    by_month, by_file = table("month"), table("file")
    totals = df.select(aggs).row(0, named=True)
    growth = by_file["growth"][-1]
    summary = pl.DataFrame(
        {
            "metric": ["revenue", "growth", "customers"],
            "value": [totals["revenue"], growth, float(totals["customers"])],
        }
    )
    import xlsxwriter

    with xlsxwriter.Workbook(out / "polars.xlsx") as wb:
        summary.write_excel(wb, worksheet="Summary")
        by_month.write_excel(wb, worksheet="By month")
        by_file.write_excel(wb, worksheet="By file")
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "revenue": totals["revenue"],
        "growth": growth,
        "customers": totals["customers"],
        "months": [
            tuple(r) for r in by_month.select("month", "revenue", "orders", "customers").rows()
        ],
    }


CONTENDERS = {"ours": run_ours, "pandas": run_pandas, "polars": run_polars}


# -- harness ----------------------------------------------------------------------------------


def _measure(name: str, files: list[Path], out: Path) -> dict[str, Any]:
    """Run one contender in a fresh process; poll its process tree's RSS every 20 ms."""
    import psutil

    cmd = [sys.executable, __file__, "--contender", name, "--out", str(out), *map(str, files)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = [0]
    cpu: dict[int, float] = {}  # last CPU time seen per process of the tree
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):
                for p in [ps, *ps.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                        t = p.cpu_times()
                        cpu[p.pid] = t.user + t.system
            peak[0] = max(peak[0], total)
            time.sleep(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    stdout, _ = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mb"] = peak[0] / 2**20
    # CPU of the whole process tree, start-up included (less sensitive to a busy machine).
    result["cpu"] = sum(cpu.values())
    return result


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def close(x: float, y: float) -> bool:
        return abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y))

    if not (close(a["revenue"], b["revenue"]) and close(a["growth"], b["growth"])):
        return False
    if a["customers"] != b["customers"] or len(a["months"]) != len(b["months"]):
        return False
    return all(
        x[0] == y[0] and close(x[1], y[1]) and x[2] == y[2] and x[3] == y[3]
        for x, y in zip(a["months"], b["months"], strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--skip", action="append", default=[], choices=list(CONTENDERS))
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of ours and polars, interleaved (best kept)"
    )
    parser.add_argument("--contender", choices=list(CONTENDERS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.contender:  # child process
        result = CONTENDERS[args.contender](args.paths, args.out)
        print(json.dumps(result))
        return
    root = Path(__file__).resolve().parent.parent / ".bench" / f"data_sales_{args.rows}"
    files = generate(root, args.rows, args.files)
    size = sum(f.stat().st_size for f in files)
    print(
        f"input: {args.rows:,} rows (+ duplicates) in {len(files)} CSV files, {size / 1e9:.2f} GB"
    )
    results: dict[str, dict[str, Any]] = {}
    # Interleaved, so that a busy moment of the machine does not fall on one contender only;
    # pandas (slow, the loosest target) runs once.
    order = [n for _ in range(args.repeat) for n in ("ours", "polars")] + ["pandas"]
    with tempfile.TemporaryDirectory() as tmp:
        for k, name in enumerate(order):
            if name in args.skip:
                continue
            out = Path(tmp) / f"{name}{k}"
            out.mkdir()
            r = _measure(name, files, out)
            print(
                f"{name:>7}: {r['wall']:7.2f} s   peak RSS {r['peak_mb']:7.0f} MB   "
                f"cpu {r['cpu']:6.1f} s   revenue {r['revenue']:,.2f}  "
                f"growth {r['growth']:+.4%}  customers {r['customers']:,}",
                flush=True,
            )
            best = results.get(name)
            if best is None or r["wall"] < best["wall"]:
                r["peak_mb"] = max(r["peak_mb"], best["peak_mb"] if best else 0)
                results[name] = r
            else:
                best["peak_mb"] = max(best["peak_mb"], r["peak_mb"])
    ours = results.get("ours")
    if ours is None:
        return
    for name, r in results.items():
        if name == "ours":
            continue
        agree = "same numbers" if _same(ours, r) else "NUMBERS DIFFER"
        print(
            f"ours vs {name}: {r['wall'] / ours['wall']:.2f}x the speed "
            f"(target {'>= 3' if name == 'pandas' else '>= 0.8'}), "
            f"{ours['peak_mb'] / r['peak_mb']:.2f}x the peak RSS; {agree}"
        )
    print(
        f"ours peak RSS {ours['peak_mb']:.0f} MB vs max_memory_mb=2048: "
        f"{'within' if ours['peak_mb'] < 2048 else 'OVER'}"
    )


if __name__ == "__main__":
    os.environ.setdefault("POLARS_VERBOSE", "0")
    main()
