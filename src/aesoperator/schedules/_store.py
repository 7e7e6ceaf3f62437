"""Schedules beside the store: in a data directory's SQLite database, or the PostgreSQL one.

:func:`open_schedules` takes the client's store URL (``client.store_url``) and opens the
schedules kept with that store. Both kinds run the same SQL (:class:`BaseScheduleStore`),
each on its own connection(s). A fire time is *claimed* by moving ``next_run_at`` from the
value read to the next one in a single conditional UPDATE: of several schedulers on one
store, on one machine or many, exactly one wins it (on PostgreSQL a second UPDATE of the row
waits for the first to commit, then finds ``next_run_at`` changed and updates nothing).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
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


def _dt(value: str | datetime | None) -> datetime | None:
    # SQLite keeps ISO text, PostgreSQL a timestamptz (read in UTC).
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value) if value else None


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


def _row(row: Mapping[str, Any]) -> Schedule:
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


class BaseScheduleStore(ABC):
    """The ``schedules`` table of a store: what the scheduler, the API and the CLI use.

    The SQL is written once, with ``?`` placeholders; a subclass runs it (``_execute``,
    ``_fetch``) and says how a time and a flag are stored (``_time``, ``_flag``).
    """

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _execute(self, sql: str, args: Sequence[Any]) -> int:
        """Run one statement on its own (committed when this returns); the rows it changed."""

    @abstractmethod
    def _fetch(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]: ...

    @abstractmethod
    def _time(self, dt: datetime) -> Any: ...

    @abstractmethod
    def _flag(self, value: bool) -> Any: ...

    def __enter__(self) -> BaseScheduleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        self._execute(
            f"INSERT INTO schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, 0, 0,"
            " NULL, ?)",
            (sid, project, parsed.text, task.model_dump_json(), self._flag(allow_overlap),
             self._time(parsed.next_after(now)), self._time(now)),
        )  # fmt: skip
        return self.get(sid, project=project)

    def get(self, schedule_id: str, *, project: str | None = None) -> Schedule:
        """The schedule; ``NotFoundError`` if absent (or another project's)."""
        rows = self._fetch(f"SELECT {_COLUMNS} FROM schedules WHERE id = ?", (schedule_id,))
        if not rows or (project is not None and rows[0]["project"] != project):
            raise NotFoundError(f"no schedule with id {schedule_id!r}; see 'aesop schedule list'")
        return _row(rows[0])

    def all(self, *, project: str | None = None) -> list[Schedule]:
        """Schedules (of one project, or all), oldest first."""
        sql = f"SELECT {_COLUMNS} FROM schedules"
        args: tuple[Any, ...] = ()
        if project is not None:
            sql, args = sql + " WHERE project = ?", (project,)
        return [_row(r) for r in self._fetch(sql + " ORDER BY created_at, id", args)]

    def remove(self, schedule_id: str, *, project: str | None = None) -> bool:
        """Delete a schedule: False if there is none with that id (in that project)."""
        sql = "DELETE FROM schedules WHERE id = ?"
        args: tuple[str, ...] = (schedule_id,)
        if project is not None:
            sql, args = sql + " AND project = ?", (schedule_id, project)
        return self._execute(sql, args) == 1

    def due(self, now: datetime) -> list[Schedule]:
        """Schedules whose next fire time is at or before ``now``."""
        rows = self._fetch(
            f"SELECT {_COLUMNS} FROM schedules WHERE next_run_at <= ? ORDER BY next_run_at, id",
            (self._time(now),),
        )
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
        changed = self._execute(
            "UPDATE schedules SET next_run_at = ?, missed = missed + ?,"
            " skipped = skipped + ?, last_run_at = COALESCE(?, last_run_at)"
            " WHERE id = ? AND next_run_at = ?",
            (self._time(next_run_at), missed, skipped,
             self._time(ran_at) if ran_at else None, schedule.id,
             self._time(schedule.next_run_at)),
        )  # fmt: skip
        return changed == 1

    def ran(self, schedule_id: str, execution_id: str | None, error: str | None) -> None:
        """Record what the claimed run became: an execution, or why it could not start."""
        if execution_id is not None:
            self._execute(
                "UPDATE schedules SET last_execution_id = ?, last_error = NULL WHERE id = ?",
                (execution_id, schedule_id),
            )
        else:
            self._execute("UPDATE schedules SET last_error = ? WHERE id = ?", (error, schedule_id))


class ScheduleStore(BaseScheduleStore):
    """The ``schedules`` table of a data directory's SQLite database (or of ``db_file``);
    safe across threads and processes."""

    def __init__(self, data_dir: str | Path, db_file: str | Path | None = None) -> None:
        path = Path(data_dir).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        db = Path(db_file).expanduser() if db_file is not None else path / DB_FILE
        self.path = db
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(db, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"ScheduleStore({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, args: Sequence[Any]) -> int:
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]:
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    def _time(self, dt: datetime) -> str:
        return _iso(dt)

    def _flag(self, value: bool) -> int:
        return int(value)


def open_schedules(url: str | os.PathLike[str] | None = None) -> BaseScheduleStore:
    """The schedules kept with the store at ``url`` (what ``open_store`` and
    ``Aesoperator(store=...)`` take; ``client.store_url``): a data directory or ``sqlite://``
    URL opens its SQLite database's table, ``postgresql://`` the PostgreSQL database's (the
    ``postgresql`` extra). ``None`` is the default data directory."""
    from ..store import locate

    where = locate(url)
    if isinstance(where, str):
        from ._postgres import PostgresScheduleStore

        return PostgresScheduleStore(where)
    return ScheduleStore(*where)
