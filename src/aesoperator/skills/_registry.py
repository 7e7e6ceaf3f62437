"""The built-in skills by name: where each lives, in which order they are asked, and how to
load one. The router (which planner serves a task) and ``TaskResult.save_report`` (a skill's
own report writer) both look skills up here.

Each skill package is cheap to import and exposes::

    def matches(task: Task) -> bool            # does this skill serve the task?
    async def run(ctx: TaskContext) -> Any     # Output, str, or any JSON-able value
    def save_report(result: TaskResult, path: Path) -> bool   # optional; False = fall back
    def missing(task: Task) -> str | None      # optional; names the input a task lacks
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results import TaskResult

SKILLS: dict[str, str] = {
    "monitor": "aesoperator.skills.monitor",
    "data": "aesoperator.skills.data",
    "summarize": "aesoperator.skills.summarize",
    "research": "aesoperator.skills.research",
}
# Most specific first: a monitor or data task may also carry text inputs.
MATCH_ORDER = ("monitor", "data", "summarize", "research")


def skill_module(name: str) -> ModuleType | None:
    """The skill's package, or None if no skill has that name or it is not installed."""
    path = SKILLS.get(name)
    if path is None:
        return None
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name and path.startswith(exc.name):
            return None  # skill not installed in this build
        raise


def skill_report_writer(name: str) -> Callable[[TaskResult, Path], bool] | None:
    """The skill's own ``save_report``, if it has one."""
    module = skill_module(name)
    writer = getattr(module, "save_report", None) if module else None
    return writer if callable(writer) else None
