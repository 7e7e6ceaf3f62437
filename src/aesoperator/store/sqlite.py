"""The embedded store: executions, their timeline, alerts and memory in one SQLite file (WAL).

One implementation of :class:`aesoperator.store.base.Store`. Safe across threads (one
connection guarded by a lock per store) and processes (WAL, a busy time-out, short
transactions: ``BEGIN IMMEDIATE`` takes the write lock up front, so a read-decide-write
inside one is atomic). What a transition writes is decided by
:func:`aesoperator.store.lifecycle.decide`. The queries both SQL stores share are in
``_sql.py``; this module keeps the connection, the transactions, the schema and what only
SQLite does (its session-memory guard, secure_delete and the WAL checkpoint after a clear).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import TaskCancelled, UserError
from ..execution import TaskState, utcnow
from . import lifecycle
from ._sql import Cursor, SQLStore
from .base import Op
from .lifecycle import SESSION_PREFIX

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

# Forward-only migrations, keyed by ``PRAGMA user_version``: entry ``n`` takes a database at
# version ``n`` to ``n + 1``. A data directory of an older version opens and keeps its rows.
_MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: projects (the service's isolation unit) and API tokens.
    """
    ALTER TABLE executions ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX IF NOT EXISTS executions_project_created
        ON executions(project, created_at);
    CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        lookup TEXT NOT NULL,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        scope TEXT NOT NULL,
        project TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX IF NOT EXISTS tokens_lookup ON tokens(lookup);
    """,
    # 1 -> 2: durable step results (a retried run replays them), rows of their execution.
    """
    CREATE TABLE IF NOT EXISTS steps (
        execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value_json TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (execution_id, key)
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_TERMINAL = tuple(s.value for s in lifecycle.TERMINAL)
DB_FILE = "aesoperator.sqlite3"  # in the data directory, beside artifacts/
# A write to a session namespace is refused once its execution has ended (a handler thread
# abandoned after a cancel may still run): what the end cleared stays cleared.
_UPSERT_MEMORY = (
    "INSERT INTO memory (namespace, key, value_json, updated_at) SELECT ?, ?, ?, ?"
    " WHERE NOT EXISTS (SELECT 1 FROM executions WHERE id = ? AND state IN (?, ?, ?))"
    " ON CONFLICT(namespace, key) DO UPDATE SET value_json = excluded.value_json,"
    " updated_at = excluded.updated_at"
)


def open_sqlite(data_dir: Path, db_file: Path | None = None) -> SQLiteStore:
    """The store of a data directory, or a ``UserError`` that says what is wrong with it."""
    try:
        return SQLiteStore(data_dir, db_file)
    except sqlite3.DatabaseError as exc:
        db = db_file or data_dir / DB_FILE
        if not db.is_file():
            raise UserError(
                f"data_dir {str(data_dir)!r}: cannot open {str(db)!r} ({exc})"
            ) from None
        raise UserError(
            f"data_dir {str(data_dir)!r}: {str(db)!r} is not a readable Aesoperator database "
            f"({exc}); it was left as it is: move it away, or use another data_dir"
        ) from None
    except OSError as exc:
        why = "a file, not a directory" if data_dir.is_file() else exc.strerror or str(exc)
        raise UserError(
            f"data_dir {str(data_dir)!r} cannot be used ({why}); give a writable "
            "directory (Aesoperator(data_dir=...), --data-dir or AESOP_DATA_DIR)"
        ) from None


class SQLiteStore(SQLStore):
    """SQLite-backed persistence for one data directory (``db_file`` may live elsewhere)."""

    _P, _TIE, _TEXT_TIMES, _TRUE, _KEY_ORDER = "?", "rowid", True, "1", "key"
    # BEGIN IMMEDIATE holds the write lock for the whole transaction: nothing more to lock.
    _MAX, _LOCK_ROW, _SAVEPOINTS = "MAX", "", False

    def __init__(self, data_dir: Path, db_file: Path | None = None) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = db_file or data_dir / DB_FILE
        self._lock = threading.RLock()
        self._ended: list[str] = []  # session namespaces to clear once the transaction commits
        self._conn = sqlite3.connect(
            self.path, timeout=30, check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.execute("PRAGMA secure_delete=ON")  # deleted values are zeroed, not left
        self._conn.execute("PRAGMA foreign_keys=ON")  # a step's rows go with its execution
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                self._conn.execute(stmt)
        self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to ``SCHEMA_VERSION``, once, whatever other process opens it too."""
        if self._conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        with self._tx() as cur:  # re-read under the write lock: another process may have won
            version = cur.execute("PRAGMA user_version").fetchone()[0]
            for step in _MIGRATIONS[version:]:
                for stmt in step.split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _place(self) -> str:
        return self.data_dir.name

    def _lock_batch(self, cur: Cursor, ops: Sequence[Op]) -> None:
        pass  # BEGIN IMMEDIATE took the write lock

    def _end_session(self, cur: Cursor, namespace: str) -> None:
        self._ended.append(namespace)  # cleared once committed (mem_clear checkpoints the WAL)

    def artifacts_dir(self, execution_id: str) -> Path:
        return self.data_dir / "artifacts" / execution_id

    def listen(self, fn: Callable[[str, str], None], *, cancels_only: bool = False) -> None:
        """None: SQLite cannot tell other processes of a change; they poll."""
        return None

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
    # -- executions -------------------------------------------------------------------------
    def request_cancel(self, execution_id: str) -> bool:
        """Accept a cancel: True if the execution had not ended, and it now ends ``cancelled``.

        The flag and every end of an execution are written under SQLite's write lock, so one
        of them comes first: a True here means the end is written as ``cancelled``.
        """
        with self._tx() as cur:
            row = cur.execute(
                "SELECT state FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
            if row is None or not lifecycle.cancel_accepted(TaskState(row[0])):
                return False
            cur.execute("UPDATE executions SET cancel_requested = 1 WHERE id = ?", (execution_id,))
            return True

    # -- memory -----------------------------------------------------------------------------
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

    def mem_clear(self, namespace: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM memory WHERE namespace = ?", (namespace,))
            cleared = cur.rowcount > 0
        if cleared:  # the WAL's older frames still hold the values: empty it (a secret may be one)
            with self._lock:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- tokens -----------------------------------------------------------------------------
    def _clear_sessions(self, namespaces: list[str]) -> None:
        """Session memory goes with its execution: cleared once its end is committed.

        Through ``mem_clear``, the one function that clears a namespace. A write to the
        namespace after the end is refused (``_upsert``), so nothing can come back.
        """
        if not namespaces:
            return
        names = tuple(namespaces)
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
    owner = lifecycle.session_execution(namespace)
    cur.execute(
        _UPSERT_MEMORY, (namespace, key, value_json, utcnow().isoformat(), owner, *_TERMINAL)
    )
    if cur.rowcount == 0:
        raise TaskCancelled(
            f"memory key {key!r}: execution {owner} has ended; its session memory was cleared "
            "with it and takes no more writes"
        )


Store = SQLiteStore  # the name this class had before the Store protocol (store/base.py)


def default_data_dir() -> Path:
    """``$AESOP_DATA_DIR`` if set, else ``~/.aesoperator``."""
    env = os.environ.get("AESOP_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".aesoperator"
