"""One exception tree for the whole project.

::

    AesoperatorError
    ├── UserError              the caller's mistake; never retried
    │   ├── ValidationError    a Task, TaskConfig or input that is not valid
    │   ├── NoPlannerError     no handler, skill or LLM can serve the task
    │   └── NotFoundError      an unknown execution id
    └── TaskError              a failure of the work itself (status.error)
        ├── PolicyViolation    a request the task's policy refused
        ├── LimitExceeded      a hard limit was reached
        │   ├── TimeLimitExceeded
        │   ├── MemoryLimitExceeded
        │   └── PageLimitExceeded
        ├── FetchError         the network failed (.transient: a retry may help)
        ├── TaskCancelled      the execution was cancelled
        ├── WorkerCrashed      the worker process died under the execution
        ├── Interrupted        the process that ran the execution went away
        ├── ModelError         the LLM provider failed or kept answering unusably
        ├── LoopDetected       the LLM planner kept repeating itself
        ├── ReplayError        a recorded step no longer fits the page
        └── TaskFailed         any other failure, with the remote type and message

Failures cross process boundaries as :class:`ErrorInfo`; :func:`from_info` turns one back into
the matching exception class so that ``except PolicyViolation`` works around ``execute_task``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class AesoperatorError(Exception):
    """Base of every error this package raises."""


class UserError(AesoperatorError):
    """A mistake of the caller: bad arguments, unknown names. Never retried."""


class ValidationError(UserError):
    """A Task, TaskConfig or task input is not valid. The message names field, value and fix."""

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class NoPlannerError(UserError):
    """No registered handler, built-in skill or configured LLM can serve the task."""


class NotFoundError(UserError):
    """No execution with that id exists in the store."""


class TaskError(AesoperatorError):
    """A failure of the work. ``transient`` errors may be retried by the runtime."""

    transient: bool = False

    def __init__(self, message: str = "", *, execution_id: str | None = None) -> None:
        super().__init__(message)
        self.execution_id = execution_id


class PolicyViolation(TaskError):
    """A request was refused by the task's policy. ``rule`` names the rule, ``url`` the target."""

    def __init__(
        self,
        message: str = "",
        *,
        url: str | None = None,
        rule: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(message, execution_id=execution_id)
        self.url = url
        self.rule = rule


class LimitExceeded(TaskError):
    """A hard limit of the task was reached."""


class TimeLimitExceeded(LimitExceeded):
    """``max_duration_seconds`` elapsed."""


class MemoryLimitExceeded(LimitExceeded):
    """The execution's process tree used more than ``max_memory_mb``."""


class PageLimitExceeded(LimitExceeded):
    """``max_pages`` pages were already used."""


class FetchError(TaskError):
    """A request failed: connection error, time-out, bad status."""

    def __init__(
        self,
        message: str = "",
        *,
        url: str | None = None,
        status: int | None = None,
        transient: bool = False,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(message, execution_id=execution_id)
        self.url = url
        self.status = status
        self.transient = transient


class TaskCancelled(TaskError):
    """The execution was cancelled."""


class WorkerCrashed(TaskError):
    """The worker process died while running the execution (segfault, exit, OOM kill)."""


class Interrupted(TaskError):
    """The process that ran the execution went away before it finished."""


class ModelError(TaskError):
    """The model provider failed (after retries) or kept answering in a shape we cannot use."""


class LoopDetected(TaskError):
    """The LLM planner repeated the same action on the same page state after being told."""


class ReplayError(TaskError):
    """A recorded step could not be carried out on the page as it is now."""


class TaskFailed(TaskError):
    """Any other failure. ``error_type`` holds the original exception's type name."""

    def __init__(
        self, message: str = "", *, error_type: str = "", execution_id: str | None = None
    ) -> None:
        super().__init__(message, execution_id=execution_id)
        self.error_type = error_type


class ErrorInfo(BaseModel):
    """A failure as stored and shown in ``TaskStatus.error``."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    traceback: str | None = None
    transient: bool = False
    details: dict[str, Any] = {}

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


_BY_NAME: dict[str, type[TaskError]] = {
    cls.__name__: cls
    for cls in (
        PolicyViolation,
        LimitExceeded,
        TimeLimitExceeded,
        MemoryLimitExceeded,
        PageLimitExceeded,
        FetchError,
        TaskCancelled,
        WorkerCrashed,
        Interrupted,
        ModelError,
        LoopDetected,
        ReplayError,
        TaskFailed,
    )
}
_USER_BY_NAME: dict[str, type[UserError]] = {
    cls.__name__: cls for cls in (ValidationError, NoPlannerError, NotFoundError, UserError)
}


def to_info(exc: BaseException, *, traceback: str | None = None) -> ErrorInfo:
    """Describe ``exc`` so that it can be stored and sent between processes."""
    details: dict[str, Any] = {}
    for attr in ("url", "rule", "status"):
        value = getattr(exc, attr, None)
        if value is not None:
            details[attr] = value
    foreign = isinstance(exc, TaskFailed) and exc.error_type
    name = exc.error_type if foreign and isinstance(exc, TaskFailed) else type(exc).__name__
    return ErrorInfo(
        type=name,
        message=str(exc),
        traceback=traceback,
        transient=bool(getattr(exc, "transient", False)),
        details=details,
    )


def from_info(info: ErrorInfo, *, execution_id: str | None = None) -> AesoperatorError:
    """Rebuild the exception that ``info`` describes (``TaskFailed`` for foreign types)."""
    if info.type in _USER_BY_NAME:
        return _USER_BY_NAME[info.type](info.message)
    cls = _BY_NAME.get(info.type)
    if cls is PolicyViolation:
        return PolicyViolation(
            info.message,
            url=info.details.get("url"),
            rule=info.details.get("rule"),
            execution_id=execution_id,
        )
    if cls is FetchError:
        return FetchError(
            info.message,
            url=info.details.get("url"),
            status=info.details.get("status"),
            transient=info.transient,
            execution_id=execution_id,
        )
    if cls is not None and cls is not TaskFailed:
        return cls(info.message, execution_id=execution_id)
    return TaskFailed(
        f"{info.type}: {info.message}", error_type=info.type, execution_id=execution_id
    )
