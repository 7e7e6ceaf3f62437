"""The Temporal workflow of one execution: run its planner as an activity, end it if that fails.

Kept to ``temporalio`` and the standard library on purpose: Temporal re-imports workflow code
in a deterministic sandbox, and the work (network, processes, the store) belongs in
activities, which live in ``_temporal_worker``. Activities are named by string, so this
module never imports them.

The workflow's history stays small whatever the task does: one activity (heartbeats are not
history events), plus one more to record the end when the activity could not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, TimeoutError, TimeoutType

WORKFLOW = "aesop.execution"
RUN_ACTIVITY = "aesop.run_execution"
END_ACTIVITY = "aesop.end_execution"

# A worker that dies is noticed after this long without a heartbeat; the activity then
# starts again on another worker. Heartbeats go every HEARTBEAT_EVERY_S seconds.
HEARTBEAT_TIMEOUT_S = 5.0
HEARTBEAT_EVERY_S = 1.0
# Past max_duration_seconds, the worker's own watchdog ends the execution (its hard kill
# comes within seconds); Temporal's timeout is the backstop for a worker that cannot.
DURATION_GRACE_S = 30.0


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
        retries = RetryPolicy(
            initial_interval=timedelta(seconds=max(0.1, inp.retry_delay_seconds)),
            backoff_coefficient=2.0,
            maximum_attempts=inp.max_retries + 1,
        )
        try:
            return str(
                await workflow.execute_activity(
                    RUN_ACTIVITY,
                    inp,
                    schedule_to_close_timeout=timedelta(
                        seconds=inp.max_duration_seconds + DURATION_GRACE_S
                    ),
                    heartbeat_timeout=timedelta(seconds=HEARTBEAT_TIMEOUT_S),
                    retry_policy=retries,
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            )
        except (asyncio.CancelledError, CancelledError):
            end = EndInput(inp.execution_id, "cancelled", "TaskCancelled", "cancelled")
            await self._end(end)
            raise
        except ActivityError as exc:
            end = _end_for(inp, exc)
        await self._end(end)
        return end.state

    async def _end(self, end: EndInput) -> None:
        await workflow.execute_activity(
            END_ACTIVITY,
            end,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )


def _end_for(inp: ExecutionInput, exc: ActivityError) -> EndInput:
    cause = exc.cause
    if isinstance(cause, CancelledError):
        return EndInput(inp.execution_id, "cancelled", "TaskCancelled", "cancelled")
    if isinstance(cause, TimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_CLOSE:
        return EndInput(
            inp.execution_id, "failed", "TimeLimitExceeded",
            f"max_duration_seconds={inp.max_duration_seconds:g} reached (the worker running "
            "it did not end it in time, and Temporal's timeout did)",
        )  # fmt: skip
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
