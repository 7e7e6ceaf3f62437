"""Large files within the memory limit; cancel and time limit stop the work mid-file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from aesoperator import (
    Aesoperator,
    Task,
    TaskCancelled,
    TaskConfig,
    TaskState,
    TimeLimitExceeded,
)
from waiting import eventually


def _wide_csv(path: Path, rows: int, width: int) -> Path:
    """Sales rows with a long free-text column: a big file whose metrics need little memory."""
    rng = np.random.default_rng(7)
    days = rng.integers(0, 180, rows).astype("timedelta64[D]")
    pl.DataFrame(
        {
            "date": pl.Series(np.datetime64("2024-01-01") + days).cast(pl.Date),
            "customer": pl.Series(rng.integers(0, 5000, rows)).cast(pl.String),
            "amount": np.round(rng.random(rows) * 100 - 5, 2),
            "notes": pl.Series(rng.integers(0, 10**9, rows)).cast(pl.String),
        }
    ).with_columns(pl.col("notes").str.pad_end(width, "x")).write_csv(path)
    return path


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _wide_csv(tmp_path_factory.mktemp("big") / "big.csv", 250_000, 400)


def test_a_file_bigger_than_the_memory_limit(tmp_path: Path) -> None:
    path = _wide_csv(tmp_path / "huge.csv", 640_000, 500)
    limit = 300
    assert path.stat().st_size > limit * 1024 * 1024
    # A fresh pool: nothing left in the worker from earlier tests.
    with Aesoperator(data_dir=tmp_path / "store", pool_size=1) as aesop:
        result = aesop.execute_task(
            Task(
                name="huge",
                inputs={"data_files": [str(path)], "metrics": ["revenue", "customers"]},
                config=TaskConfig(max_memory_mb=limit),
            )
        )
    want = (
        pl.scan_csv(path)
        .select(pl.col("amount").sum(), pl.col("customer").filter(pl.col("amount") > 0).n_unique())
        .collect()
    )
    assert result.data["metrics"]["revenue"] == pytest.approx(want.item(0, 0), rel=1e-12)
    assert result.data["metrics"]["customers"] == want.item(0, 1)
    assert result.data["quality"]["rows_read"] == 640_000


def _data_threads() -> list[str]:
    """Threads currently running code of the data skill."""
    found = []
    for ident, frame in sys._current_frames().items():
        f = frame
        while f is not None:
            if "skills/data/" in f.f_code.co_filename.replace("\\", "/"):
                found.append(f"{ident}: {f.f_code.co_filename}:{f.f_lineno}")
                break
            f = f.f_back
    return found


def _no_data_thread() -> bool:
    assert _data_threads() == []
    return True


def test_cancel_mid_file_leaves_no_thread(inline: Aesoperator, big_csv: Path) -> None:
    # A small memory limit means small chunks: many chances to stop.
    task = Task(
        name="cancel_me",
        inputs={"data_files": [str(big_csv)]},
        config=TaskConfig(max_memory_mb=128),
    )
    execution = inline.execute_task_async(task)
    # Polled often: the window to catch (10% < progress < 85%) is short on a fast machine.
    eventually(
        lambda: execution.status().progress > 10, timeout=30, interval=0.005, what="progress > 10%"
    )
    status = execution.status()
    assert status.state == TaskState.RUNNING and 10 < status.progress < 85, status
    execution.cancel()
    final = execution.wait(10)
    assert final.state == TaskState.CANCELLED
    with pytest.raises(TaskCancelled):
        execution.result()
    # The work stopped: no thread is still inside the skill shortly after.
    eventually(_no_data_thread, timeout=5, interval=0.02)
    actions = [e.data["name"] for e in inline.get_events(execution.id) if e.kind == "action"]
    assert "read_file" in actions and "report" not in actions


def test_time_limit_stops_a_long_read(inline: Aesoperator, big_csv: Path) -> None:
    task = Task(
        name="too_slow",
        inputs={"data_files": [str(big_csv)] * 40},
        # 3 s: room to start reading on a loaded machine, far from the 40 files' ~20 s.
        config=TaskConfig(max_duration_seconds=3, max_memory_mb=128),
    )
    execution = inline.execute_task_async(task)
    with pytest.raises(TimeLimitExceeded):
        execution.result(60)
    # It stopped where it was: far from reading the 40 files.
    actions = [e.data["name"] for e in inline.get_events(execution.id) if e.kind == "action"]
    assert 0 < actions.count("read_file") < 40 and "report" not in actions
    eventually(_no_data_thread, timeout=5, interval=0.02)
