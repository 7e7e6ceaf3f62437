"""Schedules: the store, the scheduler (with a clock advanced by hand, never slept for) and the
``aesop schedule`` commands."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskContext
from aesoperator.errors import NotFoundError, UserError
from aesoperator.schedules import CronError, Scheduler, ScheduleStore
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


def _client(data_dir: Path) -> Aesoperator:
    client = Aesoperator(data_dir=data_dir, isolation="inline", pool_size=4)
    client.handler("sched_quick")(_quick)
    client.handler("sched_held")(_held)
    return client


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Aesoperator, Scheduler, Clock]]:
    RELEASE.clear()
    clock = Clock()
    client = _client(tmp_path)
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


def test_several_schedulers_never_double_fire(tmp_path: Path) -> None:
    clock = Clock()
    clients = [_client(tmp_path) for _ in range(3)]
    schedulers = [Scheduler(c, now=clock) for c in clients]
    try:
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


def test_store_refuses_and_isolates(tmp_path: Path) -> None:
    store = ScheduleStore(tmp_path)
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


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aesoperator.cli", "schedule", *args, "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_add_list_remove(tmp_path: Path) -> None:
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: sched_quick\ninputs: {n: 41}\n")
    data = tmp_path / "data"
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


def test_cli_schedules_are_run_by_a_scheduler_on_the_data_dir(tmp_path: Path) -> None:
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: sched_quick\ninputs: {n: 41}\n")
    added = _cli(tmp_path, "add", "@hourly", str(task_file), "--json")
    assert added.returncode == 0, added.stderr
    clock = Clock(datetime.now(UTC) + timedelta(hours=1, minutes=1))
    with _client(tmp_path) as client:
        scheduler = Scheduler(client, now=clock)
        try:
            [run] = scheduler.tick()
            assert client.get_execution(run).result(timeout=20).data == 42
        finally:
            scheduler.close()
