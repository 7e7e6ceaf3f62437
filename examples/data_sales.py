"""TASKS.md's "Data Processing Task", runnable offline.

    python examples/data_sales.py [--rows 20000] [--keep DIR]

Writes two quarters of generated sales (``sales_q1.csv``, ``sales_q2.csv``: amounts written
like ``$1,234.50``, a few refunds) into a working directory, runs the task exactly as TASKS.md
writes it, prints the summary and the metrics, and saves ``sales_analysis.xlsx`` there.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile
from datetime import date, timedelta
from pathlib import Path

from aesoperator import Aesoperator, Task, TaskConfig

PRODUCTS = ["Espresso machine", "Grinder", "Milk jug", "Tamper", "Descaler", "Filter papers"]
PRICES = [499.0, 129.0, 19.9, 24.5, 9.99, 4.5]
REGIONS = ["North", "South", "East", "West"]


def write_quarter(path: Path, start: date, rows: int, rng: random.Random) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Order ID", "Order Date", "Customer", "Product", "Region", "Qty", "Amount"])
        for i in range(rows):
            p = rng.randrange(len(PRODUCTS))
            qty = rng.randint(1, 4)
            amount = qty * PRICES[p] * (-1 if rng.random() < 0.03 else 1)  # 3 % refunds
            day = start + timedelta(days=rng.randrange(90))
            order = f"{path.stem.upper()}-{i // 2:06d}"
            customer = f"CUST-{rng.randrange(rows // 5 + 1):05d}"
            money = f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"
            w.writerow(
                [order, day.isoformat(), customer, PRODUCTS[p], rng.choice(REGIONS), qty, money]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per quarter")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep the files")
    opts = parser.parse_args()
    work = opts.keep or Path(tempfile.mkdtemp(prefix="aesop-sales-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2024)
    write_quarter(work / "sales_q1.csv", date(2024, 1, 1), opts.rows, rng)
    write_quarter(work / "sales_q2.csv", date(2024, 4, 1), opts.rows, rng)
    os.chdir(work)  # TASKS.md names the files relative to the current directory

    with tempfile.TemporaryDirectory() as data_dir:
        aesop = Aesoperator(data_dir=data_dir)
        # -- as in TASKS.md ---------------------------------------------------------------
        process_task = Task(
            name="process_sales_data",
            description="Extract and analyze sales data from CSV files",
            config=TaskConfig(max_memory_mb=2048, max_duration_seconds=600),
            inputs={
                "data_files": ["sales_q1.csv", "sales_q2.csv"],
                "metrics": ["revenue", "growth", "customers"],
                "output_format": "excel",
            },
        )

        result = aesop.execute_task(process_task)
        result.save_report("sales_analysis.xlsx")
        # ----------------------------------------------------------------------------------
        aesop.close()
    print(result.summary)
    print()
    print(result.content.split("## Revenue by file")[0])
    print(f"Workbook: {work / 'sales_analysis.xlsx'}")


if __name__ == "__main__":
    main()
