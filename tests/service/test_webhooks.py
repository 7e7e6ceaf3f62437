"""End-of-execution webhooks: signed, retried, recorded, refused for private targets unless
allowed, never in the way of the execution's end."""

from __future__ import annotations

import hashlib
import hmac
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskConfig, TaskContext
from aesoperator.errors import TaskCancelled, UserError, ValidationError
from waiting import eventually

sys.path.insert(0, str(Path(__file__).parent))  # for _sched (tests use importlib mode)
from _sched import Receiver

SECRET = "whsec-0123456789"
LOCAL = TaskConfig(allow_private_network=True, retry_delay_seconds=0.01, max_retries=3)


def _ok(ctx: TaskContext, text: str = "done") -> str:
    return f"{text}: see https://example.org/details for more"


def _boom(ctx: TaskContext) -> None:
    raise RuntimeError("it broke")


def _wait(ctx: TaskContext) -> None:
    while True:
        ctx.check_cancelled()
        time.sleep(0.02)


@pytest.fixture(scope="module")
def aesop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aesoperator]:
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("hooks"), isolation="inline")
    client.handler("hook_ok")(_ok)
    client.handler("hook_boom")(_boom)
    client.handler("hook_wait")(_wait)
    yield client
    client.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _deliveries(aesop: Aesoperator, execution_id: str) -> list[dict[str, Any]]:
    return [e.data for e in aesop.get_events(execution_id) if e.kind == "webhook_delivery"]


def _final(aesop: Aesoperator, execution_id: str) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]]:
        events = _deliveries(aesop, execution_id)
        assert events and events[-1]["final"], events
        return events

    return eventually(done, what="a final webhook_delivery event")


def _task(name: str, receiver: Receiver, **kw: Any) -> Task:
    kw.setdefault("config", LOCAL)
    return Task(name=name, webhook_url=receiver.url, webhook_secret=SECRET, **kw)


def test_completed_is_posted_signed_after_the_end_is_stored(
    aesop: Aesoperator, receiver: Receiver
) -> None:
    seen: dict[str, str] = {}
    receiver.on_request = lambda: aesop.get_task_status(seen["id"]).state.value
    execution = aesop.execute_task_async(_task("hook_ok", receiver, inputs={"text": "fine"}))
    seen["id"] = execution.id
    execution.result(timeout=20)
    events = _final(aesop, execution.id)

    assert len(receiver.requests) == 1
    post = receiver.requests[0]
    assert post.seen == "completed"  # the state was terminal before the POST arrived
    ts = post.headers["x-aesoperator-timestamp"]
    expected = hmac.new(SECRET.encode(), ts.encode() + b"." + post.body, hashlib.sha256)
    assert hmac.compare_digest(
        post.headers["x-aesoperator-signature"], "sha256=" + expected.hexdigest()
    )
    body = post.json
    assert body["type"] == "execution.finished"
    assert body["execution_id"] == execution.id and body["task_name"] == "hook_ok"
    assert body["state"] == "completed" and body["error"] is None and body["finished_at"]
    assert body["summary"].startswith("fine") and "https://" not in body["summary"]
    assert body["delivery_id"] == post.headers["x-aesoperator-delivery"]
    assert SECRET.encode() not in post.body
    assert [(e["attempt"], e["ok"], e["status"], e["final"]) for e in events] == [
        (1, True, 200, True)
    ]
    # The secret is never stored: not in the task, not in the timeline.
    assert SECRET not in aesop._store.task_json(execution.id)
    assert SECRET not in str([e.data for e in aesop.get_events(execution.id)])


def test_failed_and_cancelled_are_posted_with_their_error(
    aesop: Aesoperator, receiver: Receiver
) -> None:
    failed = aesop.execute_task_async(_task("hook_boom", receiver))
    with pytest.raises(Exception, match="it broke"):
        failed.result(timeout=20)
    _final(aesop, failed.id)
    running = aesop.execute_task_async(_task("hook_wait", receiver))
    eventually(lambda: running.status().state.value == "running")
    assert running.cancel()
    with pytest.raises(TaskCancelled):
        running.result(timeout=20)
    _final(aesop, running.id)

    by_id = {r.json["execution_id"]: r.json for r in receiver.requests}
    assert by_id[failed.id]["state"] == "failed"
    assert "it broke" in by_id[failed.id]["error"]["message"]
    assert by_id[running.id]["state"] == "cancelled"
    assert by_id[running.id]["error"]["type"] == "TaskCancelled"


def test_5xx_is_retried_with_the_same_delivery_id(aesop: Aesoperator) -> None:
    receiver = Receiver(statuses=(500, 503, 200))
    try:
        execution = aesop.execute_task_async(_task("hook_ok", receiver))
        execution.result(timeout=20)
        events = _final(aesop, execution.id)
    finally:
        receiver.close()
    assert [(e["attempt"], e["ok"], e["status"]) for e in events] == [
        (1, False, 500), (2, False, 503), (3, True, 200)
    ]  # fmt: skip
    assert len({r.headers["x-aesoperator-delivery"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1


def test_attempts_are_bounded(aesop: Aesoperator) -> None:
    receiver = Receiver(statuses=(502,))
    config = LOCAL.model_copy(update={"max_retries": 2})
    try:
        execution = aesop.execute_task_async(_task("hook_ok", receiver, config=config))
        execution.result(timeout=20)
        events = _final(aesop, execution.id)
    finally:
        receiver.close()
    assert len(receiver.requests) == 3 and len(events) == 3
    assert not events[-1]["ok"] and events[-1]["status"] == 502


def test_4xx_is_not_retried(aesop: Aesoperator) -> None:
    receiver = Receiver(statuses=(404, 200))
    try:
        execution = aesop.execute_task_async(_task("hook_ok", receiver))
        execution.result(timeout=20)
        events = _final(aesop, execution.id)
    finally:
        receiver.close()
    assert len(receiver.requests) == 1 and [e["status"] for e in events] == [404]


def test_private_target_is_refused_unless_allowed(aesop: Aesoperator, receiver: Receiver) -> None:
    task = _task("hook_ok", receiver, config=TaskConfig(retry_delay_seconds=0.01))
    execution = aesop.execute_task_async(task)
    execution.result(timeout=20)
    events = _final(aesop, execution.id)
    assert len(receiver.requests) == 0  # counted on the server: nothing reached it
    assert len(events) == 1 and not events[0]["ok"] and events[0]["status"] is None
    assert "private" in events[0]["error"] and "refused by policy" in events[0]["error"]


def test_a_hanging_receiver_never_holds_the_end(aesop: Aesoperator, receiver: Receiver) -> None:
    receiver.hold = threading.Event()
    config = LOCAL.model_copy(update={"request_timeout_seconds": 0.5, "max_retries": 0})
    execution = aesop.execute_task_async(_task("hook_ok", receiver, config=config))
    result = execution.result(timeout=20)  # returns while the receiver still holds the POST
    assert result.summary.startswith("done")
    eventually(lambda: len(receiver.requests) == 1)
    events = _final(aesop, execution.id)  # the attempt times out, bounded
    assert not receiver.hold.is_set()
    assert events[0]["ok"] is False and "timed out" in events[0]["error"]


def test_client_defaults_apply_to_tasks_without_their_own(
    tmp_path: Any, receiver: Receiver
) -> None:
    with Aesoperator(
        data_dir=tmp_path, isolation="inline", webhook_url=receiver.url, webhook_secret=SECRET
    ) as client:
        client.handler("hook_ok")(_ok)
        execution = client.execute_task_async(Task(name="hook_ok", config=LOCAL))
        execution.result(timeout=20)
        _final(client, execution.id)
        no_hook = Task(name="hook_ok", config=LOCAL)
        client.webhook_url = None
        quiet = client.execute_task_async(no_hook)
        quiet.result(timeout=20)
    assert [r.json["execution_id"] for r in receiver.requests] == [execution.id]
    ts = receiver.requests[0].headers["x-aesoperator-timestamp"]
    mac = hmac.new(SECRET.encode(), ts.encode() + b"." + receiver.requests[0].body, "sha256")
    assert receiver.requests[0].headers["x-aesoperator-signature"] == "sha256=" + mac.hexdigest()


def test_process_workers_deliver_too(tmp_path: Any, receiver: Receiver) -> None:
    with Aesoperator(data_dir=tmp_path, pool_size=1) as client:
        client.handler("hook_ok")(_ok)
        execution = client.execute_task_async(_task("hook_ok", receiver))
        execution.result(timeout=60)
        _final(client, execution.id)
    assert [r.json["state"] for r in receiver.requests] == ["completed"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://hooks.example.org/x", "scheme 'ftp' is not allowed"),
        ("https://user:hunter22@hooks.example.org/x", "credentials"),
        ("https:///x", "no host"),
        ("hooks.example.org/x", "scheme '' is not allowed"),
        ("https://hooks.example.org:99999/", "not a valid URL"),
    ],
)
def test_bad_webhook_urls_are_refused_at_submission(url: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        Task(name="t", webhook_url=url, webhook_secret=SECRET)
    text = str(info.value)
    assert "webhook_url" in text and words in text and "hunter22" not in text
    assert isinstance(info.value, UserError)


def test_a_webhook_without_a_secret_is_refused_before_it_runs(
    aesop: Aesoperator, receiver: Receiver
) -> None:
    with pytest.raises(UserError, match="webhook_secret"):
        aesop.execute_task_async(Task(name="hook_ok", webhook_url=receiver.url))
    with pytest.raises(ValidationError, match=r"webhook_secret.*at least 8"):
        Task(name="hook_ok", webhook_url=receiver.url, webhook_secret="short")
    assert receiver.requests == []


def test_a_bad_client_default_is_refused_naming_it(tmp_path: Any) -> None:
    with Aesoperator(
        data_dir=tmp_path, isolation="inline", webhook_url="gopher://x", webhook_secret=SECRET
    ) as client:
        client.handler("hook_ok")(_ok)
        with pytest.raises(UserError, match="webhook_url: got 'gopher://x'; scheme"):
            client.execute_task_async(Task(name="hook_ok"))
