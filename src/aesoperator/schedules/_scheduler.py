"""The scheduler: submits the due runs of every schedule of a client's store, through the client.

- No overlap: while a schedule's last execution is unfinished, a fire time is skipped (and
  counted in ``skipped``) unless the schedule has ``allow_overlap``.
- Downtime: fire times that passed while no scheduler ran are not bunched: one catch-up run
  starts, the others are counted in ``missed`` and reported on that run (a
  ``schedule_missed`` event and alert).
- Several schedulers on one store (a data directory, or PostgreSQL shared by many machines):
  each fire time is claimed in the store first, so exactly one of them submits it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import AesoperatorError, NotFoundError
from ..execution import Alert
from ..store.base import AlertRecord, EventRecord
from ._cron import parse_cron
from ._store import BaseScheduleStore, Schedule, open_schedules

if TYPE_CHECKING:
    from ..client import Aesoperator

log = logging.getLogger("aesoperator.schedules")

_MAX_COUNTED = 100_000  # missed fire times counted one by one; past that, "at least"


class Scheduler:
    """Runs schedules on ``client``: ``start()`` a background thread, ``stop()`` it.

    The schedules are those kept with the client's store (``open_schedules(client.store_url)``),
    unless ``store`` is given (then the caller closes it). ``now`` is the clock (a seam for
    tests); ``tick()`` does one pass and returns the ids of the executions it started.
    """

    def __init__(
        self,
        client: Aesoperator,
        *,
        now: Callable[[], datetime] | None = None,
        interval: float = 1.0,
        store: BaseScheduleStore | None = None,
    ) -> None:
        self.client = client
        self._owns_store = store is None
        self.store = store if store is not None else open_schedules(client.store_url)
        self.now = now or (lambda: datetime.now(UTC))
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="aesoperator-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        if self._owns_store:
            self.store.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("aesoperator: the scheduler's pass failed; it goes on")
            self._stop.wait(self.interval)

    def tick(self) -> list[str]:
        """Start every due run now; return the new executions' ids."""
        with self._tick_lock:
            now = self.now()
            started: list[str] = []
            for schedule in self.store.due(now):
                execution_id = self._fire(schedule, now)
                if execution_id is not None:
                    started.append(execution_id)
            return started

    def _running(self, execution_id: str | None) -> bool:
        if execution_id is None:
            return False
        try:
            return not self.client.get_task_status(execution_id).state.finished
        except NotFoundError:
            return False

    def _fire(self, schedule: Schedule, now: datetime) -> str | None:
        try:
            cron = parse_cron(schedule.cron)
        except AesoperatorError as exc:  # stored by hand, or by an older version
            self.store.ran(schedule.id, None, str(exc))
            return None
        # The fire times from next_run_at up to now: the last one runs, the others were missed.
        latest, count = schedule.next_run_at, 1
        upcoming = cron.next_after(latest)
        while upcoming <= now and count < _MAX_COUNTED:
            latest, count = upcoming, count + 1
            upcoming = cron.next_after(upcoming)
        if upcoming <= now:
            upcoming = cron.next_after(now)
        missed = count - 1
        if not schedule.allow_overlap and self._running(schedule.last_execution_id):
            if self.store.claim(schedule, next_run_at=upcoming, ran_at=None, missed=missed,
                                skipped=1):  # fmt: skip
                running = schedule.last_execution_id
                assert running is not None
                log.warning(
                    "aesoperator: schedule %s: run at %s skipped, %s still running",
                    schedule.id, latest.isoformat(), running,
                )  # fmt: skip
                info = {"schedule_id": schedule.id, "fire_time": latest.isoformat(),
                        "missed": missed, "reason": "the previous run still runs"}  # fmt: skip
                self._record([EventRecord(running, "schedule_skipped", info)], schedule.id)
            return None
        if not self.store.claim(schedule, next_run_at=upcoming, ran_at=now, missed=missed,
                                skipped=0):  # fmt: skip
            return None  # another scheduler took this fire time
        try:
            execution = self.client._submit(schedule.task, schedule.project)
        except Exception as exc:  # a handler gone, a bad stored task: say so on the schedule
            self.store.ran(schedule.id, None, f"{type(exc).__name__}: {exc}")
            log.warning("aesoperator: schedule %s could not start: %s", schedule.id, exc)
            return None
        self.store.ran(schedule.id, execution.id, None)
        self._annotate(execution.id, schedule, latest, missed)
        return execution.id

    def _annotate(self, eid: str, schedule: Schedule, fired: datetime, missed: int) -> None:
        data: dict[str, Any] = {"schedule_id": schedule.id, "cron": schedule.cron,
                                "fire_time": fired.isoformat()}  # fmt: skip
        ops: list[EventRecord | AlertRecord] = [EventRecord(eid, "schedule", data)]
        if missed:
            first = schedule.next_run_at.isoformat()
            more = "at least " if missed >= _MAX_COUNTED - 1 else ""
            message = (
                f"schedule {schedule.id} ({schedule.cron}) missed {more}{missed} run(s) from "
                f"{first} while no scheduler was running; this run catches up once"
            )
            info = {**data, "missed": missed, "first_missed": first}
            ops.append(EventRecord(eid, "schedule_missed", info))
            alert = Alert(kind="schedule_missed", message=message, metrics={"missed": missed})
            ops.append(AlertRecord(eid, alert))
        self._record(ops, schedule.id)

    def _record(self, ops: list[EventRecord | AlertRecord], schedule_id: str) -> None:
        try:
            self.client._store.apply(ops)
        except Exception:
            log.exception("aesoperator: could not record schedule %s's run", schedule_id)
