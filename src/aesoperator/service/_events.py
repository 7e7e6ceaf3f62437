"""Live events: one store poller per watched execution, shared by all its subscribers.

A subscriber registers its queue *first*, then reads its backlog from the store (every
event after its ``Last-Event-ID``), then takes what the poller broadcasts, skipping any
``seq`` it has sent: so nothing is lost between the backlog and the live part, and nothing
is sent twice. The poller reads the status before the events, so when it sees a terminal
state the events read next include the one that recorded it; it broadcasts ``end`` and
stops. It also stops when its last subscriber leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..execution import Event, TaskStatus
from ..store import Store
from ._models import served

# What the poller broadcasts, already encoded once for all subscribers (200 subscribers
# serialising each event themselves cost 200x the JSON work): ("event", (seq, frame)),
# ("status", frame), ("end", frame), or ("end", exc) when the store failed.
Frame = tuple[Literal["event", "status", "end"], Any]

# Frames a subscriber may have waiting. One that does not read (a stalled or hostile client)
# would otherwise hold every event of a busy execution in memory: past this its queue is
# emptied and its stream ends with an error saying to reconnect with Last-Event-ID, which
# resumes it where it stopped, from the store.
MAX_QUEUED = 5_000


class SlowSubscriber(Exception):
    pass


@dataclass
class _Watch:
    queues: set[asyncio.Queue[Frame]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class EventHub:
    def __init__(self, store: Store, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._watches: dict[str, _Watch] = {}

    @property
    def watched(self) -> int:
        """How many executions have a poller now (tests check that leaving ends them)."""
        return len(self._watches)

    def subscribe(self, execution_id: str) -> asyncio.Queue[Frame]:
        watch = self._watches.get(execution_id)
        if watch is None:
            watch = self._watches[execution_id] = _Watch()
            # Where the poller starts is read now, before the caller reads its backlog: so
            # the backlog reaches at least that far and nothing falls between the two.
            start = self._store.last_seq(execution_id)
            watch.task = asyncio.create_task(self._poll(execution_id, watch, start))
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        watch.queues.add(queue)
        return queue

    def unsubscribe(self, execution_id: str, queue: asyncio.Queue[Frame]) -> None:
        watch = self._watches.get(execution_id)
        if watch is None:
            return
        watch.queues.discard(queue)
        if not watch.queues:
            del self._watches[execution_id]
            if watch.task is not None:
                watch.task.cancel()

    async def close(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        self._watches.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _poll(self, execution_id: str, watch: _Watch, after: int) -> None:
        store = self._store
        last: tuple[Any, ...] | None = None

        def send(frame: Frame) -> None:
            for queue in list(watch.queues):
                if queue.qsize() >= MAX_QUEUED:
                    while not queue.empty():
                        queue.get_nowait()
                    queue.put_nowait(("end", SlowSubscriber(
                        f"this stream fell {MAX_QUEUED} frames behind; reconnect with "
                        "Last-Event-ID to resume from the last event received"
                    )))  # fmt: skip
                    watch.queues.discard(queue)
                    continue
                queue.put_nowait(frame)

        try:
            while True:
                status = store.status(execution_id, with_alerts=False)
                while True:
                    events = store.events(execution_id, after=after, limit=1000)
                    for event in events:
                        send(("event", (event.seq, _event_frame(event))))
                        after = event.seq
                    if len(events) < 1000:
                        break
                key = (status.state, status.progress, status.current_action)
                if key != last:
                    last = key
                    lean = status.model_copy(update={"result": None})
                    send(("status", sse("status", lean.model_dump_json())))
                if status.state.finished:
                    send(("end", sse("end", served(store.status(execution_id)).model_dump_json())))
                    return
                await asyncio.sleep(self._interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store went away: tell the subscribers, end the streams
            send(("end", exc))
        finally:
            if self._watches.get(execution_id) is watch:
                del self._watches[execution_id]


def sse(kind: str, data: str, seq: int | None = None) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()


def _event_frame(event: Event) -> bytes:
    return sse(event.kind, event.model_dump_json(), event.seq)


async def stream(
    hub: EventHub,
    store: Store,
    status: TaskStatus,
    after: int,
    keepalive: float,
    disconnected: Callable[[], Any],
) -> AsyncIterator[bytes]:
    """The ``text/event-stream`` of one execution, from ``after`` on."""
    execution_id = status.id
    queue = None if status.state.finished else hub.subscribe(execution_id)
    try:
        sent = after
        while True:  # the backlog
            events = store.events(execution_id, after=sent, limit=1000)
            for event in events:
                yield _event_frame(event)
                sent = event.seq
            if len(events) < 1000:
                break
        if queue is None:
            yield sse("end", served(store.status(execution_id)).model_dump_json())
            return
        yield sse("status", status.model_copy(update={"result": None}).model_dump_json())
        idle = 0.0
        while True:
            if queue.empty():  # wait_for costs a task per call: only when there is nothing
                try:
                    first = await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    if await disconnected():
                        return
                    idle += 1.0
                    if idle >= keepalive:
                        idle = 0.0
                        yield b": ping\n\n"
                    continue
            else:
                first = queue.get_nowait()
            idle = 0.0
            # Everything queued goes out in one write: one send per wake-up, not per frame.
            frames: list[bytes] = []
            item: Frame | None = first
            while item is not None:
                kind, payload = item
                if kind == "event":
                    seq, frame = payload
                    if seq > sent:
                        sent = seq
                        frames.append(frame)
                elif kind == "status":
                    frames.append(payload)
                else:
                    if isinstance(payload, bytes):
                        frames.append(payload)
                    else:
                        frames.append(sse("error", json.dumps({"detail": str(payload)})))
                    yield b"".join(frames)
                    return
                item = None if queue.empty() else queue.get_nowait()
            if frames:
                yield b"".join(frames)
    finally:
        if queue is not None:
            hub.unsubscribe(execution_id, queue)
