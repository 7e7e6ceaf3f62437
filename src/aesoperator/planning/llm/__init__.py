"""The LLM planner: free-form tasks broken into browser actions and function calls.

``run(ctx, llm)`` is what the runtime calls for a task no handler or skill serves. The model
observes the page (URL, title, indexed interactive elements, visible text), calls one of the
tools (``navigate``, ``click``, ``type``, ... ``finish``) or a function registered with
``@aesop.function``, and each call is a recorded action of the execution. Budgets
(``max_steps``, ``max_pages``, ``max_duration_seconds``, ``max_llm_tokens``,
``max_cost_usd``) are hard; page content is data, never instructions, and every request still
goes through the web policy; secrets are typed by placeholder and redacted everywhere.

Every execution keeps its trace (``llm_trace.json``, an artifact); a task with the input
``__replay__`` set to an execution id replays that trace without calling the model (see
:func:`replay_task`). This module is cheap to import: the browser and the provider SDKs load
on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...results import Output
    from ...runtime.context import TaskContext
    from ...task import Task, TaskConfig

__all__ = ["REPLAY_INPUT", "replay_task", "run"]

REPLAY_INPUT = "__replay__"
REPAIR_INPUT = "__repair__"


async def run(ctx: TaskContext, llm: str | None) -> Output | Any:
    """Plan and carry out ``ctx.task`` with the model ``llm`` (or ``$AESOP_LLM``)."""
    from ...errors import NoPlannerError
    from ...models import resolve

    spec = llm or os.environ.get("AESOP_LLM")
    if REPLAY_INPUT in ctx.inputs:
        return await _replay_from_inputs(ctx, spec)
    if not spec:
        raise NoPlannerError(
            "the LLM planner needs a model: Aesoperator(llm='openai:gpt-4.1-mini') or AESOP_LLM"
        )
    from ._agent import Agent

    return await Agent(ctx, resolve(spec)).run()


def replay_task(
    execution_id: str,
    inputs: dict[str, Any] | None = None,
    *,
    name: str = "replay",
    config: TaskConfig | None = None,
    secrets: dict[str, str] | None = None,
    repair: bool = True,
) -> Task:
    """A task that replays the recorded trace of ``execution_id`` with new ``inputs``.

    >>> aesop.execute_task(replay_task(first.execution_id, {"query": "lamp"}))  # doctest: +SKIP

    No model is called unless a step cannot be found and ``repair`` is true.
    """
    from ...task import Task, TaskConfig

    data = dict(inputs or {})
    data[REPLAY_INPUT] = execution_id
    data[REPAIR_INPUT] = repair
    return Task(
        name=name,
        planner="llm",
        inputs=data,
        config=config or TaskConfig(),
        secrets=secrets or {},
    )


async def _replay_from_inputs(ctx: TaskContext, spec: str | None) -> Output:
    from ...errors import NotFoundError
    from ...models import resolve
    from ._replay import replay
    from ._trace import TRACE_FILE, Trace

    source = str(ctx.inputs[REPLAY_INPUT])
    if not source.isalnum():
        raise NotFoundError(f"inputs.{REPLAY_INPUT}: got {source!r}; use an execution id")
    path = ctx._artifacts.artifacts_dir(source) / TRACE_FILE
    if not path.exists():
        raise NotFoundError(
            f"inputs.{REPLAY_INPUT}: execution {source!r} has no recorded LLM trace to replay"
        )
    trace = Trace.loads(path.read_text(encoding="utf-8"))
    inputs = {k: v for k, v in ctx.inputs.items() if k not in (REPLAY_INPUT, REPAIR_INPUT)}
    repair = ctx.inputs.get(REPAIR_INPUT, True) is not False
    model = resolve(spec) if (spec and repair) else None
    return await replay(ctx, trace, inputs, model, source=source)
