"""What the SQL stores (``sqlite.py``, ``postgres.py``) share: the reads and the row mapping.

The two stores read the same tables with the same SQL but for the placeholder (``?`` or
``%s``), how a time is kept (ISO text or ``TIMESTAMPTZ``), the column that breaks ties of
``created_at`` (``rowid`` or ``seq``) and a few words. :class:`SQLReads` holds those reads
once, built with the store's placeholder and run through the store's own ``_query``; each
store keeps what really differs: connections, transactions and locking, migrations, writes.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import ErrorInfo, NotFoundError, ValidationError
from ..execution import Alert, Event, TaskResult, TaskState, TaskStatus, utcnow
from . import lifecycle, tokens
from .tokens import TokenInfo

if TYPE_CHECKING:
    from collections.abc import Sequence


class Row(Protocol):
    """A result row by column name: ``sqlite3.Row`` or psycopg's ``dict_row``."""

    def __getitem__(self, key: str, /) -> Any: ...


_UNFINISHED = tuple(s.value for s in lifecycle.UNFINISHED)


class SQLReads:
    """The read side of a SQL store; the subclass sets the class variables and ``_query``."""

    _P: ClassVar[str]  # the driver's placeholder: "?" or "%s"
    _TIE: ClassVar[str]  # the column after created_at in the order of executions
    _TEXT_TIMES: ClassVar[bool]  # times are stored as ISO 8601 text (UTC), not timestamps
    _TRUE: ClassVar[str]  # a true cancel_requested, as the column's type spells it
    _KEY_ORDER: ClassVar[str]  # ORDER BY of memory keys: code point order on both

    if TYPE_CHECKING:

        def _query(self, sql: str, args: tuple[Any, ...] = ()) -> Sequence[Row]: ...

        def _place(self) -> str:
            """Where the store is, for a message: the data directory's name, or the URL."""
            ...

    def cancel_requests(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        marks = ",".join([self._P] * len(ids))
        rows = self._query(
            f"SELECT id FROM executions WHERE cancel_requested = {self._TRUE} AND id IN ({marks})",
            tuple(ids),
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

    # -- tokens -----------------------------------------------------------------------------
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
