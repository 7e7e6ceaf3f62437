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

    seq: int
    execution_id: str
    at: datetime
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)


class TaskStatus(BaseModel):
    """A snapshot of an execution, as ``get_task_status`` returns it."""

    id: str
    name: str
    state: TaskState
    progress: float = 0.0
    current_action: str | None = None
    error: ErrorInfo | None = None
    result: TaskResult | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_id: str | None = None
    alerts: list[Alert] = Field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.state.finished
