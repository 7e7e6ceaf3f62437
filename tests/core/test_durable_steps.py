"""Durable steps: with ``Job.durable_steps`` (what a backend that retries runs elsewhere sets),
a ``ctx.step`` that completed is not run again when the same execution runs again; its stored
result is returned. On SQLite and on the real PostgreSQL server, hosted as in
``test_runner_host.py`` (a plain asyncio program); side effects are counted in a file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Task
from aesoperator.runtime.protocol import Finished, ToSupervisor
from aesoperator.runtime.runner import Job, Registry, Runner
from aesoperator.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "data")
    make: Callable[[], str] = request.getfixturevalue("postgres_url")
    return make()


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = open_store(url)
    yield store
    store.close()


class Calls:
    """Counts the calls of a step's function in a file: what a second process would see."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, what: str) -> None:
        with self.path.open("a") as f:
            f.write(what + "\n")

    @property
    def made(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []


def _run(url: str, store: Store, eid: str, handler: Any, *, durable: bool = True) -> list[Any]:
    """Run execution ``eid`` of ``handler`` once; every message the host got."""
    if eid not in {s.id for s in store.list_executions(limit=1000)}:
        store.create(eid, "job", "{}", "test")
    task = Task(name="job")
    job = Job(
        execution_id=eid,
        task_json=task.model_dump_json(),
        planner=("handler", "job"),
        data_dir=url,
        registry=Registry(handlers={"job": handler}),
        durable_steps=durable,
    )
    sent: list[ToSupervisor] = []

    async def main() -> None:
        runner = Runner(sent.append, asyncio.get_running_loop())
        try:
            await runner.run(job)
        finally:
            for opened in runner._stores.values():  # the runner's own connection
                opened.close()

    asyncio.run(main())
    return sent


def _finished(sent: list[Any]) -> Finished:
    assert isinstance(sent[-1], Finished)
    return sent[-1]


def _events(sent: list[Any], kind: str) -> list[dict[str, Any]]:
    return [m["data"] for m in sent if isinstance(m, dict) and m.get("kind") == kind]


def test_completed_steps_are_replayed_not_run_again(url: str, store: Store, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls")
    crash = tmp_path / "crash-once"
    crash.touch()

    async def handler(ctx: Any) -> dict[str, Any]:
        def fetch(page: int) -> dict[str, Any]:
            calls(f"fetch{page}")
            return {"page": page, "words": ["a", "b"]}

        def total(pages: list[dict[str, Any]]) -> int:
            calls("total")
            if crash.exists():  # the worker dies here on the first run
                crash.unlink()
                raise RuntimeError("worker lost")
            return sum(p["page"] for p in pages)

        pages = [await ctx.step("fetch", fetch, 1), await ctx.step("fetch", fetch, 2)]
        return {"pages": pages, "total": await ctx.step("total", total, pages)}

    first = _finished(_run(url, store, "d1", handler))
    assert first.state == "failed" and calls.made == ["fetch1", "fetch2", "total"]
    assert store.step_get("d1", "fetch#2") == '{"page": 2, "words": ["a", "b"]}'
    assert store.step_get("d1", "total#1") is None

    sent = _run(url, store, "d1", handler)  # the retry, as on another machine
    finished = _finished(sent)
    assert finished.state == "completed" and finished.result is not None
    assert calls.made == ["fetch1", "fetch2", "total", "total"]  # the fetches ran once
    assert finished.result["data"] == {
        "pages": [{"page": 1, "words": ["a", "b"]}, {"page": 2, "words": ["a", "b"]}],
        "total": 3,
    }
    assert _events(sent, "step_replayed") == [
        {"name": "fetch", "key": "fetch#1"},
        {"name": "fetch", "key": "fetch#2"},
    ]
    actions = finished.result["actions"]
    assert [(a["name"], a["details"].get("replayed", False)) for a in actions] == [
        ("fetch", True), ("fetch", True), ("total", False)
    ]  # fmt: skip
    assert [a["attempts"] for a in actions] == [0, 0, 1] and all(a["ok"] for a in actions)

    third = _finished(_run(url, store, "d1", handler))  # everything replayed now
    assert third.state == "completed" and third.result is not None
    assert calls.made == ["fetch1", "fetch2", "total", "total"]
    assert third.result["data"] == finished.result["data"]


def test_a_value_json_cannot_keep_is_returned_but_not_durable(
    url: str, store: Store, tmp_path: Path
) -> None:
    calls = Calls(tmp_path / "calls")

    async def handler(ctx: Any) -> dict[str, Any]:
        def opaque() -> object:
            calls("opaque")
            return object()

        def pair() -> tuple[int, int]:
            calls("pair")
            return (1, 2)

        kept = await ctx.step("opaque", opaque)
        got = await ctx.step("pair", pair)
        return {"opaque": type(kept).__name__, "pair": type(got).__name__}

    for run in (1, 2):
        sent = _run(url, store, "d2", handler)
        finished = _finished(sent)
        assert finished.state == "completed" and finished.result is not None
        assert finished.result["data"] == {"opaque": "object", "pair": "tuple"}
        events = _events(sent, "step_not_durable")
        assert [(e["name"], e["key"], e["type"]) for e in events] == [
            ("opaque", "opaque#1", "object"), ("pair", "pair#1", "tuple")
        ]  # fmt: skip
        assert "not JSON-serialisable" in events[0]["why"]
        assert "does not come back the same" in events[1]["why"]
        assert calls.made == ["opaque", "pair"] * run  # run again each time
    assert store.step_get("d2", "opaque#1") is None and store.step_get("d2", "pair#1") is None


def test_without_durable_steps_nothing_is_kept_or_replayed(
    url: str, store: Store, tmp_path: Path
) -> None:
    calls = Calls(tmp_path / "calls")

    async def handler(ctx: Any) -> int:
        return int(await ctx.step("once", lambda: calls("once") or 7))

    for run in (1, 2):
        sent = _run(url, store, "d3", handler, durable=False)
        assert _finished(sent).state == "completed"
        assert calls.made == ["once"] * run
        assert _events(sent, "step_replayed") == []
    assert store.step_get("d3", "once#1") is None


def test_a_sync_handler_steps_through_ctx_run_and_replays_too(
    url: str, store: Store, tmp_path: Path
) -> None:
    calls = Calls(tmp_path / "calls")

    def handler(ctx: Any) -> list[str]:
        def word(w: str) -> str:
            calls(w)
            return w.upper()

        return [ctx.run(ctx.step("word", word, w)) for w in ("a", "b")]

    for _ in (1, 2):
        finished = _finished(_run(url, store, "d4", handler))
        assert finished.result is not None and finished.result["data"] == ["A", "B"]
    assert calls.made == ["a", "b"]
    assert json.loads(store.step_get("d4", "word#2") or "null") == "B"
