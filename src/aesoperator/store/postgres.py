"""The PostgreSQL store: one database many machines share, artifacts on a shared directory.

``postgresql://user:password@host:5432/db?artifacts=/shared/aesop`` (or ``postgres://``):
the URL is libpq's, plus ``artifacts`` (required: a directory every worker mounts) and
``pool_size`` (connections per store object, default 4). Other query parameters go to libpq
(``sslmode``, ``connect_timeout``, ...).

Synchronous, like the :class:`~aesoperator.store.base.Store` protocol: a
``psycopg_pool.ConnectionPool`` of psycopg 3 connections. A read-decide-write runs in one
transaction with the execution's row locked (``SELECT ... FOR UPDATE``), so what
:func:`aesoperator.store.lifecycle.decide` sees cannot change before its outcome is written,
whichever machine writes. The schema is versioned (``schema_version``), migrated forward
under an advisory lock, each migration in its own transaction; a database a newer version of
the package wrote is refused.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ..errors import TaskCancelled, UserError
from ..execution import TaskState, utcnow
from . import lifecycle
from ._sql import Cursor, SQLStore
from .base import Op
from .lifecycle import SESSION_PREFIX

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    from .base import Listener

log = logging.getLogger("aesoperator.store")

# Forward-only: entry ``n`` takes a database at schema version ``n`` to ``n + 1``, in its own
# transaction, recorded in ``schema_version`` with the package version that applied it.
_MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: everything the SQLite store has at its version 1, and schedules.
    """
    CREATE TABLE executions (
        seq BIGSERIAL UNIQUE,
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        task_json TEXT NOT NULL,
        state TEXT NOT NULL,
        progress DOUBLE PRECISION NOT NULL DEFAULT 0,
        current_action TEXT,
        error_json TEXT,
        result_json TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        parent_id TEXT,
        owner TEXT,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        project TEXT NOT NULL DEFAULT 'default'
    );
    CREATE INDEX executions_state ON executions(state);
    CREATE INDEX executions_created ON executions(created_at, seq);
    CREATE INDEX executions_project_created ON executions(project, created_at, seq);
    CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY,
        execution_id TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        kind TEXT NOT NULL,
        data_json TEXT NOT NULL
    );
    CREATE INDEX events_execution ON events(execution_id, seq);
    CREATE TABLE alerts (
        seq BIGSERIAL PRIMARY KEY,
        execution_id TEXT NOT NULL,
        data_json TEXT NOT NULL
    );
    CREATE INDEX alerts_execution ON alerts(execution_id, seq);
    CREATE TABLE memory (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value_json TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (namespace, key)
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        lookup TEXT NOT NULL,
        salt BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        scope TEXT NOT NULL,
        project TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        revoked_at TIMESTAMPTZ
    );
    CREATE INDEX tokens_lookup ON tokens(lookup);
    CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL DEFAULT 'default',
        cron TEXT NOT NULL,
        task_json TEXT NOT NULL,
        allow_overlap BOOLEAN NOT NULL DEFAULT FALSE,
        next_run_at TIMESTAMPTZ NOT NULL,
        last_run_at TIMESTAMPTZ,
        last_execution_id TEXT,
        missed INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX schedules_next ON schedules(next_run_at);
    """,
    # 1 -> 2: durable step results (a retried activity replays them), rows of their execution.
    """
    CREATE TABLE steps (
        execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value_json TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (execution_id, key)
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
_MIGRATION_LOCK = 0x4145_534F_505F_4D47  # pg_advisory_lock key: "AESOP_MG"
CANCEL_CHANNEL = "aesop_cancel"  # NOTIFY'd with the execution id when a cancel is accepted
# NOTIFY'd with "<kind> <execution id>" when a transaction that changed an execution commits:
# kind is progress (progress or current action), alert, state (created or moved) or cancel.
EVENTS_CHANNEL = "aesop_events"
_TERMINAL = [s.value for s in lifecycle.TERMINAL]
_OURS = ("artifacts", "pool_size")  # query parameters of ours, not libpq's


def _package_version() -> str:
    try:
        return metadata.version("aesoperator")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _need_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise UserError(
            "store postgresql://: psycopg is not installed; pip install 'aesoperator[postgresql]'"
        ) from None


def _shown(url: str) -> str:
    """``url`` with its password masked: what error messages quote."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def parse_url(url: str) -> tuple[str, Path, int]:
    """``(libpq URL, artifacts directory, pool size)`` of a ``postgresql://`` store URL."""
    shown = _shown(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UserError(
            f"store {shown!r}: not a valid URL ({exc}); "
            "use postgresql://user:password@host:5432/dbname?artifacts=/shared/dir"
        ) from None
    if not parts.hostname and not parts.path.strip("/"):
        raise UserError(
            f"store {shown!r}: no host and no database; "
            "use postgresql://user:password@host:5432/dbname?artifacts=/shared/dir"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OURS}
    artifacts = ours.get("artifacts", "")
    if not artifacts:
        raise UserError(
            f"store {shown!r}: no artifacts directory; add ?artifacts=/path/every/worker/mounts "
            "(the files of each execution are kept there, outside the database)"
        )
    path = Path(unquote(artifacts)).expanduser()
    if not path.is_absolute():
        raise UserError(
            f"store {shown!r}: artifacts={artifacts!r} is relative; give an absolute path of a "
            "directory every worker mounts"
        )
    pool = ours.get("pool_size", "4")
    if not pool.isdigit() or not 1 <= int(pool) <= 100:
        raise UserError(f"store {shown!r}: pool_size={pool!r}; use a whole number from 1 to 100")
    rest = urlencode([(k, v) for k, v in query if k not in _OURS], quote_via=quote)
    libpq = urlunsplit(parts._replace(scheme="postgresql", query=rest))
    return libpq, path, int(pool)


def open_postgres(url: str) -> PostgresStore:
    """The store at a ``postgresql://`` URL, or a ``UserError`` that says what to change."""
    _need_psycopg()
    libpq, artifacts, pool_size = parse_url(url)
    return PostgresStore(libpq, artifacts, pool_size=pool_size, shown=_shown(url))


def open_pool(
    url: str, *, max_size: int | None = None
) -> tuple[ConnectionPool[psycopg.Connection[Any]], str]:
    """A pool of connections to the database of a ``postgresql://`` store URL, its schema
    migrated (or refused) as :class:`PostgresStore` does, and the URL as messages show it.

    For what is kept in the store's database beside the store (schedules): the same URL,
    settings and errors. Connections are in autocommit, their time zone UTC; ``max_size``
    defaults to the URL's ``pool_size``.
    """
    _need_psycopg()
    libpq, _, pool_size = parse_url(url)
    shown = _shown(url)
    return _migrated_pool(libpq, shown, max_size or pool_size), shown


def _migrated_pool(libpq: str, shown: str, size: int) -> ConnectionPool[psycopg.Connection[Any]]:
    import psycopg
    from psycopg_pool import ConnectionPool

    # A server that never answers must not hang the caller: libpq's connect timeout, unless
    # the URL sets its own.
    kwargs: dict[str, Any] = {"autocommit": True, "options": "-c timezone=UTC"}
    if "connect_timeout" not in libpq:
        kwargs["connect_timeout"] = 10
    try:
        with psycopg.connect(libpq, **kwargs) as conn:
            migrate(conn, shown)
    except psycopg.OperationalError as exc:
        raise _connect_error(shown, libpq, exc) from None
    except psycopg.ProgrammingError as exc:  # libpq could not parse the URL
        raise UserError(f"store {shown!r}: not a valid PostgreSQL URL ({exc})") from None
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        libpq, min_size=1, max_size=size, kwargs=kwargs, open=True, name="aesop"
    )
    return pool


def _connect_error(shown: str, libpq: str, exc: Exception) -> UserError:
    """What a failed connection means, naming what to change (never the password)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(libpq)
    except Exception:  # only for the message
        info = {}
    host, port = info.get("host", "localhost"), info.get("port", "5432")
    user, db = info.get("user", "(the login name)"), info.get("dbname", "(the user name)")
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text or type(exc).__name__
    if "password" in text and ("authentication failed" in text or "no password" in text):
        fix = f"wrong user or password for user {user!r}; fix them in the URL"
    elif "does not exist" in text and "database" in text:
        fix = f"database {db!r} does not exist on {host}:{port}; create it (createdb {db}) first"
    elif "role" in text and "does not exist" in text:
        fix = f"user {user!r} does not exist on {host}:{port}; use an existing user"
    elif "resolve host" in text or "translate host name" in text:
        fix = f"host {host!r} does not resolve; check the host name in the URL"
    elif "SSL negotiation" in text:
        fix = f"what answers at {host}:{port} is not PostgreSQL; check the host and port"
    elif any(w in text.lower() for w in ("timeout", "refused", "could not", "unreachable")):
        fix = (
            f"cannot reach PostgreSQL at {host}:{port}; check the host and port, and that the "
            "server runs and accepts TCP connections from here"
        )
    else:
        fix = "check the URL"
    return UserError(f"store {shown!r}: {fix} ({text})")


class PostgresStore(SQLStore):
    """PostgreSQL-backed persistence; safe across threads, processes and machines."""

    _P, _TIE, _TEXT_TIMES, _TRUE, _KEY_ORDER = "%s", "seq", False, "TRUE", 'key COLLATE "C"'
    _MAX, _LOCK_ROW, _SAVEPOINTS = "GREATEST", " FOR UPDATE", True

    def __init__(
        self, libpq: str, artifacts: Path, *, pool_size: int = 4, shown: str | None = None
    ) -> None:
        self.url = shown or _shown(libpq)
        self.artifacts = artifacts
        self._local = threading.local()  # .in_tx: this thread is inside one of our transactions
        self._libpq = libpq
        self._pool = _migrated_pool(libpq, self.url, pool_size)
        # Dropped without close(): a client never closed, or closed while handles still read
        # through it.
        self._release = release_when_dropped(self, self._pool)

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    def _place(self) -> str:
        return self.url

    def _lock_batch(self, cur: Cursor, ops: Sequence[Op]) -> None:
        # Lock the rows of every execution the batch writes, in one order (no deadlock
        # between two batches): its events then get their seq in commit order, so a
        # reader following a timeline with ``after=`` never skips one committed late.
        touched = sorted({op.execution_id for op in ops})
        cur.execute(
            "SELECT id FROM executions WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (touched,)
        )

    def _end_session(self, cur: Cursor, namespace: str) -> None:
        # In the same transaction: the end and the clearing.
        cur.execute("DELETE FROM memory WHERE namespace = %s", (namespace,))

    def artifacts_dir(self, execution_id: str) -> Path:
        return self.artifacts / execution_id

    def close(self) -> None:
        self._release.detach()
        self._pool.close()

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        if getattr(self._local, "in_tx", False):
            # Another connection of the pool would wait on the lock this transaction holds.
            raise UserError(
                "memory.update: the function wrote memory itself; it must only compute "
                "the new value from the old one and return it"
            )
        self._local.in_tx = True
        notes: dict[str, None] = {}  # an ordered set
        self._local.notes = notes
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
                if notes:  # delivered by the server when (and only if) the transaction commits
                    cur.execute(
                        "SELECT pg_notify(%s, n) FROM unnest(%s::text[]) AS n",
                        (EVENTS_CHANNEL, list(notes)),
                    )
        finally:
            self._local.in_tx = False
            self._local.notes = {}

    def _changed(self, cur: Cursor, kind: str, execution_id: str) -> None:
        # Once per (kind, id) a transaction: a batch of 50 progress ops is one notification.
        self._local.notes[f"{kind} {execution_id}"] = None

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    # -- batched writes ---------------------------------------------------------------------
    # -- executions -------------------------------------------------------------------------
    def request_cancel(self, execution_id: str) -> bool:
        """Accept a cancel: True if the execution had not ended (its row locked meanwhile).

        Listeners of ``CANCEL_CHANNEL`` hear the execution id when the acceptance commits.
        """
        with self._tx() as cur:
            row = cur.execute(
                "SELECT state FROM executions WHERE id = %s FOR UPDATE", (execution_id,)
            ).fetchone()
            if row is None or not lifecycle.cancel_accepted(TaskState(row[0])):
                return False
            cur.execute(
                "UPDATE executions SET cancel_requested = TRUE WHERE id = %s", (execution_id,)
            )
            cur.execute("SELECT pg_notify(%s, %s)", (CANCEL_CHANNEL, execution_id))
            self._changed(cur, "cancel", execution_id)
            return True

    def listen(self, fn: Callable[[str, str], None], *, cancels_only: bool = False) -> Listener:
        """Call ``fn(kind, execution_id)`` for every change committed by any process (see
        ``EVENTS_CHANNEL``), from a daemon thread, until the listener is closed;
        ``cancels_only``: for accepted cancels only (``CANCEL_CHANNEL``), so that a worker
        that needs nothing else is not woken by every change of every execution.

        One connection of its own, LISTENing before this returns: whatever commits afterwards
        is heard. If the connection drops, it reconnects (backing off up to a few seconds) and
        calls ``fn("resync", "")``: what changed meanwhile was not heard, so re-read it. An
        exception in ``fn`` is logged and listening goes on.
        """
        import psycopg

        listener = _Listener(self._libpq, fn, CANCEL_CHANNEL if cancels_only else EVENTS_CHANNEL)
        try:
            listener.start()
        except psycopg.OperationalError as exc:
            raise _connect_error(self.url, self._libpq, exc) from None
        return listener

    def wait_cancel(self, ids: list[str], timeout: float) -> list[str]:
        """Those of ``ids`` with a cancel request, waiting up to ``timeout`` s for one.

        LISTEN/NOTIFY, not a polling loop: returns as soon as a cancel of one of ``ids`` is
        committed by any process (or at once if one already was); [] when the time is up.
        """
        import psycopg

        wanted = set(ids)
        with psycopg.connect(self._libpq, autocommit=True) as conn:
            conn.execute(f"LISTEN {CANCEL_CHANNEL}")
            # Listening first, then reading: a cancel committed in between is seen either way.
            already = self.cancel_requests(list(wanted))
            if already:
                return already
            for note in conn.notifies(timeout=timeout):
                if note.payload in wanted:
                    return self.cancel_requests(list(wanted))
        return []

    def clear_ended_sessions(self) -> None:
        """Clear session memory of ended executions (an end clears its own in its transaction,
        so only a crash of an older version could leave some)."""
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM memory WHERE starts_with(namespace, %s)"
                " AND substr(namespace, %s) IN (SELECT id FROM executions WHERE state = ANY(%s))",
                (SESSION_PREFIX, len(SESSION_PREFIX) + 1, _TERMINAL),
            )

    # -- memory -----------------------------------------------------------------------------
    def mem_set(self, namespace: str, key: str, value_json: str) -> None:
        with self._tx() as cur:
            _upsert(cur, namespace, key, value_json)

    def mem_update(self, namespace: str, key: str, fn: Callable[[str | None], str]) -> None:
        """Read, compute and write one key with the key locked (a transaction-scoped advisory
        lock, which also covers a key not written yet): no update is lost, whoever runs it."""
        with self._tx() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (namespace, key)
            )
            row = cur.execute(
                "SELECT value_json FROM memory WHERE namespace = %s AND key = %s", (namespace, key)
            ).fetchone()
            _upsert(cur, namespace, key, fn(row[0] if row else None))

    def mem_clear(self, namespace: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM memory WHERE namespace = %s", (namespace,))

    # -- tokens -----------------------------------------------------------------------------


def release_when_dropped(owner: object, pool: Any) -> weakref.finalize[Any, Any]:
    """Close ``pool`` once ``owner`` is collected without having closed it (``owner``'s
    close() detaches the returned finalizer), from a thread of its own: the collection may
    run on one of the pool's threads, and psycopg_pool's own cleanup, which then joins that
    thread from itself, fails."""
    release = weakref.finalize(owner, _close_in_background, pool)
    release.atexit = False  # at exit the process takes the connections with it
    return release


def _close_in_background(pool: Any) -> None:
    threading.Thread(target=pool.close, name="aesop-pool-close", daemon=True).start()


class _Listener:
    """A connection LISTENing on ``EVENTS_CHANNEL`` (or ``CANCEL_CHANNEL``) and the thread
    that reads it."""

    _POLL = 0.2  # how often the thread looks at the stop flag (close() waits at most this)
    _BACKOFF = (0.05, 0.2, 0.5, 1.0, 2.0)  # seconds between attempts to reconnect

    def __init__(self, libpq: str, fn: Callable[[str, str], None], channel: str) -> None:
        self._libpq = libpq
        self._fn = fn
        self._channel = channel
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="aesop-listen", daemon=True)

    def start(self) -> None:
        self._conn = self._connect()  # here, not in the thread: a caller may read right after
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._POLL * 5)

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self._libpq:
            kwargs["connect_timeout"] = 10
        if "keepalives" not in self._libpq:  # a peer gone without a word is noticed too
            kwargs.update(keepalives=1, keepalives_idle=10, keepalives_interval=5)
            kwargs["keepalives_count"] = 3
        conn = psycopg.connect(self._libpq, **kwargs)
        try:
            conn.execute(f"LISTEN {self._channel}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _call(self, kind: str, execution_id: str) -> None:
        try:
            self._fn(kind, execution_id)
        except Exception:
            log.exception("store listener: the function failed on %s %s", kind, execution_id)

    def _run(self) -> None:
        import psycopg

        conn, failures = self._conn, 0
        while not self._stop.is_set():
            if conn is None:
                try:
                    conn = self._connect()
                except psycopg.Error as exc:
                    delay = self._BACKOFF[min(failures, len(self._BACKOFF) - 1)]
                    failures += 1
                    log.warning("store listener: reconnecting in %gs (%s)", delay, exc)
                    self._stop.wait(delay)
                    continue
                failures = 0
                self._call("resync", "")
            try:
                for note in conn.notifies(timeout=self._POLL):
                    if note.channel == CANCEL_CHANNEL:  # its payload is the id alone
                        kind, execution_id = "cancel", note.payload
                    else:
                        kind, _, execution_id = note.payload.partition(" ")
                    self._call(kind, execution_id)
                    if self._stop.is_set():
                        break
            except psycopg.Error as exc:
                log.warning("store listener: connection lost (%s)", exc)
                conn.close()
                conn = None
        if conn is not None:
            conn.close()


# -- migrations ---------------------------------------------------------------------------------


def migrate(conn: psycopg.Connection[Any], shown: str) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; refuse one a newer package wrote. Returns the
    version found. Under a session advisory lock: processes starting at once take turns."""
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
            " package_version TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        row = conn.execute(
            "SELECT version, package_version FROM schema_version ORDER BY version DESC LIMIT 1"
        ).fetchone()
        found, by = (int(row[0]), str(row[1])) if row else (0, "")
        if found > SCHEMA_VERSION:
            raise UserError(
                f"store {shown!r}: the database has schema version {found}, written by "
                f"aesoperator {by}; this is aesoperator {_package_version()}, which knows "
                f"schema versions up to {SCHEMA_VERSION}. Upgrade aesoperator on this machine "
                "(pip install -U 'aesoperator[postgresql]') to the version the others run"
            )
        for version in range(found, SCHEMA_VERSION):
            with conn.transaction():
                conn.execute(_MIGRATIONS[version].encode())
                conn.execute(
                    "INSERT INTO schema_version (version, package_version) VALUES (%s, %s)",
                    (version + 1, _package_version()),
                )
        return found
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


# -- rows ---------------------------------------------------------------------------------------


def _upsert(cur: psycopg.Cursor[Any], namespace: str, key: str, value_json: str) -> None:
    owner = lifecycle.session_execution(namespace)
    if owner is not None:
        # Locked against the end of the execution: either this write commits first and the
        # end clears it, or the end does and this write sees it and is refused.
        row = cur.execute(
            "SELECT state FROM executions WHERE id = %s FOR SHARE", (owner,)
        ).fetchone()
        if row is not None and TaskState(row[0]).finished:
            raise TaskCancelled(
                f"memory key {key!r}: execution {owner} has ended; its session memory was "
                "cleared with it and takes no more writes"
            )
    cur.execute(
        "INSERT INTO memory (namespace, key, value_json, updated_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (namespace, key) DO UPDATE SET value_json = excluded.value_json,"
        " updated_at = excluded.updated_at",
        (namespace, key, value_json, utcnow()),
    )
