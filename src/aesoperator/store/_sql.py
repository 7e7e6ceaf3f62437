"""What the SQL stores (``sqlite.py``, ``postgres.py``) share: their queries and row mapping.

The two stores read and write the same tables with the same SQL but for the placeholder
(``?`` or ``%s``), how a time is kept (ISO text or ``TIMESTAMPTZ``), the column that breaks
ties of ``created_at`` (``rowid`` or ``seq``) and a few words. :class:`SQLStore` holds that
SQL once, built with the store's placeholder and run through the store's own ``_query`` and
``_tx``; each store keeps what really differs: connections, transactions and locking,
migrations, session memory's guard and clearing, SQLite's secure_delete, LISTEN/NOTIFY.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import ErrorInfo, NotFoundError, ValidationError
from ..execution import Alert, Event, TaskResult, TaskState, TaskStatus, utcnow
from . import lifecycle, tokens
from .base import AlertRecord, Create, CurrentAction, EventRecord, Op, Progress, Transition
from .lifecycle import IllegalTransition
from .tokens import TokenInfo

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager


class Row(Protocol):
    """A result row by column name: ``sqlite3.Row`` or psycopg's ``dict_row``."""

    def __getitem__(self, key: str, /) -> Any: ...


class Cursor(Protocol):
    """A DB-API cursor: ``sqlite3.Cursor`` or ``psycopg.Cursor``."""

    def execute(self, sql: str, args: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, args: Any, /) -> Any: ...

    @property
    def rowcount(self) -> int: ...


_UNFINISHED = tuple(s.value for s in lifecycle.UNFINISHED)
_INSERT_EVENT = "INSERT INTO events (execution_id, at, kind, data_json) VALUES ({p}, {p}, {p}, {p})"


class SQLStore:
    """A SQL store's shared logic; the subclass sets the class variables and the hooks."""

    _P: ClassVar[str]  # the driver's placeholder: "?" or "%s"
    _TIE: ClassVar[str]  # the column after created_at in the order of executions
    _TEXT_TIMES: ClassVar[bool]  # times are stored as ISO 8601 text (UTC), not timestamps
    _TRUE: ClassVar[str]  # a true cancel_requested, as the column's type spells it
    _KEY_ORDER: ClassVar[str]  # ORDER BY of memory keys: code point order on both
    _MAX: ClassVar[str]  # the SQL function of the larger of two values
    _LOCK_ROW: ClassVar[str]  # what a SELECT that reads to decide a write ends with
    _SAVEPOINTS: ClassVar[bool]  # a refused transition in a batch is rolled back to a savepoint

    if TYPE_CHECKING:

        def _query(self, sql: str, args: tuple[Any, ...] = ()) -> Sequence[Row]: ...

        def _tx(self) -> AbstractContextManager[Cursor]: ...

        def _place(self) -> str:
            """Where the store is, for a message: the data directory's name, or the URL."""
            ...

        def _lock_batch(self, cur: Cursor, ops: Sequence[Op]) -> None:
            """Whatever ``apply`` must hold before it writes a batch."""
            ...

        def _end_session(self, cur: Cursor, namespace: str) -> None:
            """An execution ended in ``cur``'s transaction: its session memory goes."""
            ...

    def _changed(self, cur: Cursor, kind: str, execution_id: str) -> None:
        """``cur``'s transaction changed what ``kind`` names of an execution (``progress``,
        ``alert``, ``state``, ``cancel``): a store that notifies listeners says so when it
        commits. Nothing here (SQLite has no one to tell)."""

    # -- batched writes ---------------------------------------------------------------------
    def apply(self, ops: Sequence[Op]) -> dict[str, TaskState]:
        """Apply many writes in one transaction (the supervisor's write-behind buffer).

        A transition the lifecycle refuses is skipped. Returns the state each execution
        ended in, for those that ended here (a cancel accepted before may have turned a
        completion into ``cancelled``).
        """
        if not ops:
            return {}
        p, text, savepoints = self._P, self._TEXT_TIMES, self._SAVEPOINTS
        insert_event = _INSERT_EVENT.format(p=p)
        ended: dict[str, TaskState] = {}
        # Between two create/transition ops (the only ones whose order matters to the
        # others), events go in one executemany, in order, and the progress updates of an
        # execution collapse into one (the highest progress, the last action): a busy crawl
        # sends a few per page, and one statement each was most of the cost of recording it.
        events: list[tuple[str, Any, str, str]] = []
        progress: dict[str, float] = {}
        actions: dict[str, str | None] = {}
        with self._tx() as cur:
            self._lock_batch(cur, ops)

            def settle() -> None:
                if events:
                    cur.executemany(insert_event, events)
                    events.clear()
                for eid in {**progress, **actions}:
                    if self._op_progress(
                        cur, eid, progress.get(eid), eid in actions, actions.get(eid)
                    ):
                        self._changed(cur, "progress", eid)
                progress.clear()
                actions.clear()

            for op in ops:
                if isinstance(op, EventRecord):
                    data = json.dumps(op.data, default=str)
                    at = op.at.isoformat() if text else op.at
                    events.append((op.execution_id, at, op.kind, data))
                elif isinstance(op, Progress):
                    old = progress.get(op.execution_id)
                    progress[op.execution_id] = op.value if old is None else max(old, op.value)
                elif isinstance(op, CurrentAction):
                    actions[op.execution_id] = op.label
                elif isinstance(op, AlertRecord):
                    cur.execute(
                        f"INSERT INTO alerts (execution_id, data_json) VALUES ({p}, {p})",
                        (op.execution_id, op.alert.model_dump_json()),
                    )
                    self._changed(cur, "alert", op.execution_id)
                elif isinstance(op, Create):
                    settle()
                    self._op_create(cur, op)
                elif isinstance(op, Transition):
                    settle()
                    if savepoints:
                        cur.execute("SAVEPOINT op")
                    try:
                        state = self._op_transition(cur, op)
                    except (IllegalTransition, NotFoundError):
                        if savepoints:
                            cur.execute("ROLLBACK TO SAVEPOINT op")
                        continue  # one refused op must not lose the batch: it is skipped
                    if state is not None and state.finished:
                        ended[op.execution_id] = state
                else:
                    raise TypeError(f"unknown store op {op!r}")
            settle()
        return ended

    def _op_create(self, cur: Cursor, op: Create) -> None:
        p = self._P
        cur.execute(
            # A sub-task belongs to its parent's project.
            "INSERT INTO executions"
            " (id, name, task_json, state, created_at, owner, parent_id, project)"
            f" VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, COALESCE({p},"
            f" (SELECT project FROM executions WHERE id = {p}), 'default'))",
            (op.execution_id, op.name, op.task_json, TaskState.PENDING.value,
             _stored(op.at, self._TEXT_TIMES), op.owner, op.parent_id, op.project, op.parent_id),
        )  # fmt: skip
        self._changed(cur, "state", op.execution_id)

    def _op_transition(self, cur: Cursor, op: Transition) -> TaskState | None:
        """One transition as the lifecycle decides it; the state written, or None if ended.

        What the lifecycle sees cannot change before its outcome is written: SQLite's
        ``BEGIN IMMEDIATE`` holds the write lock, PostgreSQL's row is locked (``_LOCK_ROW``).
        """
        p, text = self._P, self._TEXT_TIMES
        row = cur.execute(
            f"SELECT state, cancel_requested FROM executions WHERE id = {p}{self._LOCK_ROW}",
            (op.execution_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no execution {op.execution_id!r}")
        out = lifecycle.decide(TaskState(row[0]), op, cancel_requested=bool(row[1]))
        if out is None:
            return None
        sets = [f"state = {p}"]
        args: list[Any] = [out.state.value]
        for column, value in (
            ("started_at", _stored(out.started_at, text)),
            ("owner", out.owner),
            ("finished_at", _stored(out.finished_at, text)),
            ("progress", out.progress),
            ("error_json", out.error and out.error.model_dump_json()),
            ("result_json", None if out.result is None else json.dumps(out.result)),
        ):
            if value is not None:
                sets.append(f"{column} = {p}")
                args.append(value)
        if out.clear_action:
            sets.append("current_action = NULL")
        cur.execute(
            f"UPDATE executions SET {', '.join(sets)} WHERE id = {p}", (*args, op.execution_id)
        )
        if out.clear_session is not None:
            self._end_session(cur, out.clear_session)
        cur.execute(
            _INSERT_EVENT.format(p=p),
            (op.execution_id, _stored(op.at, text), "state", json.dumps(out.event)),
        )
        self._changed(cur, "state", op.execution_id)
        return out.state

    def _op_progress(
        self,
        cur: Cursor,
        execution_id: str,
        progress: float | None,
        set_action: bool,
        action: str | None,
    ) -> bool:
        """Write progress and current action; True if the row changed (it was running)."""
        p = self._P
        sets: list[str] = []
        args: list[Any] = []
        if progress is not None:
            # The larger of the two keeps progress monotonic whatever order updates arrive in.
            sets.append(f"progress = {self._MAX}(progress, {p})")
            args.append(progress)
        if set_action:
            sets.append(f"current_action = {p}")
            args.append(action)
        if sets:
            cur.execute(
                f"UPDATE executions SET {', '.join(sets)} WHERE id = {p} AND state = {p}",
                (*args, execution_id, TaskState.RUNNING.value),
            )
            return bool(cur.rowcount > 0)
        return False

    # -- executions -------------------------------------------------------------------------
    def create(
        self,
        execution_id: str,
        name: str,
        task_json: str,
        owner: str,
        parent_id: str | None = None,
        *,
        project: str | None = None,
    ) -> None:
        op = Create(execution_id, name, task_json, owner, parent_id, project=project)
        with self._tx() as cur:
            self._op_create(cur, op)

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

        ``NotFoundError`` for an unknown id, ``IllegalTransition`` (a ``RuntimeError``) for a
        transition the lifecycle does not allow.
        """
        data = result.model_dump(mode="json") if result is not None else None
        op = Transition(execution_id, new, error=error, result=data, owner=owner)
        with self._tx() as cur:
            return self._op_transition(cur, op) is not None

    def cancel_requests(self, ids: list[str]) -> list[str]:
        return self._ids_where(f"cancel_requested = {self._TRUE}", ids)

    def ended(self, ids: list[str]) -> list[str]:
        ends = ",".join(f"'{state.value}'" for state in lifecycle.TERMINAL)
        return self._ids_where(f"state IN ({ends})", ids)

    def _ids_where(self, condition: str, ids: list[str]) -> list[str]:
        """Those of ``ids`` whose row meets ``condition`` (SQL of ours, never input)."""
        if not ids:
            return []
        marks = ",".join([self._P] * len(ids))
        rows = self._query(
            f"SELECT id FROM executions WHERE {condition} AND id IN ({marks})", tuple(ids)
        )
        return [r["id"] for r in rows]

    def task_json(self, execution_id: str) -> str:
        p = self._P
        rows = self._query(f"SELECT task_json FROM executions WHERE id = {p}", (execution_id,))
        if not rows:
            raise NotFoundError(f"no execution {execution_id!r}")
        return str(rows[0]["task_json"])

    def status(
        self, execution_id: str, *, with_alerts: bool = True, project: str | None = None
    ) -> TaskStatus:
        p = self._P
        if project is None:
            rows = self._query(f"SELECT * FROM executions WHERE id = {p}", (execution_id,))
        else:  # another project's execution is as absent as one that never existed
            rows = self._query(
                f"SELECT * FROM executions WHERE id = {p} AND project = {p}",
                (execution_id, project),
            )
        if not rows:
            raise NotFoundError(
                f"no execution {execution_id!r} in {self._place()}; "
                "list executions with aesop.list_tasks() or `aesop list`"
            )
        return status_of(rows[0], self.alerts(execution_id) if with_alerts else [])

    def list_executions(
        self, *, state: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[TaskStatus]:
        p = self._P
        where: list[str] = []
        args: list[Any] = []
        if state is not None:
            where.append(f"state = {p}")
            args.append(state)
        if name is not None:
            where.append(f"name = {p}")
            args.append(name)
        sql = "SELECT * FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at DESC, {self._TIE} DESC LIMIT {p}"
        args.append(limit)
        return [status_of(r, []) for r in self._query(sql, tuple(args))]

    def list_page(
        self,
        *,
        project: str,
        state: str | None = None,
        name: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[TaskStatus], str | None]:
        p, tie, text = self._P, self._TIE, self._TEXT_TIMES
        where = [f"project = {p}"]
        args: list[Any] = [project]
        for column, op, value in (
            ("state", "=", state),
            ("name", "=", name),
            ("created_at", ">=", since and (_utc(since).isoformat() if text else _utc(since))),
        ):
            if value is not None:
                where.append(f"{column} {op} {p}")
                args.append(value)
        if cursor is not None:
            at, key = _read_cursor(cursor)
            where.append(f"(created_at, {tie}) < ({p}, {p})")
            args += [at if text else _utc(datetime.fromisoformat(at)), key]
        rows = self._query(
            f"SELECT {tie} AS _tie, * FROM executions WHERE {' AND '.join(where)}"
            f" ORDER BY created_at DESC, {tie} DESC LIMIT {p}",
            (*args, limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        items = [status_of(r, [], with_result=False) for r in rows]
        last = rows[-1] if more else None
        return items, (None if last is None else _cursor(last["created_at"], last["_tie"]))

    def last_seq(self, execution_id: str) -> int:
        rows = self._query(
            f"SELECT MAX(seq) AS m FROM events WHERE execution_id = {self._P}", (execution_id,)
        )
        return int(rows[0]["m"] or 0)

    def events(self, execution_id: str, *, after: int = 0, limit: int = 10_000) -> list[Event]:
        p = self._P
        rows = self._query(
            f"SELECT * FROM events WHERE execution_id = {p} AND seq > {p} ORDER BY seq LIMIT {p}",
            (execution_id, after, limit),
        )
        return [
            Event(
                seq=r["seq"],
                execution_id=r["execution_id"],
                at=_when(r["at"]) or utcnow(),
                kind=r["kind"],
                data=json.loads(r["data_json"]),
            )
            for r in rows
        ]

    def alerts(self, execution_id: str) -> list[Alert]:
        rows = self._query(
            f"SELECT data_json FROM alerts WHERE execution_id = {self._P} ORDER BY seq",
            (execution_id,),
        )
        return [Alert.model_validate_json(r["data_json"]) for r in rows]

    def unfinished(self) -> list[tuple[str, str | None]]:
        marks = ",".join([self._P] * len(_UNFINISHED))
        rows = self._query(
            f"SELECT id, owner FROM executions WHERE state IN ({marks})", _UNFINISHED
        )
        return [(r["id"], r["owner"]) for r in rows]

    # -- durable steps ----------------------------------------------------------------------
    def step_get(self, execution_id: str, key: str) -> str | None:
        p = self._P
        rows = self._query(
            f"SELECT value_json FROM steps WHERE execution_id = {p} AND key = {p}",
            (execution_id, key),
        )
        return str(rows[0]["value_json"]) if rows else None

    def step_put(self, execution_id: str, key: str, value_json: str) -> bool:
        """Store a step's result; the first write wins (False and no write for a second)."""
        p = self._P
        with self._tx() as cur:
            if (
                cur.execute(f"SELECT 1 FROM executions WHERE id = {p}", (execution_id,)).fetchone()
                is None
            ):
                raise NotFoundError(
                    f"no execution {execution_id!r}: its step {key!r} cannot be kept"
                )
            # Two processes running the same step (a retry racing a worker thought dead) both
            # end here: the primary key keeps the first result, which both then replay.
            cur.execute(
                "INSERT INTO steps (execution_id, key, value_json, at)"
                f" VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (execution_id, key) DO NOTHING",
                (execution_id, key, value_json, _stored(utcnow(), self._TEXT_TIMES)),
            )
            return bool(cur.rowcount > 0)

    # -- memory -----------------------------------------------------------------------------
    def mem_get(self, namespace: str, key: str) -> str | None:
        p = self._P
        rows = self._query(
            f"SELECT value_json FROM memory WHERE namespace = {p} AND key = {p}", (namespace, key)
        )
        return str(rows[0]["value_json"]) if rows else None

    def mem_keys(self, namespace: str) -> list[str]:
        rows = self._query(
            f"SELECT key FROM memory WHERE namespace = {self._P} ORDER BY {self._KEY_ORDER}",
            (namespace,),
        )
        return [str(r["key"]) for r in rows]

    def mem_delete(self, namespace: str, key: str) -> bool:
        p = self._P
        with self._tx() as cur:
            cur.execute(f"DELETE FROM memory WHERE namespace = {p} AND key = {p}", (namespace, key))
            return cur.rowcount > 0

    # -- tokens -----------------------------------------------------------------------------
    def token_create(
        self, name: str, *, scope: str = "run", project: str = tokens.DEFAULT_PROJECT
    ) -> tuple[TokenInfo, str]:
        """A new token: its record and the token itself (shown once, never stored)."""
        name, project = tokens.check_name(name), tokens.check_project(project)
        checked = tokens.check_scope(scope)
        token, salt = tokens.new_token(), os.urandom(16)
        info = TokenInfo(
            id="tok_" + os.urandom(6).hex(),
            name=name,
            scope=checked,
            project=project,
            created_at=utcnow(),
        )
        p = self._P
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO tokens (id, name, lookup, salt, hash, scope, project, created_at)"
                f" VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (name) DO NOTHING",
                (info.id, name, tokens.lookup_key(token), salt, tokens.digest(salt, token),
                 checked, project, _stored(info.created_at, self._TEXT_TIMES)),
            )  # fmt: skip
            if cur.rowcount == 0:
                raise ValidationError(
                    f"token name: {name!r} is taken; choose another name, or revoke it first "
                    "(`aesop token revoke NAME`; a revoked name stays taken)"
                )
        return info, token

    def token_revoke(self, name_or_id: str) -> TokenInfo:
        """Revoke a token by name or id (``NotFoundError`` if none); revoking twice is a no-op."""
        p = self._P
        with self._tx() as cur:
            cur.execute(
                f"UPDATE tokens SET revoked_at = {p}"
                f" WHERE (name = {p} OR id = {p}) AND revoked_at IS NULL",
                (_stored(utcnow(), self._TEXT_TIMES), name_or_id, name_or_id),
            )
        return self._token_named(name_or_id)

    def token_check(self, token: str) -> TokenInfo | None:
        """The live (not revoked) token ``token`` is, or None."""
        if not tokens.well_formed(token):
            return None
        rows = self._query(
            f"SELECT * FROM tokens WHERE lookup = {self._P} AND revoked_at IS NULL",
            (tokens.lookup_key(token),),
        )
        for row in rows:
            if tokens.matches(bytes(row["salt"]), bytes(row["hash"]), token):
                return token_info(row)
        return None

    def token_list(self) -> list[TokenInfo]:
        return [token_info(r) for r in self._query("SELECT * FROM tokens ORDER BY created_at")]

    def _token_named(self, name_or_id: str) -> TokenInfo:
        """The token with this name or id, revoked or not; ``NotFoundError`` if none."""
        p = self._P
        rows = self._query(
            f"SELECT * FROM tokens WHERE name = {p} OR id = {p}", (name_or_id, name_or_id)
        )
        if not rows:
            raise NotFoundError(f"no token {name_or_id!r}; list them with `aesop token list`")
        return token_info(rows[0])


# -- rows -----------------------------------------------------------------------------------


def _stored(at: datetime | None, text: bool) -> Any:
    """A time as the store keeps it: ISO 8601 text, or the datetime for a TIMESTAMPTZ."""
    return at.isoformat() if text and at is not None else at


def _when(value: str | datetime | None) -> datetime | None:
    """A stored time: ISO text (SQLite) parsed, a driver's datetime (PostgreSQL) as it is."""
    if isinstance(value, str):
        return datetime.fromisoformat(value) if value else None
    return value


def status_of(row: Row, alerts: list[Alert], *, with_result: bool = True) -> TaskStatus:
    """The :class:`TaskStatus` of an ``executions`` row."""
    return TaskStatus(
        id=row["id"],
        name=row["name"],
        state=TaskState(row["state"]),
        progress=row["progress"],
        current_action=row["current_action"],
        error=ErrorInfo.model_validate_json(row["error_json"]) if row["error_json"] else None,
        result=(
            TaskResult.model_validate_json(row["result_json"])
            if with_result and row["result_json"]
            else None
        ),
        created_at=_when(row["created_at"]) or utcnow(),
        started_at=_when(row["started_at"]),
        finished_at=_when(row["finished_at"]),
        parent_id=row["parent_id"],
        alerts=alerts,
    )


def token_info(row: Row) -> TokenInfo:
    """The :class:`TokenInfo` of a ``tokens`` row."""
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        scope=tokens.check_scope(row["scope"]),
        project=row["project"],
        created_at=_when(row["created_at"]) or utcnow(),
        revoked_at=_when(row["revoked_at"]),
    )


def _utc(at: datetime) -> datetime:
    """In UTC, as stored (so that ISO text order is time order); naive means UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _cursor(created_at: str | datetime, tie: int) -> str:
    """The next page's cursor: the last row's ``created_at`` (as ISO text) and tie-breaker."""
    at = created_at if isinstance(created_at, str) else _utc(created_at).isoformat()
    return base64.urlsafe_b64encode(f"{at}|{tie}".encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[str, int]:
    """``(created_at as ISO text, tie-breaker)`` of a cursor, or a ``ValidationError``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, tie = raw.rsplit("|", 1)
        datetime.fromisoformat(at)
        return at, int(tie)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(
            f"cursor: got {cursor[:80]!r}; pass the next_cursor of the previous page as it is"
        ) from None
