"""The state writer: execution state goes to the store write-behind, in batches.

Everything written during one turn of the runtime loop (and the millisecond after) shares a
single store transaction, and what must wait for it — futures, ``on_progress`` of an end —
runs only once it is stored, so a waiter that wakes always reads the final state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..execution import TaskState
from ..store.base import Op, Store

log = logging.getLogger("aesoperator.runtime")

# State writes wait this long to share a transaction with what else comes in the meantime
# (by default: a Temporal worker waits longer, see _temporal_worker).
FLUSH_DELAY_S = 0.001

AfterFlush = Callable[[dict[str, TaskState]], None]


class StateWriter:
    """Buffers store operations; used on the runtime loop only."""

    def __init__(
        self, store: Store, loop: asyncio.AbstractEventLoop, delay_s: float = FLUSH_DELAY_S
    ) -> None:
        self._store = store
        self._loop = loop
        self._delay_s = delay_s
        self._ops: list[Op] = []
        self._after: list[AfterFlush] = []
        self._scheduled = False

    def write(self, op: Op) -> None:
        """Queue one typed store operation (``Create``, ``Transition``, ``EventRecord``...)."""
        self._ops.append(op)
        if not self._scheduled:
            self._schedule()

    def after_flush(self, fn: AfterFlush) -> None:
        """Call ``fn(stored_states)`` once everything written so far is stored."""
        self._after.append(fn)
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self._scheduled = True
        self._loop.call_later(self._delay_s, self.flush)

    def flush(self) -> None:
        """Store what is buffered now, in one transaction, then run the waiting callbacks."""
        self._scheduled = False
        ops, self._ops = self._ops, []
        after, self._after = self._after, []
        stored: dict[str, TaskState] = {}
        try:
            stored = self._store.apply(ops)
        except Exception:
            log.exception("aesoperator: could not write execution state")
        for fn in after:
            fn(stored)
