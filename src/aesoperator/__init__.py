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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Aesoperator, Execution
    from .errors import (
        AesoperatorError,
        FetchError,
        Interrupted,
        LimitExceeded,
        LoopDetected,
        MemoryLimitExceeded,
        ModelError,
        NoPlannerError,
        NotFoundError,
        PageLimitExceeded,
        PolicyViolation,
        ReplayError,
        TaskCancelled,
        TaskError,
        TaskFailed,
        TimeLimitExceeded,
        UserError,
        ValidationError,
        WorkerCrashed,
    )
    from .execution import Event, TaskState, TaskStatus
    from .results import Alert, Output, TaskResult
    from .runtime.context import TaskContext
    from .store.memory import Memory
    from .task import Plan, Step, Task, TaskConfig

    # The module is a client: each public method of ``Aesoperator`` is a function here, with
    # the method's own signature (made at run time by ``__getattr__`` below; a test checks
    # that this list and the class agree).
    _client = Aesoperator()
    cancel_task = _client.cancel_task
    close = _client.close
    execute_task = _client.execute_task
    execute_task_async = _client.execute_task_async
    function = _client.function
    get_alerts = _client.get_alerts
    get_events = _client.get_events
    get_execution = _client.get_execution
    get_task_status = _client.get_task_status
    handler = _client.handler
    list_tasks = _client.list_tasks
    replay = _client.replay
    warmup = _client.warmup
    memory: Memory

# The public names load on first use (PEP 562): ``import aesoperator.web.extract`` in an
# extraction process, or ``aesoperator.runtime.worker``, should not pay for the client and
# pydantic models it never touches.
_LAZY = {
    "Aesoperator": "client",
    "Execution": "client",
    **dict.fromkeys(
        ["AesoperatorError", "FetchError", "Interrupted", "LimitExceeded", "LoopDetected",
         "MemoryLimitExceeded", "ModelError", "NoPlannerError", "NotFoundError",
         "PageLimitExceeded", "PolicyViolation", "ReplayError", "TaskCancelled", "TaskError",
         "TaskFailed", "TimeLimitExceeded", "UserError", "ValidationError", "WorkerCrashed"],
        "errors",
    ),
    **dict.fromkeys(["Event", "TaskState", "TaskStatus"], "execution"),
    **dict.fromkeys(["Alert", "Output", "TaskResult"], "results"),
    **dict.fromkeys(["Plan", "Step", "Task", "TaskConfig"], "task"),
    "TaskContext": "runtime.context",
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
    "LoopDetected",
    "MemoryLimitExceeded",
    "ModelError",
    "NoPlannerError",
    "NotFoundError",
    "Output",
    "PageLimitExceeded",
    "Plan",
    "PolicyViolation",
    "ReplayError",
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
    "close",
    "default_client",
    "execute_task",
    "execute_task_async",
    "function",
    "get_alerts",
    "get_events",
    "get_execution",
    "get_task_status",
    "handler",
    "list_tasks",
    "replay",
    "warmup",
]

_default: Aesoperator | None = None
_default_lock = threading.Lock()


def default_client() -> Aesoperator:
    """The module-level client used by ``aesoperator.execute_task`` and friends."""
    global _default
    from .client import Aesoperator

    with _default_lock:
        if _default is None or _default._closed:
            _default = Aesoperator()
        return _default


def _install_default(client: Aesoperator) -> None:
    """Make ``client`` the module-level client: what modules register with
    ``aesoperator.handler`` then lands on it (the CLI's ``--import``)."""
    global _default
    with _default_lock:
        _default = client


def _client_methods() -> list[str]:
    """The public methods of ``Aesoperator``: each is also a function of this module."""
    from .client import Aesoperator

    return sorted(
        name
        for name, value in vars(Aesoperator).items()
        if not name.startswith("_") and callable(value)
    )


def _forward(name: str) -> Callable[..., Any]:
    """``aesoperator.<name>``: the default client's method, looked up at each call (the
    default client may be replaced), with the method's signature and docstring."""
    import functools
    import inspect

    from .client import Aesoperator

    method = getattr(Aesoperator, name)

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(default_client(), name)(*args, **kwargs)

    signature = inspect.signature(method)
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:]  # without self
    )
    call.__module__ = __name__
    return call


if not TYPE_CHECKING:  # hidden from type checkers, so an unknown name is an error there

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is not None:
            from importlib import import_module

            value = getattr(import_module(f".{module}", __name__), name)
        elif name == "memory":  # the default client's global memory, made on first use
            return default_client().memory
        elif not name.startswith("_") and name in _client_methods():
            value = _forward(name)
        else:
            raise AttributeError(f"module 'aesoperator' has no attribute {name!r}")
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
