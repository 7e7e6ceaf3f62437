"""Generate a sales dataset as quarterly CSV files (used by bench/data_*.py).

About 100 bytes a row: 10 million rows over four files is about 1 GB. Deterministic per seed,
cached by the caller.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

REGIONS = ["North America", "Europe", "Asia Pacific", "Latin America", "Middle East", "Africa"]


def generate(out_dir: Path, rows: int, files: int = 4, seed: int = 42) -> list[Path]:
    """Write ``files`` CSVs (one per quarter of 2024) with ``rows`` rows in total."""
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
        refund = rng.random(n) < 0.02
        amount = np.where(refund, -amount, amount)
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
                "channel": pl.Series(np.array(["online", "store", "partner"])[rng.integers(0, 3, n)]),
                "sales_rep": pl.Series(rng.integers(0, 400, n)).cast(pl.String),
            }
        ).with_columns(
            ("O" + pl.col("order_id").str.zfill(9)).alias("order_id"),
            ("C" + pl.col("customer_id").str.zfill(7)).alias("customer_id"),
            ("Product " + pl.col("product").str.zfill(4)).alias("product"),
            ("rep" + pl.col("sales_rep").str.zfill(3) + "@example.com").alias("sales_rep"),
        )
        tmp = path.with_suffix(".tmp")
        df.write_csv(tmp)
        tmp.rename(path)
    return paths
