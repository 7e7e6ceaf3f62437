"""The backend seam: where and how executions run, behind one small protocol.

The client creates an execution's row, builds its ``Job`` and hands it to a ``Backend``; from
then on the backend owns it — runs it (``Runner.run(job)``, wherever it hosts that), stores
what happens, enforces the limits, and resolves ``done`` once the end is stored. Backends:
``"process"`` (the default: a local pool of worker processes), ``"inline"`` (this process,
for debugging) and Temporal (``_temporal``: workflows run by ``aesop worker``s on any number
of machines).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..store.base import Store
from ..task import Task
from ._webhook import Hook
from .runner import Job, Registry

if TYPE_CHECKING:
    from ._temporal import TemporalTarget


class Backend(Protocol):
    """Runs jobs for one client. Every method is called on the client's runtime loop."""

    async def start(self) -> None:
        """Get ready to take jobs (start workers); called once, before anything else."""

    async def ready(self) -> None:
        """Return once jobs can start at once (every worker up): ``Aesoperator.warmup``."""

    def submit(self, job: Job, task: Task, done: concurrent.futures.Future[None]) -> None:
        """Run ``job`` (``task`` is ``job.task_json`` parsed; its row exists, ``pending``).

        Resolve ``done`` once the execution's end is stored.
        """

    def cancel(self, execution_id: str, reason: str = "cancel") -> bool:
        """Stop an execution this backend runs: True if it was running or queued here.

        Cooperative first; past a grace period the backend ends it by force where it can.
        """

    def add_callback(
        self, execution_id: str, kind: Literal["progress", "alert"], fn: Callable[[Any], Any]
    ) -> bool:
        """Call ``fn(TaskStatus)`` on progress or ``fn(Alert)`` on alerts of a running execution
        (alerts so far replayed at once); False if it is not running here."""

    async def shutdown(self) -> None:
        """Cancel what runs, stop the workers, store the last states. Called once."""


def open_backend(
    isolation: Literal["process", "inline"] | TemporalTarget,
    store: Store,
    *,
    pool_size: int,
    owner: str,
    handlers: Callable[[], tuple[str, Registry]],
    callbacks: concurrent.futures.Executor,
    webhooks: Callable[[Task], Hook | None] | None = None,
) -> Backend:
    """The backend for ``Aesoperator(isolation=...)``; ``handlers`` gives the registry now,
    ``webhooks`` the end-of-execution webhook of a task (if any)."""
    if not isinstance(isolation, str):
        from ._temporal import TemporalBackend

        return TemporalBackend(store, isolation, callbacks=callbacks)
    kwargs: dict[str, Any] = dict(
        pool_size=pool_size, owner=owner, handlers=handlers, callbacks=callbacks, webhooks=webhooks
    )
    if isolation == "inline":
        from ._inline import InlineBackend

        return InlineBackend(store, **kwargs)
    from ._local import LocalBackend

    return LocalBackend(store, **kwargs)
