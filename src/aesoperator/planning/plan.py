"""Plans: a task given as explicit steps, each a named action with JSON arguments.

A ``Plan`` is what the other planners produce implicitly (``result.actions`` is the plan as
executed); given up front in ``Task(plan=...)`` — in Python or a YAML task file — it runs
without any handler, skill or model::

    Task(name="snapshot_docs", inputs={"url": "https://docs.example.org"}, plan=[
        {"action": "fetch", "args": {"url": "${url}"}, "save_as": "page"},
        {"action": "memory_set", "args": {"key": "title", "value": "${page.title}"}},
        {"action": "summarize", "args": {"text": "${page.text}", "max_length": 300}},
    ])

Arguments may reference the task's inputs and earlier steps' saved outputs: a string that is
exactly ``"${name.field}"`` takes the value itself; ``${...}`` inside a longer string is
replaced by its text. Actions: ``fetch``, ``crawl``, ``screenshot``, ``memory_get``,
``memory_set``, ``summarize``, ``subtask``, and every function registered with
``@aesop.function``. Each step is recorded and retried on transient errors like any other.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from ..errors import UserError, ValidationError
from ..results import Output
from ..task import Plan, Step, Task

if TYPE_CHECKING:
    from ..runtime.context import TaskContext

_REF = re.compile(r"\$\{([A-Za-z_][\w]*(?:\.[\w-]+)*)\}")


async def _fetch(ctx: TaskContext, url: str, mode: str | None = None) -> dict[str, Any]:
    page = await ctx.web.fetch(url, mode=mode)  # type: ignore[arg-type]
    info = await ctx.web.extract(page)
    return {
        "url": page.url,
        "status": page.status,
        "content_type": page.content_type,
        "title": info.title,
        "date": info.date,
        "text": info.text,
        "links": [link.url for link in info.links],
    }


async def _crawl(
    ctx: TaskContext,
    start_urls: list[str] | str,
    strategy: Literal["bfs", "best_first"] = "bfs",
    max_pages: int | None = None,
    max_depth: int | None = None,
    same_host: bool = True,
) -> list[dict[str, Any]]:
    starts = [start_urls] if isinstance(start_urls, str) else list(start_urls)
    out = []
    async for page in ctx.web.crawl(
        starts, strategy=strategy, max_pages=max_pages, max_depth=max_depth, same_host=same_host
    ):
        out.append({"url": page.url, "status": page.status, "content_type": page.content_type})
    return out


async def _screenshot(
    ctx: TaskContext, url: str, name: str = "screenshot.png", full_page: bool = False
) -> str:
    png = await ctx.web.screenshot(url, full_page=full_page)
    return ctx.add_file(name, png, "image/png").name


async def _memory_get(ctx: TaskContext, key: str, default: Any = None) -> Any:
    return ctx.memory.get(key, default)


async def _memory_set(ctx: TaskContext, key: str, value: Any) -> Any:
    ctx.memory.set(key, value)
    return value


async def _summarize(ctx: TaskContext, text: str | list[str], max_length: int = 1000) -> str:
    child = Task(name="summarize", inputs={"text": text, "max_length": max_length})
    return (await ctx.run_subtask(child)).content


async def _subtask(ctx: TaskContext, task: dict[str, Any]) -> dict[str, Any]:
    result = await ctx.run_subtask(Task.model_validate(task))
    return {"content": result.content, "summary": result.summary, "data": result.data}


BUILTIN: dict[str, Callable[..., Awaitable[Any]]] = {
    "fetch": _fetch,
    "crawl": _crawl,
    "screenshot": _screenshot,
    "memory_get": _memory_get,
    "memory_set": _memory_set,
    "summarize": _summarize,
    "subtask": _subtask,
}


def check_actions(plan: Plan, functions: dict[str, Any]) -> None:
    """Refuse a plan naming an action nobody provides, before anything runs."""
    for i, step in enumerate(plan.steps):
        if step.action not in BUILTIN and step.action not in functions:
            known = sorted(BUILTIN) + sorted(functions)
            raise ValidationError(
                f"Task.plan.steps[{i}].action: got {step.action!r}; use one of {known} "
                "or register a function with @aesop.function"
            )


def _lookup(path: str, scope: dict[str, Any], where: str) -> Any:
    head, *rest = path.split(".")
    if head not in scope:
        raise UserError(f"{where}: ${{{path}}} names nothing; known: {sorted(scope)}")
    value = scope[head]
    for part in rest:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise UserError(f"{where}: ${{{path}}}: no {part!r} in the value of {head!r}")
    return value


def resolve(value: Any, scope: dict[str, Any], where: str) -> Any:
    """Replace ``${...}`` references in ``value`` (recursively) from ``scope``."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), scope, where)

        def text(m: re.Match[str]) -> str:
            found = _lookup(m.group(1), scope, where)
            return found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)

        return _REF.sub(text, value)
    if isinstance(value, list):
        return [resolve(v, scope, where) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, scope, where) for k, v in value.items()}
    return value


async def run_plan(ctx: TaskContext, plan: Plan) -> Output:
    """Run ``plan``'s steps in order as recorded, retried actions."""
    scope: dict[str, Any] = dict(ctx.inputs)
    outputs: dict[str, Any] = {}
    last: Any = None
    total = len(plan.steps)
    for i, step in enumerate(plan.steps):
        ctx.check_cancelled()
        where = f"Task.plan.steps[{i}] ({step.action})"
        args = resolve(step.args, scope, where)
        fn = BUILTIN.get(step.action)
        if fn is not None:
            bound: Callable[..., Any] = _bind(fn, ctx)
        elif step.action in ctx.functions:
            bound = ctx.functions[step.action]
        else:
            raise UserError(f"{where}: unknown action")
        _check_args(bound, args, where)
        label = f"{step.action} {next(iter(args.values()), '')}".strip()[:200]
        last = await ctx.step(label, bound, **args)
        if inspect.isawaitable(last):
            last = await last
        if step.save_as:
            scope[step.save_as] = outputs[step.save_as] = last
        ctx.progress((i + 1) * 100 / total)
    content = last if isinstance(last, str) else ""
    data = {"outputs": outputs, "result": last} if outputs else last
    return Output(content=content, data=data)


def _bind(fn: Callable[..., Awaitable[Any]], ctx: TaskContext) -> Callable[..., Any]:
    async def call(**kwargs: Any) -> Any:
        return await fn(ctx, **kwargs)

    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        list(inspect.signature(fn).parameters.values())[1:]
    )
    return call


def _check_args(fn: Callable[..., Any], args: dict[str, Any], where: str) -> None:
    try:
        inspect.signature(fn).bind(**args)
    except TypeError as exc:
        params = list(inspect.signature(fn).parameters)
        raise ValidationError(
            f"{where}: bad arguments {sorted(args)} ({exc}); takes {params}"
        ) from None


__all__ = ["BUILTIN", "Plan", "Step", "check_actions", "run_plan"]
