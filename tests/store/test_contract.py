"""The store contract: what every implementation of ``aesoperator.store.base.Store`` must do.

Each test runs against every entry of ``STORES``; a new store (PostgreSQL) is one more entry
whose ``url`` gives a fresh, empty store that ``open_store`` opens — in this process and in
the child processes of the concurrency test.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from aesoperator.errors import NotFoundError, TaskCancelled, ValidationError, to_info
from aesoperator.execution import TRANSITIONS, Alert, TaskResult, TaskState
from aesoperator.store import Store, open_store
from aesoperator.store.base import (
    AlertRecord,
    Create,
    CurrentAction,
    EventRecord,
    Progress,
    Transition,
)
from aesoperator.store.lifecycle import TERMINAL, IllegalTransition, recover, session_namespace
from aesoperator.store.memory import Memory


@dataclass(frozen=True)
class Backend:
    name: str
    # a fresh, empty store under the test's tmp_path (the request: for a server fixture)
    url: Callable[[Path, pytest.FixtureRequest], str]


STORES = [
    # sqlite:// + an absolute path: sqlite:///tmp/...
    Backend("sqlite-dir", lambda tmp, _: f"sqlite://{tmp / 'data'}"),
    Backend("sqlite-file", lambda tmp, _: f"sqlite://{tmp / 'db' / 'aesop.sqlite3'}"),
    # A new database on the session's real server (tests/conftest.py's postgres fixture).
    Backend("postgresql", lambda _, request: request.getfixturevalue("postgres_url")()),
]

ENDS = [s for s in TaskState if s.finished]
_ids = itertools.count()


@pytest.fixture(params=STORES, ids=lambda b: b.name)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend: Backend = request.param
    return backend.url(tmp_path, request)


@pytest.fixture
def opened(url: str) -> Iterator[Callable[[], Store]]:
    """Open another store object on the same URL (closed after the test)."""
    stores: list[Store] = []

    def open_one() -> Store:
        stores.append(open_store(url))
        return stores[-1]

    yield open_one
    for store in stores:
        store.close()


@pytest.fixture
def store(opened: Callable[[], Store]) -> Store:
    return opened()


def new(store: Store, state: TaskState = TaskState.PENDING, name: str = "job") -> str:
    """A new execution in ``state`` (reached by legal moves)."""
    eid = f"e{next(_ids)}"
    store.create(eid, name, json.dumps({"name": name}), "owner-a")
    if state is not TaskState.PENDING:
        store.transition(eid, TaskState.RUNNING, owner="owner-a")
    if state.finished:
        store.transition(eid, state)
    return eid


def state_of(store: Store, eid: str) -> TaskState:
    return store.status(eid, with_alerts=False).state


# -- lifecycle --------------------------------------------------------------------------------


def test_create_then_the_legal_path(store: Store) -> None:
    eid = new(store, name="fetch")
    status = store.status(eid)
    assert (status.state, status.name, status.progress, status.started_at) == (
        TaskState.PENDING, "fetch", 0, None
    )  # fmt: skip
    assert store.task_json(eid) == '{"name": "fetch"}'
    assert (eid, "owner-a") in store.unfinished()

    assert store.transition(eid, TaskState.RUNNING, owner="owner-b")
    assert dict(store.unfinished())[eid] == "owner-b"
    assert store.status(eid).started_at is not None
    result = TaskResult(execution_id=eid, task_name="fetch", planner="handler:x", content="done")
    assert store.transition(eid, TaskState.COMPLETED, result=result)
    status = store.status(eid)
    assert status.state is TaskState.COMPLETED
    assert status.progress == 100 and status.current_action is None
    assert status.finished_at is not None and status.result is not None
    assert status.result.content == "done"
    assert eid not in dict(store.unfinished())
    states = [e.data["state"] for e in store.events(eid) if e.kind == "state"]
    assert states == ["running", "completed"]


@pytest.mark.parametrize("current", [TaskState.PENDING, TaskState.RUNNING])
def test_every_illegal_transition_raises(store: Store, current: TaskState) -> None:
    for target in TaskState:
        if target in TRANSITIONS[current]:
            continue
        eid = new(store, current)
        before = store.events(eid)
        with pytest.raises(IllegalTransition, match=f"{current} -> {target}"):
            store.transition(eid, target)
        assert isinstance(IllegalTransition(), RuntimeError)
        assert state_of(store, eid) is current
        assert store.events(eid) == before


def test_unknown_executions_are_not_found(store: Store) -> None:
    for call in (
        lambda: store.transition("nope", TaskState.RUNNING),
        lambda: store.status("nope"),
        lambda: store.task_json("nope"),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert store.request_cancel("nope") is False
    assert store.apply([Transition("nope", TaskState.RUNNING)]) == {}


@pytest.mark.parametrize("end", ENDS)
def test_terminal_states_never_change(store: Store, end: TaskState) -> None:
    eid = new(store, end)
    finished = store.status(eid)
    events = store.events(eid)
    for target in TaskState:
        assert store.transition(eid, target) is False
    assert store.apply([Transition(eid, s) for s in TaskState]) == {}
    store.apply([Progress(eid, 99.0), CurrentAction(eid, "late")])
    assert store.request_cancel(eid) is False
    assert store.status(eid) == finished
    assert store.events(eid) == events


def test_a_batch_skips_a_refused_transition_and_applies_the_rest(store: Store) -> None:
    a, b = new(store), new(store)
    ended = store.apply(
        [
            Transition(a, TaskState.COMPLETED),  # pending -> completed: refused, skipped
            Transition(b, TaskState.RUNNING, owner="w"),
            Transition(b, TaskState.FAILED, error=to_info(RuntimeError("boom"))),
        ]
    )
    assert ended == {b: TaskState.FAILED}
    assert state_of(store, a) is TaskState.PENDING
    failed = store.status(b)
    assert failed.error is not None and "boom" in failed.error.message


def test_progress_never_decreases_and_moves_only_while_running(store: Store) -> None:
    eid = new(store)
    store.apply([Progress(eid, 30.0)])  # pending: not yet
    assert store.status(eid).progress == 0
    store.transition(eid, TaskState.RUNNING)
    store.apply([Progress(eid, 50.0), Progress(eid, 20.0), CurrentAction(eid, "reading")])
    store.apply([Progress(eid, 40.0)])
    status = store.status(eid)
    assert (status.progress, status.current_action) == (50.0, "reading")
    store.apply([CurrentAction(eid, None), Progress(eid, 70.0)])
    status = store.status(eid)
    assert (status.progress, status.current_action) == (70.0, None)
    store.transition(eid, TaskState.FAILED)
    store.apply([Progress(eid, 90.0)])
    assert store.status(eid).progress == 70.0  # a failure keeps how far it got


def test_events_are_ordered_per_execution(store: Store) -> None:
    a, b = new(store, TaskState.RUNNING), new(store, TaskState.RUNNING)
    for batch in range(3):
        store.apply(
            [EventRecord(eid, "log", {"n": batch * 10 + i}) for i in range(5) for eid in (a, b)]
        )
    for eid in (a, b):
        logs = [e for e in store.events(eid) if e.kind == "log"]
        assert [e.data["n"] for e in logs] == [b * 10 + i for b in range(3) for i in range(5)]
        assert all(e.execution_id == eid for e in logs)
        seqs = [e.seq for e in store.events(eid)]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        later = store.events(eid, after=logs[6].seq)
        assert [e.data["n"] for e in later if e.kind == "log"] == [12, 13, 14, 20, 21, 22, 23, 24]
        assert len(store.events(eid, limit=2)) == 2


def test_alerts_are_kept_in_order(store: Store) -> None:
    eid = new(store, TaskState.RUNNING)
    alerts = [
        Alert(kind="down", message="site down", severity="critical"),
        Alert(kind="recovered", message="back up"),
    ]
    store.apply([AlertRecord(eid, alerts[0]), AlertRecord(eid, alerts[1])])
    assert store.alerts(eid) == alerts
    assert store.status(eid).alerts == alerts
    assert store.status(eid, with_alerts=False).alerts == []
    assert store.alerts(new(store)) == []


def test_list_filters_and_orders_newest_first(store: Store) -> None:
    first = new(store, name="alpha")
    second = new(store, TaskState.RUNNING, name="beta")
    third = new(store, TaskState.COMPLETED, name="alpha")
    listed = [s.id for s in store.list_executions()]
    assert listed[:3] == [third, second, first]
    assert [s.id for s in store.list_executions(name="alpha")] == [third, first]
    assert [s.id for s in store.list_executions(state="running")] == [second]
    assert [s.id for s in store.list_executions(state="completed", name="beta")] == []
    assert [s.id for s in store.list_executions(limit=2)] == [third, second]


def test_ended_names_the_ended_among_ids(store: Store) -> None:
    states = [TaskState.PENDING, TaskState.RUNNING, *TERMINAL]
    ids = {state: new(store, state) for state in states}
    ended = store.ended([*ids.values(), "nope"])
    assert sorted(ended) == sorted(ids[state] for state in TERMINAL)
    assert store.ended([]) == []


# -- cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize("end", [TaskState.COMPLETED, TaskState.FAILED])
def test_a_cancel_accepted_first_turns_the_end_into_cancelled(store: Store, end: TaskState) -> None:
    eid, other = new(store, TaskState.RUNNING), new(store, TaskState.RUNNING)
    assert store.request_cancel(eid) is True
    assert store.cancel_requests([eid, other, "nope"]) == [eid]
    assert store.cancel_requests([]) == []
    kept = {"execution_id": eid, "task_name": "job", "planner": "llm", "content": "kept"}
    ended = store.apply([Transition(eid, end, result=kept)])
    assert ended == {eid: TaskState.CANCELLED}
    status = store.status(eid)
    assert status.state is TaskState.CANCELLED
    assert status.error is not None and status.error.type == "TaskCancelled"
    assert status.result is not None and status.result.content == "kept"
    assert store.events(eid)[-1].data["state"] == "cancelled"


def test_a_cancel_of_a_pending_execution_and_the_direct_transition(store: Store) -> None:
    eid = new(store)
    assert store.request_cancel(eid) is True
    assert store.transition(eid, TaskState.RUNNING)
    assert store.transition(eid, TaskState.COMPLETED)
    assert state_of(store, eid) is TaskState.CANCELLED


def test_cancel_and_completion_race(opened: Callable[[], Store]) -> None:
    """Whichever comes first wins, and a True from request_cancel always means cancelled."""
    canceller, finisher = opened(), opened()
    for _ in range(20):
        eid = new(finisher, TaskState.RUNNING)
        accepted: list[bool] = []
        go = threading.Barrier(2)

        def cancel(eid: str, go: threading.Barrier, accepted: list[bool]) -> None:
            go.wait()
            accepted.append(canceller.request_cancel(eid))

        thread = threading.Thread(target=cancel, args=(eid, go, accepted))
        thread.start()
        go.wait()
        ended = finisher.apply([Transition(eid, TaskState.COMPLETED)])
        thread.join()
        state = state_of(canceller, eid)
        assert ended == {eid: state}
        assert state is (TaskState.CANCELLED if accepted == [True] else TaskState.COMPLETED)


# -- session memory ---------------------------------------------------------------------------


@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("how", ["transition", "apply"])
def test_session_memory_is_cleared_by_every_end(store: Store, end: TaskState, how: str) -> None:
    eid = new(store, TaskState.RUNNING)
    session = Memory(store, session_namespace(eid))
    session.set("token", "s3cret")
    kept = Memory(store, "task:job")
    kept.set("token", "kept")
    if how == "transition":
        assert store.transition(eid, end)
    else:
        assert store.apply([Transition(eid, end)]) == {eid: end}
    assert session.keys() == [] and session.get("token") is None
    with pytest.raises(TaskCancelled, match="has ended"):
        session.set("token", "again")
    assert session.keys() == []
    assert kept.get("token") == "kept"


def test_recovery_fails_what_a_dead_owner_left_and_clears_its_sessions(store: Store) -> None:
    pending = new(store)
    running = new(store, TaskState.RUNNING)
    new(store, TaskState.CANCELLED)  # ended: nothing to recover
    mine = f"m{next(_ids)}"
    store.create(mine, "job", "{}", "me")
    Memory(store, session_namespace(running)).set("k", 1)

    failed = recover(
        store, lambda owner: owner == "me", lambda owner: to_info(RuntimeError(f"{owner} died"))
    )
    assert sorted(failed) == sorted([pending, running])
    for eid in (pending, running):
        status = store.status(eid)
        assert status.state is TaskState.FAILED
        assert status.error is not None and "owner-a died" in status.error.message
    assert state_of(store, mine) is TaskState.PENDING
    assert Memory(store, session_namespace(running)).keys() == []
    assert recover(store, lambda owner: owner == "me", lambda owner: to_info(RuntimeError())) == []


# -- memory -----------------------------------------------------------------------------------


def test_memory_get_set_delete_keys(store: Store) -> None:
    memory, other = Memory(store, "global"), Memory(store, "task:other")
    assert memory.get("a") is None and memory.get("a", 5) == 5
    memory.set("b", {"x": [1, 2.5, None, True, "é"]})
    memory.set("a", 1)
    memory["a"] = 2
    assert memory.keys() == ["a", "b"]
    assert memory["b"] == {"x": [1, 2.5, None, True, "é"]}
    assert "a" in memory and "zz" not in memory and other.keys() == []
    assert memory.delete("a") is True and memory.delete("a") is False
    with pytest.raises(KeyError):
        memory["a"]
    other.set("b", 1)
    memory.clear()
    assert memory.keys() == [] and other.items() == [("b", 1)]


def test_memory_refuses_bad_values_and_keys(store: Store) -> None:
    memory = Memory(store, "global")
    memory.set("k", "before")
    for bad in (object(), float("nan"), {1, 2}, b"bytes"):
        with pytest.raises(TypeError):
            memory.set("k", bad)
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    for bad in (deep, "\ud800"):
        with pytest.raises(ValidationError):
            memory.set("k", bad)
    for key in ("", 3, None):
        with pytest.raises(TypeError):
            memory.set(key, 1)  # type: ignore[arg-type]
    for key in ("\udc00", "a\x00b"):
        with pytest.raises(ValidationError):
            memory.set(key, 1)
    with pytest.raises(TypeError):
        memory.update("k", lambda v: object())
    assert memory.items() == [("k", "before")]


def test_update_and_incr_are_atomic_across_threads(opened: Callable[[], Store]) -> None:
    stores = [opened(), opened()]
    threads = [
        threading.Thread(
            target=lambda i=i: [
                Memory(stores[i % 2], "global").incr("n")
                if j % 2
                else Memory(stores[i % 2], "global").update("seen", lambda s: [*s, 1], default=[])
                for j in range(40)
            ]
        )
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    memory = Memory(stores[0], "global")
    assert memory.get("n") == 6 * 20
    assert len(memory.get("seen")) == 6 * 20


def test_incr_is_atomic_across_processes(store: Store, url: str) -> None:
    code = (
        "import sys\n"
        "from aesoperator.store import open_store\n"
        "from aesoperator.store.memory import Memory\n"
        "memory = Memory(open_store(sys.argv[1]), 'global')\n"
        "for _ in range(50): memory.incr('n')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, url]) for _ in range(3)]
    memory = Memory(store, "global")
    for _ in range(50):
        memory.incr("n", 2)
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert memory.get("n") == 3 * 50 + 50 * 2


# -- one data, many store objects ------------------------------------------------------------


def test_two_store_objects_see_each_others_writes(opened: Callable[[], Store]) -> None:
    a, b = opened(), opened()
    eid = new(a)
    assert b.status(eid).state is TaskState.PENDING
    b.transition(eid, TaskState.RUNNING)
    a.apply([Progress(eid, 10.0), EventRecord(eid, "log", {"m": "hi"})])
    assert b.status(eid).progress == 10.0
    assert [e.data for e in b.events(eid) if e.kind == "log"] == [{"m": "hi"}]
    assert b.request_cancel(eid) is True
    assert a.cancel_requests([eid]) == [eid]
    Memory(a, "global").set("k", [1])
    assert Memory(b, "global").get("k") == [1]
    assert [s.id for s in b.list_executions()] == [eid]
    assert a.artifacts_dir(eid) == b.artifacts_dir(eid)
    assert a.artifacts_dir(eid) != a.artifacts_dir(new(a))


def test_create_op_in_a_batch_with_its_parent(store: Store) -> None:
    parent = new(store, TaskState.RUNNING)
    child = f"c{next(_ids)}"
    store.apply(
        [
            Create(child, "sub", "{}", "owner-a", parent_id=parent),
            Transition(child, TaskState.RUNNING, owner="owner-a"),
            EventRecord(parent, "subtask", {"execution_id": child}),
        ]
    )
    status = store.status(child)
    assert (status.state, status.parent_id, status.name) == (TaskState.RUNNING, parent, "sub")
    assert store.events(parent)[-1].data == {"execution_id": child}


# -- durable step results ----------------------------------------------------------------------


def test_a_step_result_is_kept_once_and_the_first_write_wins(opened: Callable[[], Store]) -> None:
    a, b = opened(), opened()
    eid, other = new(a, TaskState.RUNNING), new(a, TaskState.RUNNING)
    assert a.step_get(eid, "fetch#1") is None
    assert a.step_put(eid, "fetch#1", '{"n": 1}') is True
    assert b.step_get(eid, "fetch#1") == '{"n": 1}'  # another connection, another process
    assert b.step_put(eid, "fetch#1", '{"n": 2}') is False  # a second run's result is dropped
    assert a.step_get(eid, "fetch#1") == '{"n": 1}'
    assert a.step_get(other, "fetch#1") is None  # the rows are the execution's own
    assert a.step_get(eid, "fetch#2") is None
    a.transition(eid, TaskState.COMPLETED)
    assert b.step_get(eid, "fetch#1") == '{"n": 1}'  # an end keeps them (a replay reads them)
    with pytest.raises(NotFoundError):
        a.step_put("nobody", "fetch#1", "1")


def test_racing_step_writes_keep_exactly_one(opened: Callable[[], Store]) -> None:
    stores = [opened() for _ in range(4)]
    eid = new(stores[0], TaskState.RUNNING)
    go = threading.Barrier(len(stores))
    won: list[bool] = []

    def put(i: int) -> None:
        go.wait()
        won.append(stores[i].step_put(eid, "s#1", json.dumps(i)))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False, False, False, True]
    kept = stores[0].step_get(eid, "s#1")
    assert kept is not None and all(s.step_get(eid, "s#1") == kept for s in stores)


# -- projects and tokens (the service) ---------------------------------------------------------


def test_an_execution_belongs_to_a_project_and_its_sub_tasks_too(store: Store) -> None:
    mine = f"p{next(_ids)}"
    store.create(mine, "job", "{}", "owner-a", project="acme")
    store.apply([Create(f"{mine}-child", "sub", "{}", "owner-a", parent_id=mine)])
    plain = new(store)
    assert store.status(mine, project="acme").id == mine
    assert store.status(f"{mine}-child", project="acme").parent_id == mine
    assert store.status(plain, project="default").id == plain
    for eid, other in ((mine, "default"), (f"{mine}-child", "other"), (plain, "acme")):
        with pytest.raises(NotFoundError):
            store.status(eid, project=other)
    assert store.status(mine).id == mine  # no project given: the local API sees everything


def test_list_page_is_per_project_newest_first_with_a_cursor(store: Store) -> None:
    ids = []
    for i in range(5):
        ids.append(f"l{next(_ids)}")
        store.create(ids[-1], "a" if i % 2 else "b", "{}", "owner-a", project="pages")
    store.create(f"l{next(_ids)}", "a", "{}", "owner-a", project="elsewhere")
    seen: list[str] = []
    cursor = None
    while True:
        items, cursor = store.list_page(project="pages", limit=2, cursor=cursor)
        assert len(items) <= 2 and all(s.result is None for s in items)
        seen += [s.id for s in items]
        if cursor is None:
            break
    assert seen == ids[::-1]
    names, _ = store.list_page(project="pages", name="a")
    assert [s.id for s in names] == [ids[3], ids[1]]
    assert store.list_page(project="pages", state="running")[0] == []
    later = store.status(ids[2]).created_at
    assert [s.id for s in store.list_page(project="pages", since=later)[0]] == ids[:1:-1]
    shifted = later.astimezone(timezone(timedelta(hours=5)))  # the same instant, elsewhere
    assert [s.id for s in store.list_page(project="pages", since=shifted)[0]] == ids[:1:-1]
    with pytest.raises(ValidationError, match="cursor"):
        store.list_page(project="pages", cursor="not-a-cursor")


def test_last_seq_is_the_latest_event(store: Store) -> None:
    eid = new(store, TaskState.RUNNING)
    assert store.last_seq(eid) == store.events(eid)[-1].seq
    assert store.last_seq("nobody") == 0


def test_tokens_are_kept_as_salted_hashes_and_revoked_at_once(
    opened: Callable[[], Store], url: str
) -> None:
    a, b = opened(), opened()
    info, token = a.token_create("ci", scope="read", project="acme")
    assert token.startswith("aesop_") and len(token) == 6 + 43
    assert (info.scope, info.project, info.revoked_at) == ("read", "acme", None)
    checked = b.token_check(token)
    assert checked is not None and checked.id == info.id and checked.allows("read")
    assert not checked.allows("run")
    assert b.token_check(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert b.token_check("aesop_short") is None and b.token_check("") is None
    assert [t.name for t in b.token_list()] == ["ci"]
    with pytest.raises(ValidationError, match="taken"):
        b.token_create("ci")
    for bad in ({"scope": "root"}, {"project": "Bad/Project"}):
        with pytest.raises(ValidationError):
            a.token_create("other", **bad)
    assert b.token_revoke(info.name).revoked_at is not None
    assert a.token_check(token) is None
    assert a.token_revoke(info.id).revoked_at is not None  # twice: no error
    with pytest.raises(ValidationError, match="taken"):  # a revoked name stays taken
        a.token_create("ci")
    assert [t.name for t in b.token_list()] == ["ci"]
    with pytest.raises(NotFoundError):
        a.token_revoke("nobody")
    if url.startswith("sqlite"):  # the token itself is nowhere in the database file
        path = getattr(a, "path")  # noqa: B009
        assert token.encode() not in Path(path).read_bytes()
