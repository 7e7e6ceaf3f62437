"""Which planner serves a task: a user handler, a built-in skill, or the LLM planner.

Built-in skills are found through ``aesoperator.skills._registry`` (what each skill package
exposes is described there).

Order: the task's own ``plan`` when it has one, a handler registered for the task's name, then
``task.skill`` when forced, then the first built-in skill whose ``matches`` says yes, then the
LLM planner when a model is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NoPlannerError, UserError
from ..skills._registry import MATCH_ORDER, SKILLS, skill_module, skill_report_writer
from .llm import REPLAY_INPUT

if TYPE_CHECKING:
    from ..task import Task

__all__ = ["MATCH_ORDER", "SKILLS", "choose", "skill_module", "skill_report_writer"]


def choose(task: Task, handlers: dict[str, Any], llm_configured: bool) -> tuple[str, str]:
    """``(kind, name)``: ``("plan", "")``, ``("handler", task.name)``, ``("skill", s)`` or
    ``("llm", "")``."""
    forced = task.planner
    if task.plan is not None and forced in ("auto", "plan"):
        return "plan", ""
    if forced == "plan":
        raise NoPlannerError(
            f"Task {task.name!r} has planner='plan' but no plan; give Task(plan=[...])"
        )
    if forced in ("auto", "handler") and task.name in handlers:
        return "handler", task.name
    if forced == "handler":
        raise NoPlannerError(
            f"Task {task.name!r} has planner='handler' but no handler is registered for it; "
            f"register one with @aesop.handler({task.name!r})"
        )
    if task.skill is not None:
        if task.skill not in SKILLS or skill_module(task.skill) is None:
            raise UserError(f"Task.skill: got {task.skill!r}; built-in skills are {sorted(SKILLS)}")
        return "skill", task.skill
    if forced in ("auto", "skill"):
        for name in MATCH_ORDER:
            module = skill_module(name)
            matches = getattr(module, "matches", None)
            if matches is not None and matches(task):
                return "skill", name
    if forced in ("auto", "llm") and llm_configured:
        return "llm", ""
    if forced == "llm" and REPLAY_INPUT in task.inputs:
        return "llm", ""  # a replay runs the recorded trace: no model needed
    for name in MATCH_ORDER if forced in ("auto", "skill") else ():
        # A task named for a skill but lacking its input: name the input.
        missing = getattr(skill_module(name), "missing", None)
        hint = missing(task) if missing is not None else None
        if hint:
            raise NoPlannerError(hint)
    raise NoPlannerError(
        f"No planner can serve task {task.name!r}: register a handler with "
        f"@aesop.handler({task.name!r}), use a built-in skill (Task(skill=...), one of "
        f"{sorted(SKILLS)}, or inputs they recognise), or configure an LLM with "
        "Aesoperator(llm='openai:gpt-4.1-mini') or the AESOP_LLM environment variable"
    )
