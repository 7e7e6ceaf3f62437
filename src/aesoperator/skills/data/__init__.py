"""Built-in skill: process data files into exact metrics and a report.

Serves tasks with a ``data_files`` input (or ``Task(skill="data")``)::

    Task(name="process_sales_data", inputs={
        "data_files": ["sales_q1.csv", "sales_q2.csv"],
        "metrics": ["revenue", "growth", "customers"],
        "output_format": "excel",
    })

The semantics (growth, customers, refunds, duplicates, column inference, bad rows) are written
down in this package's README. Importing this module is cheap: polars loads on first run.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...results import Output, TaskResult
    from ...runtime.context import TaskContext
    from ...task import Task

__all__ = ["matches", "run", "save_report"]


def matches(task: Task) -> bool:
    """A task with a ``data_files`` input is a data task."""
    return task.skill == "data" or "data_files" in task.inputs


async def run(ctx: TaskContext) -> Output:
    """Load the files, infer their columns, compute the metrics and write the report."""
    if "polars" not in sys.modules:
        # polars' allocator (jemalloc) keeps freed pages for 10 s by default, and lazily freed
        # pages still count in RSS, which max_memory_mb limits: return them within half a
        # second, for good (0 ms costs a third more CPU in page faults). Read as polars loads.
        os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:0")
    from ._skill import run as _run

    return await _run(ctx)


def save_report(result: TaskResult, path: Path) -> bool:
    """Write the report of a data result in the format implied by ``path``'s extension.

    ``.xlsx`` writes the full workbook, ``.csv``/``.json``/``.md``/``.html``/``.parquet`` the
    same numbers in that format. Returns False (let the caller fall back) for other results.
    """
    data: Any = result.data
    if not isinstance(data, dict) or "metrics" not in data or "tables" not in data:
        return False
    from ._report import EXTENSION, FORMAT_BY_SUFFIX, write

    fmt = FORMAT_BY_SUFFIX.get(Path(path).suffix.lower())
    if fmt is None:
        return False
    # The report the execution already wrote, when it is the one asked for: copy it.
    for art in result.files:
        if art.name == f"report.{EXTENSION[fmt]}" and Path(art.path).is_file():
            shutil.copyfile(art.path, path)
            return True
    write(data, fmt, Path(path))
    return True
