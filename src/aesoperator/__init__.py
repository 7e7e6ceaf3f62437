"""Aesoperator: run tasks on the web — a goal with hard limits, broken into actions.

Use a client::

    from aesoperator import Aesoperator, Task, TaskConfig
    aesop = Aesoperator()
    result = aesop.execute_task(Task(name="summarize", inputs={"text": "..."}))

or the module itself as the default client (``import aesoperator as aesop``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .client import Aesoperator, Execution
    from .errors import (
        AesoperatorError,
        FetchError,
        Interrupted,
        LimitExceeded,
        MemoryLimitExceeded,
        NoPlannerError,
        NotFoundError,
        PageLimitExceeded,
        PolicyViolation,
        TaskCancelled,
        TaskError,
        TaskFailed,
        TimeLimitExceeded,
        UserError,
        ValidationError,
        WorkerCrashed,
    )
    from .execution import Alert, Event, Output, TaskResult, TaskState, TaskStatus
    from .planning.plan import Plan, Step
    from .runtime.context import TaskContext
    from .task import Task, TaskConfig

# The public names load on first use (PEP 562): ``import aesoperator.web.extract`` in an
# extraction process, or ``aesoperator.runtime.worker``, should not pay for the client and
# pydantic models it never touches.
_LAZY = {
    "Aesoperator": "client",
    "Execution": "client",
    **dict.fromkeys(
        ["AesoperatorError", "FetchError", "Interrupted", "LimitExceeded",
         "MemoryLimitExceeded", "NoPlannerError", "NotFoundError", "PageLimitExceeded",
         "PolicyViolation", "TaskCancelled", "TaskError", "TaskFailed", "TimeLimitExceeded",
         "UserError", "ValidationError", "WorkerCrashed"],
        "errors",
    ),
    **dict.fromkeys(
        ["Alert", "Event", "Output", "TaskResult", "TaskState", "TaskStatus"], "execution"
    ),
    "Plan": "planning.plan",
    "Step": "planning.plan",
    "TaskContext": "runtime.context",
    "Task": "task",
    "TaskConfig": "task",
}  # fmt: skip

__version__ = "0.1.0"

__all__ = [
    "Aesoperator",
    "AesoperatorError",
    "Alert",
    "Event",
    "Execution",
    "FetchError",
    "Interrupted",
    "LimitExceeded",
    "MemoryLimitExceeded",
    "NoPlannerError",
    "NotFoundError",
    "Output",
    "PageLimitExceeded",
    "Plan",
    "PolicyViolation",
    "Step",
    "Task",
    "TaskCancelled",
    "TaskConfig",
    "TaskContext",
    "TaskError",
    "TaskFailed",
    "TaskResult",
    "TaskState",
    "TaskStatus",
    "TimeLimitExceeded",
    "UserError",
    "ValidationError",
    "WorkerCrashed",
    "cancel_task",
    "default_client",
    "execute_task",
    "execute_task_async",
    "get_alerts",
    "get_events",
    "get_task_status",
    "handler",
    "list_tasks",
]

F = TypeVar("F", bound=Callable[..., Any])
_default: Aesoperator | None = None
_default_lock = threading.Lock()


def execute_task(task: Task, *, timeout: float | None = None) -> TaskResult:
    return default_client().execute_task(task, timeout=timeout)


def execute_task_async(task: Task) -> Execution:
    return default_client().execute_task_async(task)


def get_task_status(execution_id: str) -> TaskStatus:
    return default_client().get_task_status(execution_id)


def cancel_task(execution_id: str) -> bool:
    return default_client().cancel_task(execution_id)


def list_tasks(
    *, state: str | None = None, name: str | None = None, limit: int = 50
) -> list[TaskStatus]:
    return default_client().list_tasks(state=state, name=name, limit=limit)


def get_events(execution_id: str) -> list[Event]:
    return default_client().get_events(execution_id)


def get_alerts(execution_id: str) -> list[Alert]:
    return default_client().get_alerts(execution_id)


def handler(name: str) -> Callable[[F], F]:
    return default_client().handler(name)


def default_client() -> Aesoperator:
    """The module-level client used by ``aesoperator.execute_task`` and friends."""
    global _default
    from .client import Aesoperator

    with _default_lock:
        if _default is None or _default._closed:
            _default = Aesoperator()
        return _default


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        from importlib import import_module

        value = getattr(import_module(f".{module}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name == "memory":  # the default client's global memory, made on first use
        return default_client().memory
    raise AttributeError(f"module 'aesoperator' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
