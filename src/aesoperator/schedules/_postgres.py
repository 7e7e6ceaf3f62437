"""Schedules in the PostgreSQL store's database: its ``schedules`` table (migration 1).

The same SQL as on SQLite (:class:`~._store.BaseScheduleStore`), run in autocommit on a small
pool of the store's own kind (:func:`aesoperator.store.postgres.open_pool`: same URL, same
schema check). ``claim`` is one conditional UPDATE: under READ COMMITTED, a scheduler on
another machine that updates the same row at once waits for the first commit, re-reads the
row, finds ``next_run_at`` moved and changes nothing, so a fire time is taken exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._store import BaseScheduleStore

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

_POOL_SIZE = 2  # a scheduler's pass and the API's requests, one statement at a time each


class PostgresScheduleStore(BaseScheduleStore):
    """The ``schedules`` table of a PostgreSQL store; safe across threads, processes and
    machines."""

    def __init__(self, url: str) -> None:
        from ..store.postgres import open_pool, release_when_dropped

        self._pool: ConnectionPool[psycopg.Connection[Any]]
        self._pool, self.url = open_pool(url, max_size=_POOL_SIZE)
        self._release = release_when_dropped(self, self._pool)

    def __repr__(self) -> str:
        return f"PostgresScheduleStore({self.url!r})"

    def close(self) -> None:
        self._release.detach()
        self._pool.close()

    def _execute(self, sql: str, args: Sequence[Any]) -> int:
        with self._pool.connection() as conn:
            return conn.execute(sql.replace("?", "%s").encode(), args).rowcount

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]:
        from psycopg.rows import dict_row

        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.replace("?", "%s").encode(), args)
            return list(cur.fetchall())

    def _time(self, dt: datetime) -> datetime:
        return dt.astimezone(UTC)

    def _flag(self, value: bool) -> bool:
        return value
