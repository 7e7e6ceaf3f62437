"""Bodies of the API that are not the Python API's own models (those travel as they are)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..execution import Event, TaskStatus


class TaskPage(BaseModel):
    items: list[TaskStatus]
    next_cursor: str | None


class EventPage(BaseModel):
    items: list[Event]
    next_after: int


class CancelAnswer(BaseModel):
    cancelled: bool
    status: TaskStatus


class NotFinished(BaseModel):
    """409 from ``/result``: a problem carrying the execution's status in ``execution`` and,
    when it ended badly, the Python exception's class name in ``error``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    error: str | None = None
    execution: TaskStatus


class ArtifactInfo(BaseModel):
    name: str
    media_type: str
    size: int


class Keys(BaseModel):
    keys: list[str]


class MemoryItem(BaseModel):
    key: str
    value: JsonValue


class MemoryValue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: JsonValue


class ReplayBody(BaseModel):
    """The keyword arguments of ``Aesoperator.replay`` (its ``timeout`` is the caller's)."""

    model_config = ConfigDict(extra="forbid")
    inputs: dict[str, Any] | None = None
    secrets: dict[str, str] | None = None
    repair: bool = True


class RerunBody(BaseModel):
    """Secrets are never stored: a task that typed some needs them again to run again."""

    model_config = ConfigDict(extra="forbid")
    secrets: dict[str, str] | None = None


class Handlers(BaseModel):
    handlers: list[str]
    functions: list[str]
    skills: list[str]


class Health(BaseModel):
    ok: bool = True


class Ready(BaseModel):
    ready: bool
    detail: str | None = Field(default=None, description="what is not ready")


def served(status: TaskStatus) -> TaskStatus:
    """``status`` as the API shows it: a result's file ``path`` is where a caller downloads it
    (``/v1/tasks/{id}/artifacts/{name}``), not where it lies on the server's disk."""
    result = status.result
    if result is None or not result.files:
        return status
    base = f"/v1/tasks/{status.id}/artifacts/"
    files = [f.model_copy(update={"path": base + quote(f.name, safe="/")}) for f in result.files]
    return status.model_copy(update={"result": result.model_copy(update={"files": files})})
