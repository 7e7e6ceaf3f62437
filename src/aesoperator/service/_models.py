"""Bodies of the API that are not the Python API's own models (those travel as they are)."""

from __future__ import annotations

from typing import Any

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
    """409 from ``/result``: a problem whose ``status`` member is the execution's status."""

    type: str = "about:blank"
    title: str
    detail: str
    status: TaskStatus


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


class Handlers(BaseModel):
    handlers: list[str]
    functions: list[str]
    skills: list[str]


class Health(BaseModel):
    ok: bool = True


class Ready(BaseModel):
    ready: bool
    detail: str | None = Field(default=None, description="what is not ready")
