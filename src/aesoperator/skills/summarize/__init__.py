"""Built-in summarize skill: an extractive summary that never exceeds ``max_length``.

Inputs: ``text`` (a string, a list of strings, or http(s) URLs to read through ``ctx.web``),
``max_length`` (characters, default 1000), ``format`` (``paragraph`` | ``bullets``),
optional ``query`` (favour sentences about it). Cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...runtime.context import TaskContext
    from ...task import Task

__all__ = ["matches", "missing", "run"]

_NAMES = ("summarize", "summarise", "summary")


def matches(task: Task) -> bool:
    """``skill="summarize"``, or a task named ``summarize`` / ``summarize_*`` with ``text``."""
    if task.skill == "summarize":
        return True
    return _named(task) and "text" in task.inputs


def missing(task: Task) -> str | None:
    """What a task named for this skill lacks (said instead of "no planner can serve")."""
    if not _named(task) or "text" in task.inputs:
        return None
    return (
        f"Task {task.name!r} is served by the built-in summarize skill, which needs a 'text' "
        "input: the text, a list of texts, or URLs (inputs={'text': ...}; CLI: -i text=...)"
    )


def _named(task: Task) -> bool:
    name = task.name.lower()
    return name in _NAMES or name.startswith(tuple(f"{n}{sep}" for n in _NAMES for sep in "_-."))


async def run(ctx: TaskContext) -> Any:
    """Summarise ``ctx.inputs['text']``."""
    from ._run import summarize_task

    return await summarize_task(ctx)
