"""Submitting and waiting under concurrency: what the faster submit path must still get right.

A submit queues its job for the runtime's loop and wakes that loop once per batch; a waited
POST resolves one loop future from the runtime's thread, with its own timeout. These tests
check that no submit is lost or mixed up with another, that a cancel right after a submit
reaches that execution, and that ``?wait=true&timeout=`` answers in time either way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aesoperator import Aesoperator, Task
from service._api import Served, register_handlers, serving
from waiting import eventually


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("perf")) as served:
        yield served


def test_concurrent_waited_submits_each_answer_their_own_task(served: Served) -> None:
    token = served.token("run")

    async def load() -> list[tuple[int, dict[str, Any]]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=60) as http:

            async def one(i: int) -> tuple[int, dict[str, Any]]:
                answer = await http.post(
                    "/v1/tasks?wait=true", json={"name": "echo", "inputs": {"i": i}}
                )
                assert answer.status_code == 200, answer.text
                return i, answer.json()

            return await asyncio.gather(*(one(i) for i in range(48)))

    answers = asyncio.run(load())
    assert len({status["id"] for _, status in answers}) == 48
    for i, status in answers:
        assert status["state"] == "completed", status
        assert status["result"]["data"] == {"i": i}


def test_wait_timeout_answers_201_while_it_runs(served: Served) -> None:
    token = served.token("run")
    with served.http(token) as http:
        answer = http.post(
            "/v1/tasks",
            params={"wait": "true", "timeout": "0.3"},
            json={"name": "slow", "inputs": {"seconds": 60}},
        )
        assert answer.status_code == 201, answer.text
        status = answer.json()
        assert status["state"] in ("pending", "running") and status["result"] is None
        assert http.post(f"/v1/tasks/{status['id']}/cancel").json()["cancelled"] is True
        eventually(lambda: http.get(f"/v1/tasks/{status['id']}").json()["state"] == "cancelled")
        # the wait of an execution that ended meanwhile answers at once, finished
        done = http.post("/v1/tasks?wait=true&timeout=0", json={"name": "echo"})
        assert done.status_code == 201  # timeout 0: not waited for
        again = http.post("/v1/tasks?wait=true&timeout=30", json={"name": "echo"})
        assert again.status_code == 200 and again.json()["state"] == "completed"


def test_submits_from_threads_each_run_and_a_cancel_right_after_reaches_its_own(
    tmp_path: Path,
) -> None:
    client = Aesoperator(data_dir=tmp_path / "local", pool_size=2)
    register_handlers(client)
    try:

        def submit_and_cancel(i: int) -> tuple[str, str]:
            quick = client.execute_task_async(Task(name="echo", inputs={"i": i}))
            slow = client.execute_task_async(Task(name="slow", inputs={"seconds": 60}))
            assert client.cancel_task(slow.id) is True
            return quick.id, slow.id

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            pairs = list(pool.map(submit_and_cancel, range(24)))
        for i, (quick, slow) in enumerate(pairs):
            assert client.get_execution(quick).wait(timeout=60).result.data == {"i": i}
            assert client.get_execution(slow).wait(timeout=60).state == "cancelled"
    finally:
        client.close()
