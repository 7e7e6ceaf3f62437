"""The Temporal workflow of one execution: run its planner as an activity, end it if that fails.

Kept to ``temporalio`` and the standard library on purpose: Temporal re-imports workflow code
in a deterministic sandbox, and the work (network, processes, the store) belongs in
activities, which live in ``_temporal_worker``. Activities are named by string, so this
module never imports them.

The planner starts as a *local* activity on the worker that took the workflow's first task:
most executions are short, and one that ends within ``FAST_BUDGET_S`` costs the server no
activity task at all (6 history events instead of 11, about 40 % less server CPU per
execution: ``bench/temporal_throughput.py``). One still running then goes on where it runs,
followed by a regular heartbeating activity on that worker's own task queue; if that worker
is lost, on any worker of the shared queue, under the task's retry policy. The history stays
small whatever the task does (heartbeats are not history events).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, TimeoutError, TimeoutType

WORKFLOW = "aesop.execution"
RUN_ACTIVITY = "aesop.run_execution"
FAST_ACTIVITY = "aesop.run_execution_fast"
END_ACTIVITY = "aesop.end_execution"

# A worker that dies is noticed after this long without a heartbeat; the activity then
# starts again on another worker. Heartbeats go every HEARTBEAT_EVERY_S seconds.
HEARTBEAT_TIMEOUT_S = 5.0
HEARTBEAT_EVERY_S = 1.0
# Past max_duration_seconds, the worker's own watchdog ends the execution (its hard kill
# comes within seconds); Temporal's timeout is the backstop for a worker that cannot.
DURATION_GRACE_S = 30.0
# How long the local activity waits for the execution to end before handing it to a regular
# activity on the same worker. It holds the workflow task that long, and a cancel sent to
# Temporal alone (not through the store) waits for it: keep it short.
FAST_BUDGET_S = 1.0
# A workflow task (the local activity's too) whose worker is lost is given to another after
# this long: the same bound as a lost activity's heartbeat.
WORKFLOW_TASK_TIMEOUT_S = HEARTBEAT_TIMEOUT_S


@dataclass
class ExecutionInput:
    """What a worker needs to run an execution whose row the client created."""

    execution_id: str
    task_json: str
    planner: list[str]
    project: str = "default"
    llm: str | None = None
    max_duration_seconds: float = 3600.0
    max_retries: int = 3
    retry_delay_seconds: float = 1.0
    cwd: str | None = None  # the client's: relative paths resolve there where workers have it
    # Task.secrets: only sent sealed ($AESOP_TEMPORAL_KEY); never in the store.
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass
class FastResult:
    """The local activity's answer: the execution's final state, or (``state`` empty) the
    task queue of the worker where it still runs ("" when it did not start it there)."""

    state: str = ""
    queue: str = ""


@dataclass
class EndInput:
    """An end the workflow records itself: the activity never got to (attempts ran out...)."""

    execution_id: str
    state: str  # "failed" | "cancelled"
    error: str  # the error class name, e.g. "WorkerCrashed"
    message: str
    extra: dict[str, str] = field(default_factory=dict)


@workflow.defn(name=WORKFLOW)
class ExecutionWorkflow:
    """One execution. Its workflow id is the execution id; its result the final state."""

    @workflow.run
    async def run(self, inp: ExecutionInput) -> str:
        try:
            return await self._run(inp)
        except (asyncio.CancelledError, CancelledError):
            end = EndInput(inp.execution_id, "cancelled", "TaskCancelled", "cancelled")
            await self._end(end)
            raise
        except ActivityError as exc:
            end = _end_for(inp, exc)
        await self._end(end)
        return end.state

    async def _run(self, inp: ExecutionInput) -> str:
        try:
            fast = await workflow.execute_local_activity(
                FAST_ACTIVITY,
                inp,
                result_type=FastResult,
                start_to_close_timeout=timedelta(seconds=FAST_BUDGET_S + HEARTBEAT_TIMEOUT_S),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError:  # its worker shut down: a regular activity takes it over
            fast = FastResult()
        if fast.state:
            return str(fast.state)
        attempts = inp.max_retries + 1
        if fast.queue:  # still running on that worker: follow it there
            try:
                return await self._activity(inp, fast.queue, 1)
            except ActivityError as exc:
                if _why(exc) != "lost":
                    raise
                attempts -= 1  # that worker was lost: one attempt spent
                if attempts < 1:
                    raise
        return await self._activity(inp, workflow.info().task_queue, attempts)

    async def _activity(self, inp: ExecutionInput, queue: str, attempts: int) -> str:
        """The planner as a regular activity on ``queue``: on a worker's own queue it follows
        the run the local activity started there (a lost worker is noticed in
        ``HEARTBEAT_TIMEOUT_S``, before or after it starts); on the shared queue it starts
        or resumes it, retried on other workers ``attempts`` times in all."""
        elapsed = (workflow.now() - workflow.info().start_time).total_seconds()
        left = max(1.0, inp.max_duration_seconds + DURATION_GRACE_S - elapsed)
        own = queue != workflow.info().task_queue
        return str(
            await workflow.execute_activity(
                RUN_ACTIVITY,
                inp,
                task_queue=queue,
                schedule_to_close_timeout=timedelta(seconds=left),
                schedule_to_start_timeout=timedelta(seconds=HEARTBEAT_TIMEOUT_S) if own else None,
                heartbeat_timeout=timedelta(seconds=HEARTBEAT_TIMEOUT_S),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=max(0.1, inp.retry_delay_seconds)),
                    backoff_coefficient=2.0,
                    maximum_attempts=attempts,
                ),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        )

    async def _end(self, end: EndInput) -> None:
        await workflow.execute_activity(
            END_ACTIVITY,
            end,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )


def _why(exc: ActivityError) -> Literal["cancelled", "time limit", "lost"]:
    """Why an activity failed: ``cancelled``, ``time limit`` (the task's own, Temporal's
    schedule-to-close), or ``lost`` (its worker went away or shut down)."""
    cause = exc.cause
    if isinstance(cause, CancelledError):
        return "cancelled"
    if isinstance(cause, TimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_CLOSE:
        return "time limit"
    return "lost"


def _end_for(inp: ExecutionInput, exc: ActivityError) -> EndInput:
    why = _why(exc)
    if why == "cancelled":
        return EndInput(inp.execution_id, "cancelled", "TaskCancelled", "cancelled")
    if why == "time limit":
        return EndInput(
            inp.execution_id, "failed", "TimeLimitExceeded",
            f"max_duration_seconds={inp.max_duration_seconds:g} reached (the worker running "
            "it did not end it in time, and Temporal's timeout did)",
        )  # fmt: skip
    cause = exc.cause
    attempts = inp.max_retries + 1
    how = (
        f"no worker heartbeat for {HEARTBEAT_TIMEOUT_S:g} s"
        if isinstance(cause, TimeoutError)
        else str(cause or exc)
    )
    return EndInput(
        inp.execution_id, "failed", "WorkerCrashed",
        f"the execution's planner did not finish on any worker in {attempts} attempt(s) "
        f"(max_retries={inp.max_retries}); last: {how}",
    )  # fmt: skip
