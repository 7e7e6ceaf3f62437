"""What an execution looks like from outside: its states, status and timeline.

The records of what it produced (``TaskResult``, ``Output``, ``Alert``...) live in
``results.py``; they are re-exported here, where they used to be.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from .errors import ErrorInfo
from .results import (
    ActionRecord,
    Alert,
    AlertKind,
    Artifact,
    Output,
    Severity,
    TaskResult,
    utcnow,
)

__all__ = [
    "TRANSITIONS",
    "ActionRecord",
    "Alert",
    "AlertKind",
    "Artifact",
    "Event",
    "Output",
    "Severity",
    "TaskResult",
    "TaskState",
    "TaskStatus",
    "utcnow",
]


class TaskState(StrEnum):
    """Lifecycle of an execution. A ``StrEnum``, so ``status.state == "completed"`` works."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


# Every legal transition; anything else is a bug and raises (see runtime.lifecycle).
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset({TaskState.RUNNING, TaskState.FAILED, TaskState.CANCELLED}),
    TaskState.RUNNING: frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}),
    TaskState.COMPLETED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


class Event(BaseModel):
    """One entry of an execution's timeline."""

    seq: int = Field(
        description="Increasing in write order; the REST API's `after` cursor to read only "
        "newer events."
    )
    execution_id: str = Field(description="The execution it belongs to.")
    at: datetime = Field(description="When it was written (UTC).")
    kind: str = Field(
        description="What it records: `state`, `planner`, `action`, `action_end`, `page`, "
        "`policy_refused`, `retry`, `log`, `progress`, `alert`, `llm_call`, `llm_step`, "
        "or a name given to `ctx.emit`."
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The details, by kind (e.g. `url` and `status` for `page`); secrets redacted.",
    )


class TaskStatus(BaseModel):
    """A snapshot of an execution, as ``get_task_status`` returns it."""

    id: str = Field(description="The execution's id, as `submit_task` returned it.")
    name: str = Field(description="The task's `name`.")
    state: TaskState = Field(
        description="`pending`, `running`, `completed`, `failed` or `cancelled`; the last "
        "three are final."
    )
    progress: float = Field(
        default=0.0,
        description="Percent done, 0–100, as the task reports it (`ctx.progress`); never "
        "decreases, and is 100 once completed.",
    )
    current_action: str | None = Field(
        default=None,
        description="What is under way: the `set_current_action` label, else the latest "
        "`ctx.action` still open; None when nothing is.",
    )
    error: ErrorInfo | None = Field(
        default=None,
        description="Why it failed or was cancelled (type, message, traceback); None otherwise.",
    )
    result: TaskResult | None = Field(
        default=None,
        description="Set once completed; after a failure or cancel, only if the task left "
        "partial output.",
    )
    created_at: datetime = Field(description="When it was submitted (UTC).")
    started_at: datetime | None = Field(
        default=None, description="When it began running (UTC); None while pending."
    )
    finished_at: datetime | None = Field(
        default=None, description="When it reached a final state (UTC); None until then."
    )
    parent_id: str | None = Field(
        default=None,
        description="The execution that started it as a sub-task; None for a top-level one.",
    )
    alerts: list[Alert] = Field(
        default_factory=list, description="The alerts raised so far, in order."
    )

    @property
    def done(self) -> bool:
        return self.state.finished
