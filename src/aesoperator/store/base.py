"""The store seam: what the client, the supervisor and the workers need from persistence.

Three small protocols, one per concern — executions and their timeline, memory, artifacts —
and :class:`Store`, all three together, which is what :func:`aesoperator.store.open_store`
returns. Writes of the execution timeline are typed operations (:data:`Op`) applied in
batches, so a store can put a loop turn's worth of them in one transaction.

The rules of the lifecycle (which transitions are legal, what an end implies) are not here
nor in any SQL: they are in :mod:`aesoperator.store.lifecycle`, which every store calls.
A store passes the contract suite in ``tests/store/test_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..errors import ErrorInfo
from ..execution import Alert, Event, TaskResult, TaskState, TaskStatus, utcnow
from .tokens import TokenInfo

# -- typed write operations ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Create:
    """A new execution, ``pending``."""

    execution_id: str
    name: str
    task_json: str
    owner: str | None
    parent_id: str | None = None
    at: datetime = field(default_factory=utcnow)
    project: str | None = None  # None: the parent's project, else ``default``


@dataclass(frozen=True, slots=True)
class Transition:
    """Move an execution to ``state`` (see :func:`aesoperator.store.lifecycle.decide`).

    ``owner`` is recorded when it starts running; ``error``/``result`` when given.
    """

    execution_id: str
    state: TaskState
    error: ErrorInfo | None = None
    result: Mapping[str, Any] | None = None  # a TaskResult as JSON data
    owner: str | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Progress:
    """Raise the progress of a running execution (it never goes down)."""

    execution_id: str
    value: float


@dataclass(frozen=True, slots=True)
class CurrentAction:
    """What a running execution is doing now (None: nothing said)."""

    execution_id: str
    label: str | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of the execution's timeline; stored in the order applied."""

    execution_id: str
    kind: str
    data: Mapping[str, Any]
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert raised by the execution (its ``alert`` event is a separate EventRecord)."""

    execution_id: str
    alert: Alert


Op = Create | Transition | Progress | CurrentAction | EventRecord | AlertRecord


# -- protocols ----------------------------------------------------------------------------------


class Listener(Protocol):
    """A running subscription to a store's change notifications (see ``ExecutionStore.listen``)."""

    def close(self) -> None:
        """Stop listening: no call of the function starts after this returns."""
        ...


class ExecutionStore(Protocol):
    """Executions, their lifecycle, timeline, alerts and cancel requests."""

    def apply(self, ops: Sequence[Op]) -> dict[str, TaskState]:
        """Apply ``ops`` in order, in one transaction.

        A transition the lifecycle refuses is skipped (the write-behind batch of the
        supervisor cannot raise for one op). Returns the state each execution ended in, for
        those that ended in this batch (a cancel accepted before may have turned a
        completion into ``cancelled``).
        """
        ...

    def create(
        self,
        execution_id: str,
        name: str,
        task_json: str,
        owner: str,
        parent_id: str | None = None,
        *,
        project: str | None = None,
    ) -> None:
        """Record a new ``pending`` execution of ``project`` (None: the parent's, or default)."""
        ...

    def transition(
        self,
        execution_id: str,
        new: TaskState,
        *,
        error: ErrorInfo | None = None,
        result: TaskResult | None = None,
        owner: str | None = None,
    ) -> bool:
        """Move an execution to ``new``: False (and no write) if it had already ended.

        ``NotFoundError`` for an unknown id; ``IllegalTransition`` (a ``RuntimeError``) for
        a move the lifecycle does not allow.
        """
        ...

    def request_cancel(self, execution_id: str) -> bool:
        """Accept a cancel: True if the execution had not ended; it then ends ``cancelled``.

        The request and every end are ordered atomically: after a True, whatever end is
        written is written as ``cancelled``.
        """
        ...

    def cancel_requests(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` with a cancel request (the owner polls this)."""
        ...

    def ended(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` that have ended (one query, whatever their number)."""
        ...

    def task_json(self, execution_id: str) -> str:
        """The task an execution was created with, as stored (``NotFoundError`` if none)."""
        ...

    def status(
        self, execution_id: str, *, with_alerts: bool = True, project: str | None = None
    ) -> TaskStatus:
        """One execution's status (``NotFoundError`` if none, or if not of ``project``)."""
        ...

    def list_executions(
        self, *, state: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[TaskStatus]:
        """Executions, newest first, optionally filtered by state and task name."""
        ...

    def list_page(
        self,
        *,
        project: str,
        state: str | None = None,
        name: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[TaskStatus], str | None]:
        """One page of a project's executions, newest first, without results, and the cursor
        of the next page (None: this is the last). ``ValidationError`` for a bad cursor."""
        ...

    def last_seq(self, execution_id: str) -> int:
        """The ``seq`` of the execution's latest event (0 if none)."""
        ...

    def events(self, execution_id: str, *, after: int = 0, limit: int = 10_000) -> list[Event]:
        """The execution's timeline after ``seq`` ``after``, in the order written."""
        ...

    def alerts(self, execution_id: str) -> list[Alert]:
        """The execution's alerts, in the order raised."""
        ...

    def unfinished(self) -> list[tuple[str, str | None]]:
        """``(id, owner)`` of every execution still ``pending`` or ``running``."""
        ...

    def clear_ended_sessions(self) -> None:
        """Clear session memory a crash left behind after its execution ended."""
        ...

    def step_get(self, execution_id: str, key: str) -> str | None:
        """The JSON text a durable ``ctx.step`` stored under ``key`` for the execution, or None."""
        ...

    def step_put(self, execution_id: str, key: str, value_json: str) -> bool:
        """Store a durable step's result; the first write wins: False (and no write) if ``key``
        was already stored. ``NotFoundError`` for an unknown execution (the rows are its own)."""
        ...

    def listen(
        self, fn: Callable[[str, str], None], *, cancels_only: bool = False
    ) -> Listener | None:
        """Call ``fn(kind, execution_id)`` from a background thread for each committed change
        any process makes: ``progress`` (progress or current action), ``alert``, ``state``
        (created or moved), ``cancel`` (a cancel accepted); ``("resync", "")`` after a lost
        connection came back, when changes may have been missed. Every change made after
        ``listen`` returns is heard. None where the store cannot notify (callers then poll).
        ``cancels_only``: hear only ``cancel`` (and ``resync``), and no other change wakes it.
        """
        ...

    def close(self) -> None:
        """Release the store's connections; the object is not used afterwards."""
        ...


class MemoryStore(Protocol):
    """JSON text under string keys, in namespaces (see :mod:`aesoperator.store.memory`).

    Every method is atomic on its own. A write to the session namespace of an execution
    that has ended raises ``TaskCancelled``: what its end cleared stays cleared.
    """

    def mem_get(self, namespace: str, key: str) -> str | None:
        """The stored JSON, or None."""
        ...

    def mem_set(self, namespace: str, key: str, value_json: str) -> None:
        """Store ``value_json`` under ``key``."""
        ...

    def mem_update(self, namespace: str, key: str, fn: Callable[[str | None], str]) -> None:
        """Read, compute ``fn(old)`` and write, with no other write in between (any process)."""
        ...

    def mem_delete(self, namespace: str, key: str) -> bool:
        """Remove ``key``: True if it was there."""
        ...

    def mem_keys(self, namespace: str) -> list[str]:
        """The keys of a namespace, sorted."""
        ...

    def mem_clear(self, namespace: str) -> None:
        """Remove every key of a namespace, leaving no copy of the values behind."""
        ...


class TokenStore(Protocol):
    """API tokens of the service (see :mod:`aesoperator.store.tokens`): salted hashes only."""

    def token_create(
        self, name: str, *, scope: str = "run", project: str = "default"
    ) -> tuple[TokenInfo, str]:
        """A new token: its record and the token (returned once, never stored)."""
        ...

    def token_check(self, token: str) -> TokenInfo | None:
        """The live token ``token`` is, or None (unknown, malformed or revoked)."""
        ...

    def token_list(self) -> list[TokenInfo]:
        """Every token's record, revoked ones too, oldest first."""
        ...

    def token_revoke(self, name_or_id: str) -> TokenInfo:
        """Revoke a token (``NotFoundError`` if none); a second revoke changes nothing."""
        ...


class ArtifactStore(Protocol):
    """Where the files of each execution live (today a local or shared directory)."""

    def artifacts_dir(self, execution_id: str) -> Path:
        """The directory of ``execution_id``'s files (created by whoever writes one)."""
        ...


class Store(ExecutionStore, MemoryStore, ArtifactStore, TokenStore, Protocol):
    """Everything one deployment persists: what :func:`open_store` returns."""
