"""The embedded store: executions, their timeline, alerts and memory in one SQLite file (WAL).

Safe across threads (one connection guarded by a lock per ``Store``) and processes (WAL, a
busy time-out, short transactions). Every state change goes through ``_op_state`` (for
:meth:`Store.transition` and the supervisor's batches), which refuses illegal transitions so
that a finished execution is never overwritten, turns any end of an execution whose cancel was
accepted into ``cancelled``, and has its session memory cleared.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ErrorInfo, NotFoundError, TaskCancelled, UserError, to_info
from ..execution import TRANSITIONS, Alert, Event, TaskResult, TaskState, TaskStatus, utcnow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    task_json TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    current_action TEXT,
    error_json TEXT,
    result_json TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    parent_id TEXT,
    owner TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS executions_state ON executions(state);
CREATE INDEX IF NOT EXISTS executions_created ON executions(created_at);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    data_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_execution ON events(execution_id, seq);
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    data_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_execution ON alerts(execution_id, seq);
CREATE TABLE IF NOT EXISTS memory (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value_json TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""

_INSERT_EVENT = "INSERT INTO events (execution_id, at, kind, data_json) VALUES (?, ?, ?, ?)"
_TERMINAL = tuple(s.value for s in TaskState if s.finished)
SESSION_PREFIX = "exec:"  # + execution id: the namespace of an execution's session memory
# A write to a session namespace is refused once its execution has ended (a handler thread
# abandoned after a cancel may still run): what the end cleared stays cleared.
_UPSERT_MEMORY = (
    "INSERT INTO memory (namespace, key, value_json, updated_at) SELECT ?, ?, ?, ?"
    " WHERE NOT EXISTS (SELECT 1 FROM executions WHERE id = ? AND state IN (?, ?, ?))"
    " ON CONFLICT(namespace, key) DO UPDATE SET value_json = excluded.value_json,"
    " updated_at = excluded.updated_at"
)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Store:
    """SQLite-backed persistence for one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "aesoperator.sqlite3"
        self._lock = threading.RLock()
        self._ended: list[str] = []  # executions ended by the open transaction (_op_state)
        self._conn = sqlite3.connect(
            self.path, timeout=30, check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.execute("PRAGMA secure_delete=ON")  # deleted values are zeroed, not left
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                self._conn.execute(stmt)

    def artifacts_dir(self, execution_id: str) -> Path:
        return self.data_dir / "artifacts" / execution_id

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            if self._conn.in_transaction:  # only this thread can be in one: it holds the lock
                raise UserError(
                    "memory.update: the function wrote memory itself; it must only compute "
                    "the new value from the old one and return it"
                )
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                self._ended.clear()
                raise
            else:
                ended, self._ended = self._ended, []
                cur.execute("COMMIT")
                self._clear_sessions(ended)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._conn.cursor()
            cur.row_factory = sqlite3.Row
            return list(cur.execute(sql, args))

    # -- batched writes ---------------------------------------------------------------------
    def apply(self, ops: list[tuple[str, tuple[Any, ...]]]) -> dict[str, TaskState]:
        """Apply many writes in one transaction (the supervisor's write-behind buffer).

        Ops: ``("create", (id, name, task_json, owner, parent_id, at))``,
        ``("state", (id, new_state, error_json, result_json, owner, at))``,
        ``("progress", (id, progress | None, action, set_action))``,
        ``("event", (id, kind, data, at))``, ``("alert", (id, alert_json))``.
        A state op only moves an execution along a legal transition; others are skipped.
        Returns the state each execution ended in, for those that ended here (a cancel
        accepted before may have turned a completion into ``cancelled``).
        """
        if not ops:
            return {}
        ended: dict[str, TaskState] = {}
        # Between two create/state ops (the only ones whose order matters to the others),
        # events go in one executemany, in order, and the progress updates of an execution
        # collapse into one (the highest progress, the last action): a busy crawl sends a few
        # per page, and one statement each was most of the cost of recording it.
        events: list[tuple[str, str, str, str]] = []
        progress: dict[str, list[Any]] = {}
        with self._tx() as cur:

            def settle() -> None:
                if events:
                    cur.executemany(_INSERT_EVENT, events)
                    events.clear()
                for eid, (value, action, set_action) in progress.items():
                    self._op_progress(cur, eid, value, action, set_action)
                progress.clear()

            for name, args in ops:
                if name == "event":
                    eid, kind, data, at = args
                    events.append((eid, at, kind, json.dumps(data, default=str)))
                elif name == "progress":
                    eid, value, action, set_action = args
                    merged = progress.setdefault(eid, [None, None, False])
                    if value is not None:
                        merged[0] = value if merged[0] is None else max(merged[0], value)
                    if set_action:
                        merged[1], merged[2] = action, True
                elif name == "alert":
                    cur.execute("INSERT INTO alerts (execution_id, data_json) VALUES (?, ?)", args)
                elif name == "create":
                    settle()
                    eid, task_name, task_json, owner, parent_id, at = args
                    cur.execute(
                        "INSERT INTO executions (id, name, task_json, state, created_at, owner,"
                        " parent_id) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                        (eid, task_name, task_json, at, owner, parent_id),
                    )
                elif name == "state":
                    settle()
                    state = self._op_state(cur, *args)
                    if state is not None and state.finished:
                        ended[args[0]] = state
                else:
                    raise ValueError(f"unknown store op {name!r}")
            settle()
        return ended

    def _op_state(
        self,
        cur: sqlite3.Cursor,
        execution_id: str,
        new: TaskState,
        error_json: str | None,
        result_json: str | None,
        owner: str | None,
        at: str,
    ) -> TaskState | None:
        """One transition; the state written, or None if the execution could not move so."""
        if new.finished and new is not TaskState.CANCELLED:
            row = cur.execute(
                "SELECT cancel_requested FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
            if row is not None and row[0]:
                # A cancel was accepted (cancel_task returned True) before this end was
                # written: the caller was promised ``cancelled``, whatever the task did since.
                new = TaskState.CANCELLED
                error_json = to_info(TaskCancelled("cancelled")).model_dump_json()
        sources = [old.value for old, targets in TRANSITIONS.items() if new in targets]
        sets = ["state = ?"]
        args: list[Any] = [new.value]
        if new is TaskState.RUNNING:
            sets.append("started_at = ?")
            args.append(at)
            if owner is not None:
                sets.append("owner = ?")
                args.append(owner)
        if new.finished:
            sets += ["finished_at = ?", "current_action = NULL"]
            args.append(at)
            if new is TaskState.COMPLETED:
                sets.append("progress = 100")
        if error_json is not None:
            sets.append("error_json = ?")
            args.append(error_json)
        if result_json is not None:
            sets.append("result_json = ?")
            args.append(result_json)
        marks = ",".join("?" * len(sources))
        cur.execute(
            f"UPDATE executions SET {', '.join(sets)} WHERE id = ? AND state IN ({marks})",
            (*args, execution_id, *sources),
        )
        if cur.rowcount == 0:
            return None
        if new.finished:
            self._ended.append(execution_id)  # its session memory is cleared once committed
        error = json.loads(error_json) if error_json else None
        cur.execute(
            "INSERT INTO events (execution_id, at, kind, data_json) VALUES (?, ?, ?, ?)",
            (execution_id, at, "state", json.dumps({"state": new.value, "error": error})),
        )
        return new

    def _op_progress(
        self,
        cur: sqlite3.Cursor,
        execution_id: str,
        progress: float | None,
        action: str | None,
        set_action: bool,
    ) -> None:
        sets: list[str] = []
        args: list[Any] = []
        if progress is not None:
            # MAX() keeps progress monotonic whatever order updates arrive in.
            sets.append("progress = MAX(progress, ?)")
            args.append(progress)
        if set_action:
            sets.append("current_action = ?")
            args.append(action)
        if sets:
            cur.execute(
                f"UPDATE executions SET {', '.join(sets)} WHERE id = ? AND state = 'running'",
                (*args, execution_id),
            )

    # -- executions -------------------------------------------------------------------------
    def create(
        self, execution_id: str, name: str, task_json: str, owner: str, parent_id: str | None = None
    ) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO executions (id, name, task_json, state, created_at, owner, parent_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (execution_id, name, task_json, TaskState.PENDING.value, utcnow().isoformat(),
                 owner, parent_id),
            )  # fmt: skip

    def transition(
        self,
        execution_id: str,
        new: TaskState,
        *,
        error: ErrorInfo | None = None,
        result: TaskResult | None = None,
        owner: str | None = None,
    ) -> bool:
        """Move an execution to ``new``. False (and no write) if it already finished.

        Raises ``RuntimeError`` for a transition the lifecycle does not allow.
        """
        with self._tx() as cur:
            row = cur.execute(
                "SELECT state FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no execution {execution_id!r}")
            old = TaskState(row[0])
            if old.finished:
                return False
            if new not in TRANSITIONS[old]:
                raise RuntimeError(f"illegal transition {old} -> {new} for {execution_id}")
            moved = self._op_state(
                cur,
                execution_id,
                new,
                error.model_dump_json() if error else None,
                result.model_dump_json() if result else None,
                owner,
                utcnow().isoformat(),
            )
            return moved is not None

    def request_cancel(self, execution_id: str) -> bool:
        """Accept a cancel: True if the execution had not ended, and it now ends ``cancelled``.

        The flag and every end of an execution are written under SQLite's write lock, so one
        of them comes first: a True here means the end is written as ``cancelled``.
        """
        with self._tx() as cur:
            cur.execute(
                "UPDATE executions SET cancel_requested = 1"
                " WHERE id = ? AND state NOT IN (?, ?, ?)",
                (execution_id, *_TERMINAL),
            )
            return cur.rowcount > 0

    def cancel_requests(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._query(
            f"SELECT id FROM executions WHERE cancel_requested = 1 AND id IN ({marks})", tuple(ids)
        )
        return [r["id"] for r in rows]

    def task_json(self, execution_id: str) -> str:
        rows = self._query("SELECT task_json FROM executions WHERE id = ?", (execution_id,))
        if not rows:
            raise NotFoundError(f"no execution {execution_id!r}")
        return str(rows[0]["task_json"])

    def status(self, execution_id: str, *, with_alerts: bool = True) -> TaskStatus:
        rows = self._query("SELECT * FROM executions WHERE id = ?", (execution_id,))
        if not rows:
            raise NotFoundError(
                f"no execution {execution_id!r} in {self.data_dir.name}; "
                "list executions with aesop.list_tasks() or `aesop list`"
            )
        return self._status(rows[0], self.alerts(execution_id) if with_alerts else [])

    def _status(self, row: sqlite3.Row, alerts: list[Alert]) -> TaskStatus:
        return TaskStatus(
            id=row["id"],
            name=row["name"],
            state=TaskState(row["state"]),
            progress=row["progress"],
            current_action=row["current_action"],
            error=ErrorInfo.model_validate_json(row["error_json"]) if row["error_json"] else None,
            result=(
                TaskResult.model_validate_json(row["result_json"]) if row["result_json"] else None
            ),
            created_at=_dt(row["created_at"]) or utcnow(),
            started_at=_dt(row["started_at"]),
            finished_at=_dt(row["finished_at"]),
            parent_id=row["parent_id"],
            alerts=alerts,
        )

    def list_executions(
        self, *, state: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[TaskStatus]:
        where: list[str] = []
        args: list[Any] = []
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if name is not None:
            where.append("name = ?")
            args.append(name)
        sql = "SELECT * FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        return [self._status(r, []) for r in self._query(sql, tuple(args))]

    def events(self, execution_id: str, *, after: int = 0, limit: int = 10_000) -> list[Event]:
        rows = self._query(
            "SELECT * FROM events WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (execution_id, after, limit),
        )
        return [
            Event(
                seq=r["seq"],
                execution_id=r["execution_id"],
                at=_dt(r["at"]) or utcnow(),
                kind=r["kind"],
                data=json.loads(r["data_json"]),
            )
            for r in rows
        ]

    def alerts(self, execution_id: str) -> list[Alert]:
        rows = self._query(
            "SELECT data_json FROM alerts WHERE execution_id = ? ORDER BY seq", (execution_id,)
        )
        return [Alert.model_validate_json(r["data_json"]) for r in rows]

    def unfinished(self) -> list[tuple[str, str | None]]:
        rows = self._query("SELECT id, owner FROM executions WHERE state IN ('pending', 'running')")
        return [(r["id"], r["owner"]) for r in rows]

    # -- memory -----------------------------------------------------------------------------
    def mem_get(self, namespace: str, key: str) -> str | None:
        rows = self._query(
            "SELECT value_json FROM memory WHERE namespace = ? AND key = ?", (namespace, key)
        )
        return str(rows[0]["value_json"]) if rows else None

    def mem_set(self, namespace: str, key: str, value_json: str) -> None:
        with self._tx() as cur:
            _upsert(cur, namespace, key, value_json)

    def mem_update(self, namespace: str, key: str, fn: Callable[[str | None], str]) -> None:
        """Read, compute and write one key in one write transaction (``BEGIN IMMEDIATE``).

        No other thread or process can write in between, so concurrent updates never lose
        one another's changes. ``fn`` gets the stored JSON (None if absent) and returns the
        new JSON; it runs while the database is locked for writing, so it must be quick.
        """
        with self._tx() as cur:
            row = cur.execute(
                "SELECT value_json FROM memory WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
            _upsert(cur, namespace, key, fn(row[0] if row else None))

    def mem_delete(self, namespace: str, key: str) -> bool:
        with self._tx() as cur:
            cur.execute("DELETE FROM memory WHERE namespace = ? AND key = ?", (namespace, key))
            return cur.rowcount > 0

    def mem_keys(self, namespace: str) -> list[str]:
        rows = self._query("SELECT key FROM memory WHERE namespace = ? ORDER BY key", (namespace,))
        return [str(r["key"]) for r in rows]

    def mem_clear(self, namespace: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM memory WHERE namespace = ?", (namespace,))
            cleared = cur.rowcount > 0
        if cleared:  # the WAL's older frames still hold the values: empty it (a secret may be one)
            with self._lock:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _clear_sessions(self, execution_ids: list[str]) -> None:
        """Session memory goes with its execution: cleared once its end is committed.

        Through ``mem_clear``, the one function that clears a namespace. A write to the
        namespace after the end is refused (``_upsert``), so nothing can come back.
        """
        if not execution_ids:
            return
        names = tuple(SESSION_PREFIX + eid for eid in execution_ids)
        marks = ",".join("?" * len(names))
        rows = self._query(
            f"SELECT DISTINCT namespace FROM memory WHERE namespace IN ({marks})", names
        )
        for row in rows:
            self.mem_clear(row["namespace"])

    def clear_ended_sessions(self) -> None:
        """Clear what a process killed between an end's commit and its clearing left behind."""
        rows = self._query(
            # The range is every namespace that starts with SESSION_PREFIX (';' follows ':').
            "SELECT DISTINCT namespace FROM memory WHERE namespace >= ? AND namespace < ?"
            " AND substr(namespace, ?) IN (SELECT id FROM executions WHERE state IN (?, ?, ?))",
            (SESSION_PREFIX, SESSION_PREFIX[:-1] + ";", len(SESSION_PREFIX) + 1, *_TERMINAL),
        )
        for row in rows:
            self.mem_clear(row["namespace"])


def _upsert(cur: sqlite3.Cursor, namespace: str, key: str, value_json: str) -> None:
    owner = namespace.removeprefix(SESSION_PREFIX) if namespace.startswith(SESSION_PREFIX) else None
    cur.execute(
        _UPSERT_MEMORY, (namespace, key, value_json, utcnow().isoformat(), owner, *_TERMINAL)
    )
    if cur.rowcount == 0:
        raise TaskCancelled(
            f"memory key {key!r}: execution {owner} has ended; its session memory was cleared "
            "with it and takes no more writes"
        )


def default_data_dir() -> Path:
    """``$AESOP_DATA_DIR`` if set, else ``~/.aesoperator``."""
    env = os.environ.get("AESOP_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".aesoperator"
