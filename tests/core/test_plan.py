"""Explicit plans: steps with arguments, references between them, errors before running."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from aesoperator import Aesoperator, Plan, Task, TaskConfig, UserError, ValidationError
from serving import QuietHandler, running


class _Site(QuietHandler):
    def do_GET(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        body = (
            b"<html><head><title>Release notes</title></head><body><article><h1>Release notes"
            b"</h1><p>Version 2 adds streaming exports. It also fixes a crash when a file is "
            b"empty. Upgrading takes one command and keeps every setting.</p></article>"
            b"<a href='/older'>older notes</a></body></html>"
        )
        self.reply(200, body)


@pytest.fixture(scope="module")
def site() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.hits = 0  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}/notes"  # type: ignore[attr-defined]
    with running(server):
        yield server


LOCAL = TaskConfig(allowed_domains=["127.0.0.1"], allow_private_network=True, max_pages=5)


def test_a_plan_runs_its_steps_with_references(inline: Aesoperator, site: Any) -> None:
    @inline.function
    def shout(text: str) -> str:
        return text.upper()

    task = Task(
        name="release_watch",
        inputs={"url": site.url},
        config=LOCAL,
        memory_scope="permanent",
        plan=[
            {"action": "fetch", "args": {"url": "${url}"}, "save_as": "page"},
            {"action": "memory_set", "args": {"key": "title", "value": "${page.title}"}},
            {"action": "shout", "args": {"text": "new: ${page.title}"}, "save_as": "headline"},
            {"action": "summarize", "args": {"text": "${page.text}", "max_length": 80}},
        ],
    )
    assert isinstance(task.plan, Plan) and len(task.plan.steps) == 4
    result = inline.execute_task(task)
    assert result.planner == "plan"
    assert 0 < len(result.content) <= 80
    assert result.data["outputs"]["headline"] == "NEW: RELEASE NOTES"
    assert result.data["outputs"]["page"]["status"] == 200
    names = [a.name.split()[0] for a in result.actions]  # steps, with the web layer's own
    order = [names.index(step) for step in ("fetch", "memory_set", "shout", "summarize")]
    assert order == sorted(order)
    assert result.pages_visited == 1
    status = inline.get_task_status(result.execution_id)
    assert status.progress == 100
    from aesoperator.store.memory import Memory

    assert Memory(inline._store, "task:release_watch").get("title") == "Release notes"


def test_unknown_actions_are_refused_before_anything_runs(inline: Aesoperator, site: Any) -> None:
    before = site.hits
    bad = Task(
        name="bad_plan",
        config=LOCAL,
        plan=[
            {"action": "fetch", "args": {"url": site.url}},
            {"action": "sendmail", "args": {"to": "x"}},
        ],
    )
    with pytest.raises(ValidationError, match=r"steps\[1\]\.action: got 'sendmail'"):
        inline.execute_task(bad)
    assert site.hits == before
    assert inline.list_tasks(name="bad_plan") == []


def test_bad_references_and_arguments_fail_with_the_step_named(inline: Aesoperator) -> None:
    with pytest.raises(UserError, match=r"steps\[0\] \(memory_get\).*\$\{nothing\}"):
        inline.execute_task(
            Task(name="bad_ref", plan=[{"action": "memory_get", "args": {"key": "${nothing}"}}])
        )
    with pytest.raises(ValidationError, match=r"steps\[0\] \(memory_set\): bad arguments"):
        inline.execute_task(
            Task(name="bad_args", plan=[{"action": "memory_set", "args": {"keyy": "k"}}])
        )
    with pytest.raises(ValidationError, match=r"Task.plan.steps"):
        Task(name="empty", plan=[])


def test_a_plan_step_obeys_the_policy(inline: Aesoperator, site: Any) -> None:
    from aesoperator import PolicyViolation

    before = site.hits
    with pytest.raises(PolicyViolation):
        inline.execute_task(
            Task(name="no_private", plan=[{"action": "fetch", "args": {"url": site.url}}])
        )
    assert site.hits == before
