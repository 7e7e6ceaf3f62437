"""Schedules: the store, the scheduler (with a clock advanced by hand, never slept for) and the
``aesop schedule`` commands, each on a data directory's SQLite and on a real PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskContext
from aesoperator.errors import NotFoundError, UserError
from aesoperator.schedules import (
    CronError,
    PostgresScheduleStore,
    Scheduler,
    ScheduleStore,
    open_schedules,
)
from waiting import eventually

T0 = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
RELEASE = threading.Event()


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, hh_mm: str) -> None:
        h, m = map(int, hh_mm.split(":"))
        self.at = T0.replace(hour=h, minute=m)


def _quick(ctx: TaskContext, n: int = 0) -> int:
    return n + 1


def _held(ctx: TaskContext) -> str:
    while not RELEASE.is_set():
        ctx.check_cancelled()
        time.sleep(0.01)
    return "released"


def _pg(where: str) -> bool:
    return where.startswith("postgresql://")


def _client(where: str | Path) -> Aesoperator:
    """A client on ``where``: a data directory, or a PostgreSQL store URL."""
    place: dict[str, Any] = {"store": where} if _pg(str(where)) else {"data_dir": where}
    client = Aesoperator(**place, isolation="inline", pool_size=4)
    client.handler("sched_quick")(_quick)
    client.handler("sched_held")(_held)
    return client


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the schedules are kept: a data directory, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "data")
    make: Callable[[], str] = request.getfixturevalue("postgres_url")
    return make()


@pytest.fixture
def env(where: str) -> Iterator[tuple[Aesoperator, Scheduler, Clock]]:
    RELEASE.clear()
    clock = Clock()
    client = _client(where)
    scheduler = Scheduler(client, now=clock)
    yield client, scheduler, clock
    RELEASE.set()
    scheduler.close()
    client.close()


def _add(scheduler: Scheduler, cron: str, name: str = "sched_quick", **kw: Any) -> str:
    return scheduler.store.add(cron, Task(name=name), now=scheduler.now(), **kw).id


def test_runs_at_each_fire_time_once(env: tuple[Aesoperator, Scheduler, Clock]) -> None:
    client, scheduler, clock = env
    sid = _add(scheduler, "*/5 * * * *")
    assert scheduler.store.get(sid).next_run_at == T0.replace(minute=5)
    clock.set("00:04")
    assert scheduler.tick() == []
    clock.set("00:05")
    [first] = scheduler.tick()
    assert scheduler.tick() == []  # the same fire time never runs twice
    assert client.get_execution(first).result(timeout=20) is not None
    schedule = scheduler.store.get(sid)
    assert schedule.last_execution_id == first and schedule.last_run_at == clock.at
    assert schedule.next_run_at == T0.replace(minute=10)
    assert (schedule.missed, schedule.skipped, schedule.last_error) == (0, 0, None)
    [event] = [e.data for e in client.get_events(first) if e.kind == "schedule"]
    assert event == {"schedule_id": sid, "cron": "*/5 * * * *",
                     "fire_time": T0.replace(minute=5).isoformat()}  # fmt: skip
    clock.set("00:11")
    assert len(scheduler.tick()) == 1
    assert scheduler.store.get(sid).missed == 0


def test_no_overlap_skips_and_counts(env: tuple[Aesoperator, Scheduler, Clock]) -> None:
    client, scheduler, clock = env
    sid = _add(scheduler, "*/5 * * * *", name="sched_held")
    clock.set("00:05")
    [first] = scheduler.tick()
    eventually(lambda: client.get_task_status(first).state.value == "running")
    clock.set("00:10")
    assert scheduler.tick() == []
    schedule = scheduler.store.get(sid)
    assert schedule.skipped == 1 and schedule.last_execution_id == first
    [skip] = [e.data for e in client.get_events(first) if e.kind == "schedule_skipped"]
    assert skip["schedule_id"] == sid and skip["fire_time"] == T0.replace(minute=10).isoformat()
    assert schedule.next_run_at == T0.replace(minute=15)
    RELEASE.set()
    client.get_execution(first).result(timeout=20)
    clock.set("00:15")
    [second] = scheduler.tick()
    assert second != first and scheduler.store.get(sid).skipped == 1


def test_allow_overlap_starts_alongside(env: tuple[Aesoperator, Scheduler, Clock]) -> None:
    client, scheduler, clock = env
    sid = _add(scheduler, "*/5 * * * *", name="sched_held", allow_overlap=True)
    clock.set("00:05")
    [first] = scheduler.tick()
    eventually(lambda: client.get_task_status(first).state.value == "running")
    clock.set("00:10")
    [second] = scheduler.tick()
    assert client.get_task_status(first).state.value == "running"
    assert second != first and scheduler.store.get(sid).skipped == 0


def test_downtime_runs_once_and_reports_the_missed(
    env: tuple[Aesoperator, Scheduler, Clock],
) -> None:
    client, scheduler, clock = env
    sid = _add(scheduler, "*/5 * * * *")
    clock.set("01:03")  # 00:05 ... 01:00 passed: 12 fire times while nothing ran
    [run] = scheduler.tick()
    assert scheduler.tick() == []
    schedule = scheduler.store.get(sid)
    assert schedule.missed == 11 and schedule.next_run_at == T0.replace(hour=1, minute=5)
    [event] = [e.data for e in client.get_events(run) if e.kind == "schedule_missed"]
    assert event["missed"] == 11 and event["first_missed"] == T0.replace(minute=5).isoformat()
    assert event["fire_time"] == T0.replace(hour=1, minute=0).isoformat()  # the latest one
    [alert] = client.get_alerts(run)
    assert alert.kind == "schedule_missed" and "missed 11 run(s)" in alert.message


def test_several_schedulers_never_double_fire(where: str) -> None:
    # Each client and scheduler has its own connections, as on separate machines.
    clock = Clock()
    clients = [_client(where) for _ in range(3)]
    schedulers = [Scheduler(c, now=clock) for c in clients]
    try:
        kind = PostgresScheduleStore if _pg(where) else ScheduleStore
        assert all(type(s.store) is kind for s in schedulers)
        store = schedulers[0].store  # overlap allowed: every fire time must start one run
        sid = store.add("* * * * *", Task(name="sched_quick"), allow_overlap=True, now=clock()).id
        started: list[str] = []
        lock = threading.Lock()
        for minute in range(3, 13):
            clock.set(f"00:{minute:02d}")
            barrier = threading.Barrier(len(schedulers))

            def fire(s: Scheduler, b: threading.Barrier = barrier) -> None:
                b.wait()
                ids = s.tick()
                with lock:
                    started.extend(ids)

            threads = [threading.Thread(target=fire, args=(s,)) for s in schedulers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        assert len(started) == len(set(started)) == 10  # one per fire time, 00:03..00:12
        schedule = schedulers[0].store.get(sid)
        assert schedule.missed == 0 and schedule.skipped == 0
        names = {clients[0].get_task_status(e).name for e in started}
        assert names == {"sched_quick"}
    finally:
        for s in schedulers:
            s.close()
        for c in clients:
            c.close()


def test_a_run_that_cannot_start_is_visible(env: tuple[Aesoperator, Scheduler, Clock]) -> None:
    _, scheduler, clock = env
    sid = scheduler.store.add(
        "@hourly", Task(name="not_registered", planner="handler"), now=clock()
    ).id
    clock.set("01:00")
    assert scheduler.tick() == []
    schedule = scheduler.store.get(sid)
    assert schedule.last_error and "not_registered" in schedule.last_error
    assert schedule.next_run_at == T0.replace(hour=2, minute=0)


def test_the_background_thread_follows_the_clock(
    env: tuple[Aesoperator, Scheduler, Clock],
) -> None:
    client, scheduler, clock = env
    sid = _add(scheduler, "*/5 * * * *")
    scheduler.interval = 0.01
    scheduler.start()
    clock.set("00:05")
    run = eventually(lambda: scheduler.store.get(sid).last_execution_id)
    client.get_execution(run).result(timeout=20)
    scheduler.stop()
    clock.set("00:10")
    time.sleep(0.05)  # stopped: nothing may start (not a timing assertion: it must never)
    assert scheduler.store.get(sid).last_execution_id == run


def test_store_refuses_and_isolates(where: str) -> None:
    store = open_schedules(where)
    try:
        with pytest.raises(CronError, match="hour field '24': must be 0-23"):
            store.add("0 24 * * *", Task(name="x"))
        with pytest.raises(UserError, match=r"task\.secrets: a scheduled task is stored"):
            store.add("@daily", Task(name="x", secrets={"pw": "hunter22"}))
        with pytest.raises(UserError, match=r"task\.webhook_secret"):
            store.add("@daily", Task(name="x", webhook_secret="0123456789"))
        mine = store.add("@daily", Task(name="x"), project="alpha")
        theirs = store.add("@daily", Task(name="y"), project="beta")
        assert [s.id for s in store.all(project="alpha")] == [mine.id]
        with pytest.raises(NotFoundError):
            store.get(theirs.id, project="alpha")
        assert not store.remove(theirs.id, project="alpha")
        assert store.get(theirs.id).project == "beta"
        body = mine.to_json()
        assert body["task"]["name"] == "x" and body["missed"] == 0 and not body["allow_overlap"]
        assert store.remove(mine.id, project="alpha") and store.all(project="alpha") == []
    finally:
        store.close()


def _cli(where: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    place = ["--store", str(where)] if _pg(str(where)) else ["--data-dir", str(where)]
    return subprocess.run(
        [sys.executable, "-m", "aesoperator.cli", "schedule", *args, *place],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_add_list_remove(where: str, tmp_path: Path) -> None:
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: sched_quick\ninputs: {n: 41}\n")
    data = where
    added = _cli(data, "add", "*/5 * * * *", str(task_file), "--allow-overlap", "--json")
    assert added.returncode == 0, added.stderr
    schedule = json.loads(added.stdout)
    assert schedule["cron"] == "*/5 * * * *" and schedule["allow_overlap"] is True
    assert schedule["task"]["inputs"] == {"n": 41}
    listed = _cli(data, "list")
    assert schedule["id"] in listed.stdout and "sched_quick" in listed.stdout
    bad = _cli(data, "add", "61 * * * *", str(task_file))
    assert bad.returncode == 2 and "minute field '61': must be 0-59" in bad.stderr
    missing = _cli(data, "add", "@daily", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    removed = _cli(data, "remove", schedule["id"], "--json")
    assert json.loads(removed.stdout) == {"id": schedule["id"], "removed": True}
    gone = _cli(data, "remove", schedule["id"])
    assert gone.returncode == 1 and "no schedule with id" in gone.stderr
    assert json.loads(_cli(data, "list", "--json").stdout) == []


def test_cli_schedules_are_run_by_a_scheduler_on_the_store(where: str, tmp_path: Path) -> None:
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: sched_quick\ninputs: {n: 41}\n")
    added = _cli(where, "add", "@hourly", str(task_file), "--json")
    assert added.returncode == 0, added.stderr
    clock = Clock(datetime.now(UTC) + timedelta(hours=1, minutes=1))
    with _client(where) as client:
        scheduler = Scheduler(client, now=clock)
        try:
            [run] = scheduler.tick()
            assert client.get_execution(run).result(timeout=20).data == 42
        finally:
            scheduler.close()


# One process of test_schedulers_in_several_processes: a scheduler of its own on the shared
# store, one pass at a fixed clock once told to go; prints the executions it started.
_SCHEDULER_PROCESS = """
import json, sys, time
from datetime import datetime
from pathlib import Path
from aesoperator import Aesoperator
from aesoperator.schedules import Scheduler

url, at, go = sys.argv[1], datetime.fromisoformat(sys.argv[2]), Path(sys.argv[3])
client = Aesoperator(store=url, isolation="inline", pool_size=2)
client.handler("sched_quick")(lambda ctx, n=0: n + 1)
scheduler = Scheduler(client, now=lambda: at)
while not go.exists():
    time.sleep(0.005)
started = scheduler.tick()
for eid in started:
    client.get_execution(eid).result(timeout=30)
scheduler.close()
client.close()
print(json.dumps(started))
"""


def test_schedulers_in_several_processes_fire_and_report_once(
    postgres_url: Callable[[], str], tmp_path: Path
) -> None:
    """Three processes (as on three machines) tick at once on one PostgreSQL store: every
    schedule runs once, and its missed fire times are counted and reported once."""
    url = postgres_url()
    with open_schedules(url) as store:
        sids = [store.add("*/5 * * * *", Task(name="sched_quick"), now=T0).id for _ in range(20)]
    at = T0.replace(hour=1, minute=3)  # 00:05 ... 01:00 passed: one run and 11 missed each
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCHEDULER_PROCESS, url, at.isoformat(), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(1.0)  # let them connect: the passes then overlap (correct either way)
    go.touch()
    started: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        started.extend(json.loads(out))
    assert len(started) == len(set(started)) == len(sids)
    with _client(url) as client, open_schedules(url) as store:
        fired = sorted(
            e.data["schedule_id"] for eid in started for e in client.get_events(eid)
            if e.kind == "schedule"
        )  # fmt: skip
        assert fired == sorted(sids)
        missed = [e.data for eid in started for e in client.get_events(eid)
                  if e.kind == "schedule_missed"]  # fmt: skip
        assert len(missed) == len(sids) and {m["missed"] for m in missed} == {11}
        assert sum(len(client.get_alerts(eid)) for eid in started) == len(sids)
        for schedule in store.all():
            assert (schedule.missed, schedule.skipped) == (11, 0)
            assert schedule.last_execution_id in started
            assert schedule.next_run_at == T0.replace(hour=1, minute=5)


def test_open_schedules_follows_the_store_url(tmp_path: Path) -> None:
    """The schedules are kept where ``open_store`` keeps the store: the same URL rules."""
    data = tmp_path / "data"
    with open_schedules(f"sqlite://{data}") as store:
        sid = store.add("@daily", Task(name="x")).id
    for same in (str(data), data):
        with open_schedules(same) as store:
            assert [s.id for s in store.all()] == [sid]
    with open_schedules(f"sqlite://{tmp_path / 'db' / 'ops.sqlite3'}") as store:
        assert isinstance(store, ScheduleStore) and store.all() == []
        store.add("@daily", Task(name="y"))
    assert (tmp_path / "db" / "ops.sqlite3").is_file()
    assert not (tmp_path / "db" / "aesoperator.sqlite3").exists()
    with pytest.raises(UserError, match="unknown scheme 'redis://'"):
        open_schedules("redis://localhost/0")
    with pytest.raises(UserError, match="no artifacts directory"):
        open_schedules("postgresql://u:secret-pw@127.0.0.1:1/db")


def test_a_client_s_scheduler_and_served_app_use_its_store(
    postgres_url: Callable[[], str], tmp_path: Path
) -> None:
    from aesoperator.service import ServiceSettings
    from aesoperator.service.serve import build_app

    url = postgres_url()
    with _client(url) as client:
        scheduler = Scheduler(client)
        try:
            assert isinstance(scheduler.store, PostgresScheduleStore)
            sid = scheduler.store.add("@daily", Task(name="sched_quick"), project="alpha").id
        finally:
            scheduler.close()
        app = build_app(client, settings=ServiceSettings(schedules=True))
        try:
            assert isinstance(app.state.schedules, PostgresScheduleStore)
            assert app.state.scheduler.store is app.state.schedules  # one pool for both
            assert [s.id for s in app.state.schedules.all(project="alpha")] == [sid]
        finally:
            app.state.schedules.close()
    with _client(tmp_path) as local:  # a data directory's client keeps them in its SQLite
        scheduler = Scheduler(local)
        try:
            assert isinstance(scheduler.store, ScheduleStore) and scheduler.store.all() == []
        finally:
            scheduler.close()


def test_the_cli_takes_the_store_from_aesop_store(
    postgres_url: Callable[[], str], tmp_path: Path
) -> None:
    url = postgres_url()
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: sched_quick\n")
    env = {**os.environ, "AESOP_STORE": url}
    run = [sys.executable, "-m", "aesoperator.cli", "schedule"]
    added = subprocess.run([*run, "add", "@daily", str(task_file), "--json"], env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert added.returncode == 0, added.stderr
    with open_schedules(url) as store:
        assert [s.id for s in store.all()] == [json.loads(added.stdout)["id"]]
    both = subprocess.run([*run, "list", "--store", url, "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert both.returncode == 2 and "give one of them" in both.stderr
    assert "test-pw" not in both.stderr


def test_the_postgresql_schedules_table_has_the_sqlite_columns(
    postgres_url: Callable[[], str], tmp_path: Path
) -> None:
    """Migration 1 made PostgreSQL's table; the same SQL runs on both only while their columns
    are the same (a new column needs a migration there too)."""
    import sqlite3

    import psycopg

    from aesoperator.store.postgres import parse_url

    url = postgres_url()
    open_schedules(url).close()
    with psycopg.connect(parse_url(url)[0]) as conn:
        pg = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'schedules'"
            " ORDER BY ordinal_position"
        )]  # fmt: skip
    open_schedules(tmp_path).close()
    with contextlib.closing(sqlite3.connect(tmp_path / "aesoperator.sqlite3")) as db:
        lite = [r[1] for r in db.execute("PRAGMA table_info(schedules)")]
    assert pg == lite and "next_run_at" in pg
