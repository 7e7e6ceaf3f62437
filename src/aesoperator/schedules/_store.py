"""Schedules in the data directory's SQLite database (their own table and connection).

A fire time is *claimed* by moving ``next_run_at`` from the value read to the next one in a
single conditional UPDATE: of several schedulers on one data directory, exactly one wins it.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, UserError
from ..store.sqlite import DB_FILE
from ..task import Task
from ._cron import parse_cron

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL DEFAULT 'default',
    cron TEXT NOT NULL,
    task_json TEXT NOT NULL,
    allow_overlap INTEGER NOT NULL DEFAULT 0,
    next_run_at TEXT NOT NULL,
    last_run_at TEXT,
    last_execution_id TEXT,
    missed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_next ON schedules(next_run_at);
"""
_COLUMNS = (
    "id, project, cron, task_json, allow_overlap, next_run_at, last_run_at, "
    "last_execution_id, missed, skipped, last_error, created_at"
)


def _iso(dt: datetime) -> str:
    # One fixed format, so that text order is time order in SQL comparisons.
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class Schedule:
    """One schedule: a task run at each fire time of ``cron`` (UTC)."""

    id: str
    project: str
    cron: str
    task_json: str
    allow_overlap: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_execution_id: str | None
    missed: int  # fire times that passed while no scheduler ran (reported, not run)
    skipped: int  # fire times not run because the previous run was still going
    last_error: str | None  # why the last submission failed, if it did
    created_at: datetime

    @property
    def task(self) -> Task:
        return Task.model_validate_json(self.task_json)

    def to_json(self) -> dict[str, Any]:
        """The API's form (``GET /v1/schedules``)."""
        return {
            "id": self.id,
            "project": self.project,
            "cron": self.cron,
            "task": self.task.model_dump(mode="json"),
            "allow_overlap": self.allow_overlap,
            "next_run_at": self.next_run_at.isoformat(),
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "last_execution_id": self.last_execution_id,
            "missed": self.missed,
            "skipped": self.skipped,
            "last_error": self.last_error,
            "created_at": self.created_at.isoformat(),
        }


def _row(row: sqlite3.Row) -> Schedule:
    next_run = _dt(row["next_run_at"])
    created = _dt(row["created_at"])
    assert next_run is not None and created is not None
    return Schedule(
        id=row["id"], project=row["project"], cron=row["cron"], task_json=row["task_json"],
        allow_overlap=bool(row["allow_overlap"]), next_run_at=next_run,
        last_run_at=_dt(row["last_run_at"]), last_execution_id=row["last_execution_id"],
        missed=row["missed"], skipped=row["skipped"], last_error=row["last_error"],
        created_at=created,
    )  # fmt: skip


class ScheduleStore:
    """The ``schedules`` table of a data directory; safe across threads and processes."""

    def __init__(self, data_dir: str | Path) -> None:
        path = Path(data_dir).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path / DB_FILE, timeout=30, check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(
        self,
        cron: str,
        task: Task,
        *,
        allow_overlap: bool = False,
        project: str = "default",
        now: datetime | None = None,
    ) -> Schedule:
        """Store a new schedule; its first run is the first fire time after ``now``."""
        parsed = parse_cron(cron)
        if not isinstance(task, Task):
            raise UserError(f"task: got {type(task).__name__}; give a Task")
        if task.secrets or task.webhook_secret is not None:
            which = "secrets" if task.secrets else "webhook_secret"
            raise UserError(
                f"task.{which}: a scheduled task is stored, and secrets never are; remove "
                f"{which} (a scheduled task's webhooks are signed with the server's "
                "webhook_secret)"
            )
        if not isinstance(allow_overlap, bool):
            raise UserError(f"allow_overlap: got {allow_overlap!r}; use true or false")
        now = now or datetime.now(UTC)
        sid = "sch_" + uuid.uuid4().hex[:16]
        with self._lock:
            self._conn.execute(
                f"INSERT INTO schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, 0, 0,"
                " NULL, ?)",
                (sid, project, parsed.text, task.model_dump_json(), int(allow_overlap),
                 _iso(parsed.next_after(now)), _iso(now)),
            )  # fmt: skip
        return self.get(sid, project=project)

    def get(self, schedule_id: str, *, project: str | None = None) -> Schedule:
        """The schedule; ``NotFoundError`` if absent (or another project's)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE id = ?", (schedule_id,)
            ).fetchone()
        if row is None or (project is not None and row["project"] != project):
            raise NotFoundError(f"no schedule with id {schedule_id!r}; see 'aesop schedule list'")
        return _row(row)

    def all(self, *, project: str | None = None) -> list[Schedule]:
        """Schedules (of one project, or all), oldest first."""
        sql = f"SELECT {_COLUMNS} FROM schedules"
        args: tuple[Any, ...] = ()
        if project is not None:
            sql, args = sql + " WHERE project = ?", (project,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY created_at, id", args).fetchall()
        return [_row(r) for r in rows]

    def remove(self, schedule_id: str, *, project: str | None = None) -> bool:
        """Delete a schedule: False if there is none with that id (in that project)."""
        sql = "DELETE FROM schedules WHERE id = ?"
        args: tuple[str, ...] = (schedule_id,)
        if project is not None:
            sql, args = sql + " AND project = ?", (schedule_id, project)
        with self._lock:
            return self._conn.execute(sql, args).rowcount == 1

    def due(self, now: datetime) -> list[Schedule]:
        """Schedules whose next fire time is at or before ``now``."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE next_run_at <= ? ORDER BY next_run_at",
                (_iso(now),),
            ).fetchall()
        return [_row(r) for r in rows]

    def claim(
        self,
        schedule: Schedule,
        *,
        next_run_at: datetime,
        ran_at: datetime | None,
        missed: int,
        skipped: int,
    ) -> bool:
        """Take the fire time ``schedule.next_run_at``: True for exactly one caller."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE schedules SET next_run_at = ?, missed = missed + ?,"
                " skipped = skipped + ?, last_run_at = COALESCE(?, last_run_at)"
                " WHERE id = ? AND next_run_at = ?",
                (_iso(next_run_at), missed, skipped, _iso(ran_at) if ran_at else None,
                 schedule.id, _iso(schedule.next_run_at)),
            )  # fmt: skip
            return cur.rowcount == 1

    def ran(self, schedule_id: str, execution_id: str | None, error: str | None) -> None:
        """Record what the claimed run became: an execution, or why it could not start."""
        with self._lock:
            if execution_id is not None:
                self._conn.execute(
                    "UPDATE schedules SET last_execution_id = ?, last_error = NULL WHERE id = ?",
                    (execution_id, schedule_id),
                )
            else:
                self._conn.execute(
                    "UPDATE schedules SET last_error = ? WHERE id = ?", (error, schedule_id)
                )
