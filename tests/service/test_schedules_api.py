"""/v1/schedules on the served app (admin scope, projects), the scheduler it runs, and the
server-wide webhook settings."""

from __future__ import annotations

import hashlib
import hmac
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator
from aesoperator.errors import UserError
from aesoperator.service import ServiceSettings
from aesoperator.service.serve import build_app
from waiting import eventually

sys.path.insert(0, str(Path(__file__).parent))  # for _sched, _api (tests use importlib mode)
from _sched import Receiver, served_app

SECRET = "server-secret-0123"


def test_schedules_crud_scopes_and_projects(tmp_path: Path) -> None:
    with served_app(tmp_path, ServiceSettings(schedules=False)) as served:
        admin, other = served.token("admin"), served.token("admin", project="beta")
        body = {"cron": "*/5 * * * *", "task": {"name": "echo", "inputs": {"a": 1}}}
        with served.http() as anon:
            answer = anon.post("/v1/schedules", json=body)
            assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        with served.http(served.token("run")) as runner:
            assert runner.get("/v1/schedules").status_code == 403
            assert runner.post("/v1/schedules", json=body).status_code == 403
        with served.http(admin) as http:
            created = http.post("/v1/schedules", json=body)
            assert created.status_code == 201, created.text
            schedule = created.json()
            assert {"id", "cron", "task", "allow_overlap", "next_run_at", "last_run_at",
                    "missed"} <= set(schedule)  # fmt: skip
            assert schedule["task"]["inputs"] == {"a": 1} and schedule["allow_overlap"] is False
            assert schedule["last_run_at"] is None and schedule["missed"] == 0
            assert [s["id"] for s in http.get("/v1/schedules").json()] == [schedule["id"]]
        with served.http(other) as theirs:
            assert theirs.get("/v1/schedules").json() == []
            gone = theirs.delete(f"/v1/schedules/{schedule['id']}")
            assert gone.status_code == 404 and gone.headers["content-type"].startswith(
                "application/problem+json"
            )
        with served.http(admin) as http:
            assert http.delete(f"/v1/schedules/{schedule['id']}").status_code == 204
            assert http.delete(f"/v1/schedules/{schedule['id']}").status_code == 404
            assert http.get("/v1/schedules").json() == []


def test_bad_schedules_are_problems_naming_the_field(tmp_path: Path) -> None:
    settings = ServiceSettings(schedules=False)
    with served_app(tmp_path, settings) as served, served.http(served.token("admin")) as http:
        bad_cron = http.post("/v1/schedules", json={"cron": "61 * * * *", "task": {"name": "echo"}})
        problem = bad_cron.json()
        assert bad_cron.status_code == 422 and problem["field"] == "cron"
        assert "minute field '61': must be 0-59" in problem["detail"]
        assert problem["value"] == "61 * * * *"
        bad_hook = http.post(
            "/v1/schedules",
            json={"cron": "@daily", "task": {"name": "echo", "webhook_url": "ftp://x/y"}},
        )
        assert bad_hook.status_code == 422 and "webhook_url" in bad_hook.json()["detail"]
        secret = http.post(
            "/v1/schedules",
            json={"cron": "@daily", "task": {"name": "echo", "secrets": {"pw": "hunter22"}}},
        )
        assert secret.status_code == 400 and "task.secrets" in secret.json()["detail"]
        assert "hunter22" not in secret.text
        wrong = http.post("/v1/schedules", json={"cron": 5, "task": []})
        assert wrong.status_code == 422
        assert http.get("/v1/schedules").json() == []


def test_the_served_scheduler_runs_due_schedules_in_their_project(tmp_path: Path) -> None:
    with served_app(tmp_path) as served:
        admin = served.token("admin", project="beta")
        body = {"cron": "@hourly", "task": {"name": "echo", "inputs": {"b": 2}}}
        with served.http(admin) as http:
            sid = http.post("/v1/schedules", json=body).json()["id"]
            later = datetime.now(UTC) + timedelta(hours=1, minutes=1)
            served.app.state.scheduler.now = lambda: later  # the clock seam

            def ran() -> str:
                [schedule] = http.get("/v1/schedules").json()
                assert schedule["id"] == sid and schedule["last_execution_id"], schedule
                return str(schedule["last_execution_id"])

            run = eventually(ran, what="the scheduled run")
            status = eventually(
                lambda: (s := http.get(f"/v1/tasks/{run}").json())["state"] == "completed" and s
            )
            assert status["result"]["data"] == {"b": 2}
        with served.http(served.token("admin")) as default_project:
            assert default_project.get(f"/v1/tasks/{run}").status_code == 404


def test_server_wide_webhook_settings(tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        settings = ServiceSettings(webhook_url=receiver.url, webhook_secret=SECRET)
        with served_app(tmp_path, settings) as served:
            token = served.token("run")
            task: dict[str, Any] = {"name": "echo", "config": {"allow_private_network": True}}
            with served.http(token) as http:
                answer = http.post("/v1/tasks", params={"wait": "true"}, json=task)
                assert answer.status_code == 200, answer.text
                run = answer.json()["id"]
            eventually(lambda: len(receiver.requests) == 1)
    finally:
        receiver.close()
    post = receiver.requests[0]
    assert post.json["execution_id"] == run and post.json["state"] == "completed"
    ts = post.headers["x-aesoperator-timestamp"]
    mac = hmac.new(SECRET.encode(), ts.encode() + b"." + post.body, hashlib.sha256)
    assert post.headers["x-aesoperator-signature"] == "sha256=" + mac.hexdigest()


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (ServiceSettings(webhook_url="ftp://hooks.example.org/x", webhook_secret=SECRET),
         "webhook_url: got 'ftp://hooks.example.org/x'; scheme 'ftp' is not allowed"),
        (ServiceSettings(webhook_url="https://a:hunter22@hooks.example.org/x",
                         webhook_secret=SECRET), "credentials"),
        (ServiceSettings(webhook_url="https://hooks.example.org/x"),
         "webhook_secret: none for the server-wide webhook_url"),
    ],
)  # fmt: skip
def test_bad_server_webhook_settings_are_refused_at_start(
    tmp_path: Path, settings: ServiceSettings, words: str
) -> None:
    client = Aesoperator(data_dir=tmp_path, isolation="inline")
    with client, pytest.raises(UserError) as info:
        build_app(client, settings)
    assert words in str(info.value) and "hunter22" not in str(info.value)
