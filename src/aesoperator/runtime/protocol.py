"""Messages between the supervisor and its workers, and the channel that carries them.

Two kinds of message, typed two ways on purpose:

* **Control messages** — once or twice per execution (``Run``, ``Cancel``, ``Shutdown`` to a
  worker; ``Ready``, ``Idle``, ``Retire``, ``Finished``, ``Subtask`` back) — are frozen
  dataclasses: the receiver dispatches on their class.
* **The event stream** — several per page or action (``progress``, ``action``, ``current``,
  ``page``, ``alert``, ``event``), written by ``TaskContext`` — stays plain dicts, described
  by the ``TypedDict``s below. A frozen dataclass costs ~25x a dict to pickle (12 µs against
  0.5 µs measured here) and ~4x to unpickle, and every one of these dicts also goes through
  secret redaction, which walks dicts. ``type`` tells them apart.

The same objects travel in-process (``isolation="inline"``) and, framed by
``aesoperator._framing``, over a worker's socket.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from .._framing import encode, recv_frame

if TYPE_CHECKING:
    from .runner import Job


# -- supervisor -> worker ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Run:
    """Run ``job`` (sent without its registry). ``handlers_blob`` is the cloudpickled
    ``Registry``, sent only when the worker does not have ``handlers_version`` yet."""

    job: Job
    sys_path: list[str]
    handlers_version: str
    handlers_blob: bytes | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop execution ``id``: ``reason`` is ``"cancel"`` (the caller) or ``"time"`` (limit)."""

    id: str
    reason: str = "cancel"


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Exit now."""


ToWorker = Run | Cancel | Shutdown


# -- worker -> supervisor: control ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ready:
    """The worker has started and takes work."""

    pid: int


@dataclass(frozen=True, slots=True)
class Idle:
    """The worker's execution has ended (its ``Finished`` was sent first): give it the next."""


@dataclass(frozen=True, slots=True)
class Retire:
    """The worker exits now (a handler thread outlived its cancel); replace it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Finished:
    """Execution ``id`` ended. ``result``/``error`` are JSON dumps of ``TaskResult``/``ErrorInfo``,
    secrets already redacted; ``result`` is None when nothing worth keeping came out."""

    id: str
    state: Literal["completed", "failed", "cancelled"]
    result: dict[str, Any] | None
    error: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Subtask:
    """A sub-task ``id`` of ``parent`` starts, run inside the parent's execution."""

    id: str
    parent: str
    name: str
    task: str  # the child Task's JSON, as stored (the parent's secrets redacted)


# -- worker -> supervisor: the event stream (plain dicts at run time; see the module doc) --------
class ProgressMsg(TypedDict):
    type: Literal["progress"]
    id: str
    value: float
    message: str | None


class ActionStartMsg(TypedDict):
    type: Literal["action"]
    id: str
    phase: Literal["start"]
    index: int
    name: str
    details: dict[str, Any]


class ActionEndMsg(TypedDict):
    type: Literal["action"]
    id: str
    phase: Literal["end"]
    index: int
    ok: bool
    error: str | None
    attempts: int


class CurrentMsg(TypedDict):
    type: Literal["current"]
    id: str
    label: str | None


class PageMsg(TypedDict):
    """``url`` and ``status``, then whatever the web layer adds about the fetch."""

    type: Literal["page"]
    id: str
    url: str
    status: int | None


class AlertMsg(TypedDict):
    type: Literal["alert"]
    id: str
    alert: dict[str, Any]  # an Alert's JSON dump


class EventMsg(TypedDict):
    type: Literal["event"]
    id: str
    kind: str
    data: dict[str, Any]


EventStream = (
    ProgressMsg | ActionStartMsg | ActionEndMsg | CurrentMsg | PageMsg | AlertMsg | EventMsg
)
# What a ``Runner`` sends. The stream is typed as the dicts ``TaskContext`` builds.
ToSupervisor = Ready | Idle | Retire | Finished | Subtask | dict[str, Any]
Send = Callable[[ToSupervisor], None]


class Channel:
    """Blocking, thread-safe sending end and single-reader receiving end of a worker's socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()

    def send(self, msg: ToSupervisor) -> None:
        data = encode(msg)  # pickled outside the lock: threads of one execution send too
        with self._send_lock:
            self._sock.sendall(data)

    def recv(self) -> ToWorker | None:
        """The next message, or None when the other side has gone."""
        try:
            msg: ToWorker = recv_frame(self._sock)
        except (EOFError, OSError):
            return None
        return msg
