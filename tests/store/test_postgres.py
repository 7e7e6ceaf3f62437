"""The PostgreSQL store beyond the contract: its URL, what a wrong one says, migrations, and
cancel requests and changes heard through LISTEN/NOTIFY. Against the session's real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from aesoperator import UserError
from aesoperator.execution import Alert, TaskState
from aesoperator.store import open_store
from aesoperator.store.base import AlertRecord, CurrentAction, Op, Progress
from aesoperator.store.memory import Memory
from aesoperator.store.postgres import EVENTS_CHANNEL, SCHEMA_VERSION, PostgresStore
from pgserver import PASSWORD, PgServer
from waiting import eventually


def _libpq(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query=""))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://u@db.example:port/aesop?artifacts=/x", "not a valid URL"),
        ("postgresql://u@db.example:99999/aesop?artifacts=/x", "not a valid URL"),
        ("postgresql://?artifacts=/x", "no host and no database"),
        ("postgresql://u:pw@db.example/aesop", "no artifacts directory; add ?artifacts="),
        ("postgres://u:pw@db.example/aesop?artifacts=rel/dir", "artifacts='rel/dir' is relative"),
        ("postgresql://u@db.example/aesop?artifacts=/x&pool_size=0", "pool_size='0'"),
    ],
)
def test_a_malformed_url_says_what_to_change_without_connecting(url: str, says: str) -> None:
    with pytest.raises(UserError, match="store") as info:
        open_store(url)
    assert says in str(info.value)
    assert ":pw@" not in str(info.value)  # a password is never quoted back


def test_an_unreachable_server_names_host_and_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://aesop:{PASSWORD}@127.0.0.1:{port}/x?artifacts={tmp_path}"
    with pytest.raises(UserError, match=f"cannot reach PostgreSQL at 127.0.0.1:{port}") as info:
        open_store(url)
    assert PASSWORD not in str(info.value)


def test_wrong_credentials_a_missing_database_and_user_are_named(
    postgres: PgServer, tmp_path: Path
) -> None:
    tail = f"?artifacts={tmp_path}"
    cases = [
        (postgres.url("postgres", password="wrong") + tail, "wrong user or password for user"),
        (postgres.url("nowhere") + tail, "database 'nowhere' does not exist on 127.0.0.1:"),
        (postgres.url("postgres", user="ghost") + tail, "user 'ghost'"),
    ]
    for url, says in cases:
        with pytest.raises(UserError) as info:
            open_store(url)
        assert says in str(info.value)
        assert "wrong@" not in str(info.value) and PASSWORD not in str(info.value)


def test_libpq_parameters_pass_through_and_artifacts_are_shared(
    postgres_url: Callable[[], str], tmp_path: Path
) -> None:
    url = postgres_url() + "&connect_timeout=5&application_name=aesop-test&pool_size=2"
    a, b = open_store(url), open_store(url.replace("postgresql://", "postgres://"))
    try:
        assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
        assert a.artifacts_dir("e1") == b.artifacts_dir("e1") == tmp_path / "artifacts" / "e1"
        Memory(a, "global").set("k", {"v": 1})
        assert Memory(b, "global").get("k") == {"v": 1}
    finally:
        a.close()
        b.close()


def test_migrations_are_recorded_and_run_once_by_processes_starting_together(
    postgres_url: Callable[[], str],
) -> None:
    url = postgres_url()
    stores: list[object] = []
    errors: list[BaseException] = []
    go = threading.Barrier(4)

    def start() -> None:
        go.wait()
        try:
            stores.append(open_store(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 4
    for s in stores:
        assert isinstance(s, PostgresStore)
        s.close()
    with psycopg.connect(_libpq(url)) as conn:
        rows = conn.execute("SELECT version, package_version FROM schema_version").fetchall()
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert all(r[1] for r in rows)


def test_a_database_of_a_newer_version_is_refused_and_left_as_it_is(
    postgres_url: Callable[[], str],
) -> None:
    url = postgres_url()
    open_store(url).close()
    newer = SCHEMA_VERSION + 5
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, package_version) VALUES (%s, '9.9.9')", (newer,)
        )
    with pytest.raises(UserError) as info:
        open_store(url)
    message = str(info.value)
    assert f"schema version {newer}, written by aesoperator 9.9.9" in message
    assert f"knows schema versions up to {SCHEMA_VERSION}" in message
    assert "Upgrade aesoperator" in message
    with psycopg.connect(_libpq(url)) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version").fetchall()]
    assert max(versions) == newer


def test_wait_cancel_hears_a_cancel_from_another_store_object(
    postgres_url: Callable[[], str],
) -> None:
    url = postgres_url()
    owner, canceller = open_store(url), open_store(url)
    assert isinstance(owner, PostgresStore)
    try:
        owner.create("w1", "job", json.dumps({}), "me")
        owner.transition("w1", TaskState.RUNNING)
        assert owner.wait_cancel(["w1"], timeout=0.2) == []  # nothing yet: the time runs out
        heard: list[list[str]] = []
        waiter = threading.Thread(target=lambda: heard.append(owner.wait_cancel(["w1"], 60)))
        waiter.start()
        assert canceller.request_cancel("w1") is True
        waiter.join(timeout=60)
        assert heard == [["w1"]]
        assert owner.wait_cancel(["w1", "other"], timeout=60) == ["w1"]  # already: at once
    finally:
        owner.close()
        canceller.close()


# -- change notifications (LISTEN/NOTIFY on aesop_events) ---------------------------------------


class _Heard:
    """What a listener's function was called with, in order (it runs on the listener thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, execution_id: str) -> None:
        with self._lock:
            self.calls.append((kind, execution_id))

    def of(self, execution_id: str) -> list[str]:
        with self._lock:
            return [k for k, e in self.calls if e == execution_id]


@pytest.fixture
def two_stores(postgres_url: Callable[[], str]) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    url = postgres_url()
    a, b = open_store(url), open_store(url)
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    yield a, b
    a.close()
    b.close()


def test_a_listener_hears_what_another_store_object_commits(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    watcher, writer = two_stores
    heard = _Heard()
    listener = watcher.listen(heard)
    try:
        writer.create("n1", "job", "{}", "me")
        eventually(lambda: heard.of("n1") == ["state"], what="the creation")
        writer.transition("n1", TaskState.RUNNING)
        writer.apply([Progress("n1", 10.0), CurrentAction("n1", "fetch a")])
        writer.apply([AlertRecord("n1", Alert(kind="t", message="m"))])
        assert writer.request_cancel("n1") is True
        want = ["state", "state", "progress", "alert", "cancel"]
        eventually(lambda: heard.of("n1") == want, what="every kind, in commit order")
        writer.transition("n1", TaskState.COMPLETED)  # ends cancelled: still a state change
        eventually(lambda: heard.of("n1") == [*want, "state"], what="the end")
        assert writer.status("n1").state is TaskState.CANCELLED
    finally:
        listener.close()


def test_a_cancels_only_listener_hears_cancels_and_nothing_else(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    """What a Temporal worker listens with: every other change of every execution would
    wake it for nothing."""
    watcher, writer = two_stores
    heard = _Heard()
    listener = watcher.listen(heard, cancels_only=True)
    try:
        writer.create("c1", "job", "{}", "me")
        writer.transition("c1", TaskState.RUNNING)
        writer.apply([Progress("c1", 10.0), AlertRecord("c1", Alert(kind="t", message="m"))])
        assert writer.request_cancel("c1") is True
        eventually(lambda: heard.of("c1") == ["cancel"], what="the cancel")
        writer.transition("c1", TaskState.COMPLETED)  # ends cancelled: a state change
        writer.create("c2", "job", "{}", "me")
        assert writer.request_cancel("c2") is True  # the marker that everything was sent
        eventually(lambda: heard.of("c2") == ["cancel"], what="the second cancel")
        assert heard.of("c1") == ["cancel"]
    finally:
        listener.close()


def test_a_batch_notifies_once_per_kind_and_execution_and_only_when_committed(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    watcher, writer = two_stores
    for eid in ("b1", "b2"):
        writer.create(eid, "job", "{}", "me")
        writer.transition(eid, TaskState.RUNNING)
    heard = _Heard()
    listener = watcher.listen(heard)
    try:
        ops: list[Op] = [Progress("b1", float(i)) for i in range(50)]
        ops += [CurrentAction("b1", "x"), Progress("b2", 1.0)]
        writer.apply(ops)
        writer.apply([Progress("nobody", 5.0)])  # nothing changed: nothing said
        # A transaction rolled back says nothing either.
        with pytest.raises(RuntimeError), writer._tx() as cur:
            writer._changed(cur, "alert", "b1")
            raise RuntimeError("rolled back")
        writer.create("b3", "job", "{}", "me")  # the marker that everything before was sent
        eventually(lambda: heard.of("b3") == ["state"], what="the marker")
        assert (heard.of("b1"), heard.of("b2"), heard.of("nobody")) == (
            ["progress"],
            ["progress"],
            [],
        )
    finally:
        listener.close()


def test_close_ends_the_thread_and_a_failing_function_does_not(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    watcher, writer = two_stores
    heard = _Heard()

    def flaky(kind: str, execution_id: str) -> None:
        heard(kind, execution_id)
        raise ValueError("the caller's bug")

    before = set(threading.enumerate())
    listener = watcher.listen(flaky)
    (thread,) = set(threading.enumerate()) - before
    writer.create("c1", "job", "{}", "me")
    writer.create("c2", "job", "{}", "me")
    eventually(lambda: heard.of("c2") == ["state"], what="a call after a failing one")
    listener.close()
    thread.join(timeout=10)  # bounds a failing test only
    assert not thread.is_alive()
    writer.create("c3", "job", "{}", "me")
    assert heard.of("c3") == []


def test_a_listener_whose_connection_is_killed_reconnects_and_asks_for_a_resync(
    two_stores: tuple[PostgresStore, PostgresStore], postgres_url: Callable[[], str]
) -> None:
    watcher, writer = two_stores
    heard = _Heard()
    listener = watcher.listen(heard)
    try:
        writer.create("r1", "job", "{}", "me")
        eventually(lambda: heard.of("r1") == ["state"], what="before the kill")

        def listening_pids() -> list[int]:
            rows = writer._query(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE %s AND pid <> pg_backend_pid()",
                (f"LISTEN {EVENTS_CHANNEL}%",),
            )
            return [int(r["pid"]) for r in rows]

        (pid,) = listening_pids()
        writer._query("SELECT pg_terminate_backend(%s)", (pid,))
        eventually(lambda: ("resync", "") in heard.calls, what="a resync after the reconnect")
        eventually(lambda: listening_pids() not in ([], [pid]), what="another backend listens")
        writer.create("r2", "job", "{}", "me")
        eventually(lambda: heard.of("r2") == ["state"], what="after the reconnect")
    finally:
        listener.close()


def test_the_sqlite_store_does_not_listen(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        assert store.listen(lambda kind, eid: None) is None
    finally:
        store.close()
