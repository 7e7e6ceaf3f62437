"""The rules of an execution's lifecycle, once, above any store.

A store reads the current row inside its write transaction, asks :func:`decide` what a
transition writes, and writes exactly that; so every store — SQLite today, PostgreSQL
later — ends executions the same way:

* only the moves in ``TRANSITIONS`` are legal; any other raises :class:`IllegalTransition`;
* an ended execution never changes again (a second end is a no-op, not an error: an end
  racing another end is normal, e.g. a cancel against a completion);
* an end records ``finished_at`` and clears the current action; a completion sets
  progress to 100;
* a cancel accepted before the end (:func:`cancel_accepted`) turns whatever end comes next
  into ``cancelled``, keeping its result: the caller was promised ``cancelled``;
* an end clears the execution's session memory (:func:`session_namespace`), which takes no
  write afterwards (:func:`session_execution` names the execution a namespace belongs to);
* progress only rises, and only while running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import ErrorInfo, NotFoundError, TaskCancelled, to_info
from ..execution import TRANSITIONS, TaskState
from .base import ExecutionStore, Transition

SESSION_PREFIX = "exec:"  # + execution id: the namespace of an execution's session memory
TERMINAL: tuple[TaskState, ...] = tuple(s for s in TaskState if s.finished)
UNFINISHED: tuple[TaskState, ...] = tuple(s for s in TaskState if not s.finished)


class IllegalTransition(RuntimeError):
    """A move the lifecycle does not allow: a bug in the caller, never a race."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one transition writes; the store writes exactly this, in the same transaction."""

    state: TaskState
    error: ErrorInfo | None  # None: keep what is stored
    result: Mapping[str, Any] | None  # None: keep what is stored
    started_at: datetime | None  # set when it starts running
    owner: str | None  # set when it starts running, if given
    finished_at: datetime | None  # set when it ends
    progress: float | None  # 100 on completion, else unchanged
    clear_action: bool  # an ended execution is doing nothing
    clear_session: str | None  # the namespace to clear once the end is committed

    @property
    def event(self) -> dict[str, Any]:
        """The data of the ``state`` event that records the move in the timeline."""
        error = self.error.model_dump(mode="json") if self.error is not None else None
        return {"state": self.state.value, "error": error}


def session_namespace(execution_id: str) -> str:
    """The memory namespace of an execution's session memory."""
    return SESSION_PREFIX + execution_id


def session_execution(namespace: str) -> str | None:
    """The execution a session namespace belongs to; None for any other namespace."""
    return namespace.removeprefix(SESSION_PREFIX) if namespace.startswith(SESSION_PREFIX) else None


def cancel_accepted(state: TaskState) -> bool:
    """Whether a cancel request is accepted by an execution in ``state``."""
    return not state.finished


def decide(current: TaskState, op: Transition, *, cancel_requested: bool) -> Outcome | None:
    """What moving an execution from ``current`` as ``op`` says writes.

    None if it has already ended (it stays as it is); ``IllegalTransition`` for a move the
    lifecycle does not allow.
    """
    if current.finished:
        return None
    new, error = op.state, op.error
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"illegal transition {current} -> {new} for {op.execution_id}; "
            f"from {current} only {sorted(s.value for s in TRANSITIONS[current])}"
        )
    if new.finished and new is not TaskState.CANCELLED and cancel_requested:
        # A cancel was accepted (cancel_task returned True) before this end was written:
        # the caller was promised ``cancelled``, whatever the task did since.
        new, error = TaskState.CANCELLED, to_info(TaskCancelled("cancelled"))
    running = new is TaskState.RUNNING
    return Outcome(
        state=new,
        error=error,
        result=op.result,
        started_at=op.at if running else None,
        owner=op.owner if running else None,
        finished_at=op.at if new.finished else None,
        progress=100.0 if new is TaskState.COMPLETED else None,
        clear_action=new.finished,
        clear_session=session_namespace(op.execution_id) if new.finished else None,
    )


def recover(
    store: ExecutionStore,
    keep: Callable[[str | None], bool],
    error: Callable[[str | None], ErrorInfo],
) -> list[str]:
    """Fail the unfinished executions whose owner is gone; return their ids.

    ``keep(owner)`` says whether an owner still runs its executions (the client knows how to
    tell); the others end ``failed`` with ``error(owner)``. Session memory goes with them,
    and any a process killed between an end and its clearing left behind.
    """
    failed: list[str] = []
    for execution_id, owner in store.unfinished():
        if keep(owner):
            continue
        try:
            if store.transition(execution_id, TaskState.FAILED, error=error(owner)):
                failed.append(execution_id)
        except (IllegalTransition, NotFoundError):  # it moved on meanwhile
            pass
    store.clear_ended_sessions()
    return failed
