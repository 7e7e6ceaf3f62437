"""The remote client against a real ``aesop serve`` (subprocess, real SQLite, real workers):
every method, the errors, and the progress stream surviving a cut connection."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aesoperator import (
    Aesoperator,
    AesoperatorError,
    Alert,
    NotFoundError,
    PolicyViolation,
    Task,
    TaskCancelled,
    TaskConfig,
    TaskFailed,
    TaskStatus,
    UserError,
    ValidationError,
)
from aesoperator._remote import RemoteAesoperator

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _remote import Relay, make_token, need_service, revoke_token, served, served_in_process

from waiting import eventually


class Served:
    def __init__(self, url: str, data_dir: Path, token: str) -> None:
        self.url, self.data_dir, self.token = url, data_dir, token

    def client(self, url: str | None = None, token: str | None = None) -> Aesoperator:
        return Aesoperator(url=url or self.url, token=token or self.token)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    need_service()
    root = tmp_path_factory.mktemp("served")
    data_dir = root / "data"
    data_dir.mkdir()
    token = make_token(data_dir, "tests", "--scope", "run")
    with served(data_dir) as url:
        yield Served(url, data_dir, token)


@pytest.fixture
def client(
    server: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Aesoperator]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with server.client() as c:
        yield c


def _go(folder: Path, name: str) -> None:
    (folder / name).write_text("")


def test_execute_task_returns_the_result_and_lists_and_events_follow(client: Aesoperator) -> None:
    result = client.execute_task(Task(name="echo", inputs={"a": 1, "b": [2]}), timeout=60)
    assert result.data == {"a": 1, "b": [2]} and result.planner == "handler:echo"
    status = client.get_task_status(result.execution_id)
    assert status.state == "completed" and status.result == result
    listed = client.list_tasks(name="echo", state="completed")
    assert result.execution_id in [s.id for s in listed]
    assert all(s.name == "echo" and s.state == "completed" for s in listed)
    kinds = [e.kind for e in client.get_events(result.execution_id)]
    assert "state" in kinds or "action" in kinds, kinds
    assert client.get_execution(result.execution_id).result() == result
    with pytest.raises(UserError, match="state: got 'nope'"):
        client.list_tasks(state="nope")


def test_async_execution_progress_alerts_cancel_and_await(
    client: Aesoperator, tmp_path: Path
) -> None:
    execution = client.execute_task_async(
        Task(name="paced", inputs={"dir": str(tmp_path), "steps": 2})
    )
    seen: list[TaskStatus] = []
    alerts: list[Alert] = []
    execution.on_progress(seen.append)
    execution.on_alert(alerts.append)
    _go(tmp_path, "go0")
    eventually(lambda: [a.message for a in alerts] == ["alert 0"], timeout=60, what="alert 0")
    eventually(lambda: any(s.progress > 33 for s in seen), timeout=30, what="progress seen")
    assert not execution.done and execution.status().state == "running"
    late: list[Alert] = []
    execution.on_alert(late.append)  # registered after the alert: it is replayed
    eventually(lambda: [a.message for a in late] == ["alert 0"], timeout=30)
    assert [a.message for a in execution.alerts()] == ["alert 0"]
    with pytest.raises(TimeoutError):
        execution.wait(0.2)
    assert execution.cancel() is True
    final = execution.wait(60)
    assert final.state == "cancelled"
    with pytest.raises(TaskCancelled):
        execution.result()
    with pytest.raises(TaskCancelled):
        asyncio.run(_awaited(execution))
    assert execution.cancel() is False
    assert client.cancel_task(execution.id) is False
    assert any(e.kind == "alert" for e in execution.events())


async def _awaited(execution: object) -> object:
    return await execution  # type: ignore[misc]


def test_awaiting_a_remote_execution_gives_its_result(client: Aesoperator) -> None:
    execution = client.execute_task_async(Task(name="echo", inputs={"x": "y"}))

    async def main() -> object:
        return (await execution).data

    assert asyncio.run(main()) == {"x": "y"}


def test_failures_raise_the_local_exceptions(client: Aesoperator) -> None:
    with pytest.raises(TaskFailed, match="kaput") as failed:
        client.execute_task(Task(name="boom"), timeout=60)
    assert failed.value.error_type == "ValueError" and failed.value.execution_id
    task = Task(
        name="trespass",
        inputs={"url": "https://elsewhere.example/"},
        config=TaskConfig(allowed_domains=["example.org"]),
    )
    with pytest.raises(PolicyViolation) as refused:
        client.execute_task(task, timeout=60)
    assert refused.value.rule == "allowed_domains"


def test_an_unregistered_handler_is_refused_with_the_local_message(client: Aesoperator) -> None:
    with pytest.raises(UserError, match="no handler is registered for it"):
        client.execute_task_async(Task(name="nobody_serves_this", planner="handler"))


def test_an_unregistered_handler_is_refused_listing_what_is(client: Aesoperator) -> None:
    with pytest.raises(UserError) as refused:
        client.execute_task_async(Task(name="nobody_serves_this", planner="handler"))
    assert "echo" in str(refused.value), refused.value


def test_result_files_in_folders_are_downloaded_too(client: Aesoperator) -> None:
    result = client.execute_task(Task(name="files", inputs={"text": "hello"}), timeout=60)
    (nested,) = [art for art in result.files if art.name == "pages/1.html"]
    assert Path(nested.path).read_text() == "<p>one</p>"


def test_unknown_ids_are_not_found(client: Aesoperator) -> None:
    for call in (
        client.get_task_status,
        client.get_execution,
        client.cancel_task,
        client.get_events,
        client.get_alerts,
        client.replay,
    ):
        with pytest.raises(NotFoundError):
            call("0" * 32)


def test_result_files_are_downloaded_and_save_report_works_here(
    client: Aesoperator, tmp_path: Path
) -> None:
    result = client.execute_task(Task(name="files", inputs={"text": "hello"}), timeout=60)
    by_name = {art.name: art for art in result.files}
    assert set(by_name) == {"report.md", "pages/1.html", "shot.png"}
    cache = tmp_path / "cache"
    for art in result.files:
        local = Path(art.path)
        assert local.is_relative_to(cache) and local.stat().st_size == art.size
    assert Path(by_name["shot.png"].path).read_bytes() == bytes(range(256)) * 4
    saved = result.save_report(tmp_path / "out" / "report.md")
    assert saved.read_text() == "# Report\n\nhello\n"
    # as locally: a produced file with the report's extension is the report
    html = result.save_report(tmp_path / "out" / "report.html").read_text()
    assert html == "<p>one</p>"


def test_memory_round_trips(client: Aesoperator) -> None:
    memory = client.memory
    memory.set("visited", ["https://example.com"])
    memory["n"] = {"deep": [1, 2.5, None, "é"]}
    assert memory.get("visited") == ["https://example.com"]
    assert memory["n"] == {"deep": [1, 2.5, None, "é"]}
    assert "visited" in memory and "absent" not in memory
    assert memory.get("absent", 7) == 7
    assert {"visited", "n"} <= set(memory.keys())
    assert memory.delete("n") is True and memory.delete("n") is False
    with pytest.raises(KeyError):
        memory["n"]


def test_warmup_and_close(server: Served) -> None:
    client = server.client()
    client.warmup(30)
    client.close()
    client.close()
    with pytest.raises(UserError, match="closed"):
        client.execute_task_async(Task(name="echo"))


def test_missing_and_revoked_tokens_say_how_to_get_one(server: Served) -> None:
    with Aesoperator(url=server.url) as anonymous:
        assert isinstance(anonymous, RemoteAesoperator)
        with pytest.raises(UserError, match=r"no token was given.*aesop token create"):
            anonymous.list_tasks()
    token = make_token(server.data_dir, "short-lived", "--scope", "run")
    with server.client(token=token) as doomed:
        doomed.list_tasks()
        revoke_token(server.data_dir, "short-lived")
        with pytest.raises(UserError, match=r"wrong or was revoked.*aesop token create"):
            doomed.list_tasks()


def test_a_read_token_cannot_run(server: Served) -> None:
    token = make_token(server.data_dir, "reader", "--scope", "read")
    with server.client(token=token) as reader:
        reader.list_tasks()
        with pytest.raises(UserError, match="scope"):
            reader.execute_task_async(Task(name="echo"))


def test_the_progress_stream_resumes_after_the_connection_drops(
    server: Served, tmp_path: Path
) -> None:
    relay = Relay(int(server.url.rsplit(":", 1)[1]))
    try:
        with server.client(url=f"http://127.0.0.1:{relay.port}") as client:
            execution = client.execute_task_async(
                Task(name="paced", inputs={"dir": str(tmp_path), "steps": 3})
            )
            alerts: list[str] = []
            execution.on_alert(lambda a: alerts.append(a.message))
            _go(tmp_path, "go0")
            eventually(lambda: alerts == ["alert 0"], timeout=60, what="alert 0")
            before = relay.accepted
            relay.cut()  # the stream (and every other connection) is dropped mid-execution
            _go(tmp_path, "go1")
            _go(tmp_path, "go2")
            eventually(lambda: len(alerts) >= 3, timeout=60, what="alerts after the cut")
            assert alerts == ["alert 0", "alert 1", "alert 2"]  # none lost, none twice
            assert relay.accepted > before  # it did reconnect
            _go(tmp_path, "finish")
            assert execution.result(60).data == {"steps": 3}
    finally:
        relay.close()


def test_rate_limits_are_waited_out_then_reported(tmp_path: Path) -> None:
    from aesoperator.service import ServiceSettings

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    token = make_token(data_dir, "busy")
    with served_in_process(data_dir, ServiceSettings(rate_per_token=(5.0, 2))) as url:
        client = Aesoperator(url=url, token=token)
        for _ in range(8):  # over the burst: 429s, each retried after its Retry-After
            assert client.list_tasks() == []
        client.close()
    with served_in_process(data_dir, ServiceSettings(rate_per_token=(0.001, 1))) as url:
        client = Aesoperator(url=url, token=token)
        client.list_tasks()
        with pytest.raises(UserError, match=r"429: rate limited.*retry after \d+ s"):
            client.list_tasks()  # Retry-After far over what is worth waiting: said at once
        client.close()


def test_a_body_over_the_limit_is_refused_clearly(client: Aesoperator) -> None:
    with pytest.raises(ValidationError, match="413"):
        client.memory.set("big", "x" * (2 * 1024 * 1024))
    assert "big" not in client.memory


def test_another_projects_executions_and_memory_are_not_found(
    server: Served, client: Aesoperator
) -> None:
    result = client.execute_task(Task(name="echo", inputs={"mine": True}), timeout=60)
    client.memory.set("only-here", 1)
    token = make_token(server.data_dir, "stranger", "--project", "other")
    with server.client(token=token) as stranger:
        with pytest.raises(NotFoundError):
            stranger.get_task_status(result.execution_id)
        with pytest.raises(NotFoundError):
            stranger.cancel_task(result.execution_id)
        assert result.execution_id not in [s.id for s in stranger.list_tasks()]
        assert "only-here" not in stranger.memory


def test_replay_answers_as_the_local_client_does(client: Aesoperator, tmp_path: Path) -> None:
    result = client.execute_task(Task(name="echo"), timeout=60)
    with Aesoperator(data_dir=tmp_path / "local", isolation="inline") as local:
        local.handler("echo")(lambda ctx: {})
        mine = local.execute_task(Task(name="echo"), timeout=60)
        with pytest.raises(AesoperatorError) as here:
            local.replay(mine.execution_id)
    with pytest.raises(AesoperatorError) as there:
        client.replay(result.execution_id)
    assert type(there.value) is type(here.value)
    assert str(there.value) == str(here.value).replace(mine.execution_id, result.execution_id)


def test_secrets_reach_the_server_and_no_result(client: Aesoperator) -> None:
    value = "correct horse battery staple"
    task = Task(name="has_secret", inputs={"name": "pw"}, secrets={"pw": value})
    result = client.execute_task(task, timeout=60)
    assert result.data == {"has": True}
    assert value not in client.get_task_status(result.execution_id).model_dump_json()


def test_webhook_defaults_of_a_remote_client_sign_the_end_of_its_tasks(server: Served) -> None:
    """``webhook_url``/``webhook_secret`` given to a remote client travel with each task (the
    secret is never stored server-side), and the server's delivery is signed with it."""
    import threading
    from http.server import ThreadingHTTPServer

    from aesoperator.skills.monitor._webhooks import verify
    from serving import QuietHandler, running

    got: list[tuple[bytes, str, str]] = []
    arrived = threading.Event()

    class Receiver(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            head = self.headers
            got.append((body, head["X-Aesoperator-Timestamp"], head["X-Aesoperator-Signature"]))
            self.reply(204, b"", "text/plain")
            arrived.set()

    with running(ThreadingHTTPServer(("127.0.0.1", 0), Receiver)) as receiver:
        hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        with Aesoperator(
            url=server.url, token=server.token, webhook_url=hook, webhook_secret="k3y-for-tests"
        ) as remote:
            task = Task(name="echo", inputs={"a": 1}, config={"allow_private_network": True})
            result = remote.execute_task(task, timeout=60)
        assert arrived.wait(30), "no webhook delivery"
    body, ts, signature = got[0]
    assert result.execution_id.encode() in body
    assert verify("k3y-for-tests", body, ts, signature)
    assert not verify("another-key", body, ts, signature)
