"""Handlers the service benches register on the server: `aesop serve --import _service_handlers`."""

from __future__ import annotations

import time
from typing import Any

import aesoperator as aesop


@aesop.handler("noop")
def noop(ctx: Any) -> None:
    return None


@aesop.handler("ticker")
def ticker(ctx: Any, events: int = 200, interval: float = 0.02, start_after: float = 0) -> int:
    """A busy execution: a timeline event every ``interval`` s, each with its wall-clock time."""
    time.sleep(start_after)
    for i in range(events):
        ctx.emit("tick", i=i, t=time.time())
        time.sleep(interval)
    return events
