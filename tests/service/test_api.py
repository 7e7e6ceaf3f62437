"""The HTTP API against a real uvicorn server: auth, projects, errors, tasks, memory, files."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service._api import Served, serving
from waiting import eventually

ENDPOINTS: list[tuple[str, str]] = [
    ("POST", "/v1/tasks"),
    ("GET", "/v1/tasks"),
    ("GET", "/v1/tasks/{id}"),
    ("POST", "/v1/tasks/{id}/cancel"),
    ("GET", "/v1/tasks/{id}/result"),
    ("GET", "/v1/tasks/{id}/events"),
    ("GET", "/v1/tasks/{id}/alerts"),
    ("GET", "/v1/tasks/{id}/artifacts"),
    ("GET", "/v1/tasks/{id}/artifacts/report.txt"),
    ("POST", "/v1/tasks/{id}/replay"),
    ("POST", "/v1/tasks/{id}/rerun"),
    ("GET", "/v1/memory/global"),
    ("GET", "/v1/memory/global/k"),
    ("PUT", "/v1/memory/global/k"),
    ("DELETE", "/v1/memory/global/k"),
    ("GET", "/v1/handlers"),
]
BY_ID = [e for e in ENDPOINTS if "{id}" in e[1]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("api")) as served:
        yield served


@pytest.fixture(scope="module")
def token(served: Served) -> str:
    return served.token("run")


@pytest.fixture(scope="module")
def finished(served: Served, token: str) -> dict[str, Any]:
    """A completed execution of the default project that wrote an artifact."""
    status = served.submit(token, "files", wait=True)
    assert status["state"] == "completed", status
    return status


def _call(http: httpx.Client, method: str, path: str, eid: str) -> httpx.Response:
    body: Any = {"value": 1} if method == "PUT" else ({} if method == "POST" else None)
    if path == "/v1/tasks":
        body = {"name": "echo"}
    return http.request(method, path.format(id=eid), json=body)


def test_health_checks_need_no_token(served: Served) -> None:
    with served.http() as http:
        assert http.get("/healthz").json() == {"ok": True}
        assert http.get("/readyz").json()["ready"] is True


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_no_token_and_a_revoked_one(
    served: Served, finished: dict[str, Any], method: str, path: str
) -> None:
    revoked = served.token("admin")
    served.revoke(revoked)
    for token in (None, revoked, "aesop_" + "x" * 43, "not-even-a-token"):
        with served.http(token) as http:
            answer = _call(http, method, path, finished["id"])
        assert answer.status_code == 401, (token, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers["content-type"] == "application/problem+json"
        assert "aesop token create" in answer.json()["detail"]


@pytest.mark.parametrize(("method", "path"), BY_ID)
def test_another_projects_ids_are_not_found(
    served: Served, finished: dict[str, Any], method: str, path: str
) -> None:
    stranger = served.token("admin", project="elsewhere")
    with served.http(stranger) as http:
        answer = _call(http, method, path, finished["id"])
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_another_project_lists_nothing_of_this_one(
    served: Served, finished: dict[str, Any]
) -> None:
    with served.http(served.token("read", project="empty")) as http:
        assert http.get("/v1/tasks").json() == {"items": [], "next_cursor": None}


def test_a_read_token_reads_and_cannot_write(served: Served, finished: dict[str, Any]) -> None:
    with served.http(served.token("read")) as http:
        assert http.get(f"/v1/tasks/{finished['id']}").status_code == 200
        for method, path in [e for e in ENDPOINTS if e[0] != "GET"]:
            answer = _call(http, method, path, finished["id"])
            assert answer.status_code == 403, (path, answer.text)
            assert "--scope run" in answer.json()["detail"]


def test_submit_wait_and_read_the_result(served: Served, token: str) -> None:
    with served.http(token) as http:
        answer = http.post(
            "/v1/tasks", params={"wait": "true"}, json={"name": "echo", "inputs": {"a": [1, 2]}}
        )
        assert answer.status_code == 200, answer.text
        status = answer.json()
        assert answer.headers["location"] == f"/v1/tasks/{status['id']}"
        assert status["state"] == "completed" and status["result"]["data"] == {"a": [1, 2]}
        result = http.get(f"/v1/tasks/{status['id']}/result").json()
        assert result["data"] == {"a": [1, 2]} and result["execution_id"] == status["id"]
        one = http.get(f"/v1/tasks/{status['id']}").json()
        assert one["state"] == "completed" and one["result"]["data"] == {"a": [1, 2]}


def test_not_waited_is_201_and_cancel_ends_it(served: Served, token: str) -> None:
    with served.http(token) as http:
        answer = http.post("/v1/tasks", json={"name": "slow", "inputs": {"seconds": 60}})
        assert answer.status_code == 201
        eid = answer.json()["id"]
        conflict = http.get(f"/v1/tasks/{eid}/result")
        assert conflict.status_code == 409
        assert conflict.json()["execution"]["id"] == eid
        assert "wait for it" in conflict.json()["detail"]
        cancelled = http.post(f"/v1/tasks/{eid}/cancel").json()
        assert cancelled["cancelled"] is True
        eventually(lambda: http.get(f"/v1/tasks/{eid}").json()["state"] == "cancelled")
        assert http.post(f"/v1/tasks/{eid}/cancel").json()["cancelled"] is False
        gone = http.get(f"/v1/tasks/{eid}/result")
        assert gone.status_code == 409 and gone.json()["execution"]["state"] == "cancelled"
        assert gone.json()["status"] == 409 and gone.json()["error"] == "TaskCancelled"


def test_rerun_submits_the_same_task_again_in_the_callers_project(
    served: Served, token: str
) -> None:
    first = served.submit(token, "echo", wait=True, a=1, b=["x"])
    with served.http(token) as http:
        again = http.post(f"/v1/tasks/{first['id']}/rerun", params={})
        assert again.status_code == 201, again.text
        new_id = again.json()["id"]
        assert new_id != first["id"] and again.json()["name"] == "echo"
        eventually(lambda: http.get(f"/v1/tasks/{new_id}").json()["state"] == "completed")
        assert http.get(f"/v1/tasks/{new_id}/result").json()["data"] == {"a": 1, "b": ["x"]}
    with served.http(served.token("run", "elsewhere")) as http:
        assert http.post(f"/v1/tasks/{first['id']}/rerun").status_code == 404
    with served.http(served.token("read")) as http:
        assert http.post(f"/v1/tasks/{first['id']}/rerun").status_code == 403


def test_a_failed_task_result_is_409_with_its_error(served: Served, token: str) -> None:
    status = served.submit(token, "boom", wait=True)
    assert status["state"] == "failed"
    with served.http(token) as http:
        answer = http.get(f"/v1/tasks/{status['id']}/result")
    assert answer.status_code == 409 and "it broke" in answer.json()["detail"]
    assert answer.json()["execution"]["error"]["message"] == status["error"]["message"]
    # the Python exception's class, for a remote client to raise the same one
    assert answer.json()["error"] == status["error"]["type"] and answer.json()["status"] == 409


def test_unregistered_handler_is_422_listing_what_is_registered(served: Served, token: str) -> None:
    with served.http(token) as http:
        answer = http.post("/v1/tasks", json={"name": "no_such_handler", "inputs": {"x": 1}})
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert "echo" in detail and "ticker" in detail, detail
        listed = http.get("/v1/handlers").json()
    assert {"echo", "ticker", "slow"} <= set(listed["handlers"])
    assert "research" in listed["skills"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", "body"),
        (b'{"name": 5}', "name"),
        (b'{"name": "echo", "config": {"max_pages": "many"}}', "max_pages"),
        (b'{"name": "echo", "inputs": []}', "inputs"),
        (b"[]", "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
    ],
)
def test_malformed_and_wrong_types_are_422_naming_the_field(
    served: Served, token: str, body: bytes, where: str
) -> None:
    with served.http(token) as http:
        answer = http.post("/v1/tasks", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == answer.status_code
    assert where in problem["detail"] + str(problem.get("field")), problem


def test_json_sent_as_a_form_says_to_set_the_content_type(served: Served, token: str) -> None:
    """What `curl -d '{...}'` sends (a form body): the answer names the header to set."""
    with served.http(token) as http:
        answer = http.post(
            "/v1/tasks",
            content=b'{"name": "echo"}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 422
    assert "Content-Type: application/json" in answer.json()["detail"], answer.text


def test_a_validation_message_is_the_python_apis(served: Served, token: str) -> None:
    from aesoperator import Task, ValidationError

    bad = {"name": "echo", "config": {"allowed_domains": ["https://x.org/a"]}}
    with pytest.raises(ValidationError) as local:
        Task.model_validate(bad)
    with served.http(token) as http:
        answer = http.post("/v1/tasks", json=bad)
    assert answer.status_code == 422
    assert answer.json()["detail"] == str(local.value)
    assert answer.json()["fix"] and "allowed_domains" in answer.json()["fix"]


def test_a_20_mb_body_is_413_declared_or_chunked(served: Served, token: str) -> None:
    big = b'{"name": "echo", "inputs": {"x": "' + b"a" * (20 * 1024 * 1024) + b'"}}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with served.http(token) as http:
        declared = http.post("/v1/tasks", content=big, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413, declared.text
        assert "limit" in declared.json()["detail"]
        try:
            chunked = http.post(
                "/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError:  # the server may answer and close before all is sent
            pass
        else:
            assert chunked.status_code == 413, chunked.text
        assert http.get("/v1/tasks", params={"limit": 1}).status_code == 200  # still serving


def test_list_filters_and_pages(served: Served) -> None:
    token = served.token("run", project="lists")
    ids = [served.submit(token, "echo", wait=True, i=i)["id"] for i in range(3)]
    served.submit(token, "boom", wait=True)
    with served.http(token) as http:
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 2, "name": "echo"}
        while True:
            page = http.get("/v1/tasks", params=params).json()
            assert all(item["result"] is None for item in page["items"])
            seen += [item["id"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == ids[::-1]
        failed = http.get("/v1/tasks", params={"state": "failed"}).json()["items"]
        assert [s["name"] for s in failed] == ["boom"]
        bad = http.get("/v1/tasks", params={"state": "sleeping"})
        assert bad.status_code == 422 and bad.json()["field"] == "query.state"
        assert http.get("/v1/tasks", params={"cursor": "zzz"}).status_code == 422
        future = http.get("/v1/tasks", params={"since": "2999-01-01T00:00:00Z"}).json()
        assert future["items"] == []


def test_artifacts_list_and_download(served: Served, token: str, finished: dict[str, Any]) -> None:
    eid = finished["id"]
    with served.http(token) as http:
        listed = http.get(f"/v1/tasks/{eid}/artifacts").json()
        assert {"name": "report.txt", "media_type": "text/plain", "size": 10} in listed
        got = http.get(f"/v1/tasks/{eid}/artifacts/report.txt")
        assert got.status_code == 200 and got.text == "the report"
        # files in folders keep their relative name, as ctx.add_file kept it
        nested = [a for a in listed if "/" in a["name"]]
        assert nested, listed
        got = http.get(f"/v1/tasks/{eid}/artifacts/{nested[0]['name']}")
        assert got.status_code == 200 and len(got.content) == nested[0]["size"]


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "%2E%2E",
        "..%2F..%2Faesoperator.sqlite3",
        "nested/..%2F..%2Faesoperator.sqlite3",
        "nested/.%2Finner.txt",
        "nested//inner.txt",
        "%2Fetc%2Fpasswd",
        "..%5C..%5Caesoperator.sqlite3",
        "report.txt%00.png",
        "nested",
        "missing.txt",
    ],
)
def test_artifact_names_cannot_escape(
    served: Served, token: str, finished: dict[str, Any], name: str
) -> None:
    # A raw request: an HTTP client would normalise the path before sending it.
    host, port = served.url.removeprefix("http://").split(":")
    request = (
        f"GET /v1/tasks/{finished['id']}/artifacts/{name} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"404", answer[:300]
    assert b"SQLite" not in answer and b"inside" not in answer and b"root:" not in answer


def test_memory_put_get_delete_and_isolation(served: Served) -> None:
    acme, other = served.token("run", "acme"), served.token("run", "other")
    with served.http(acme) as http:
        assert http.put("/v1/memory/global/k", json={"value": {"n": [1]}}).status_code == 204
        assert http.get("/v1/memory/global/k").json() == {"key": "k", "value": {"n": [1]}}
        assert http.get("/v1/memory/global").json() == {"keys": ["k"]}
    with served.http(other) as http:
        assert http.get("/v1/memory/global/k").status_code == 404
        assert http.get("/v1/memory/global").json() == {"keys": []}
        assert http.get("/v1/memory/project:acme%2Fglobal/k").status_code == 404
    assert served.client.memory.get("k") is None  # the local API's default project
    with served.http(acme) as http:
        assert http.delete("/v1/memory/global/k").status_code == 204
        assert http.delete("/v1/memory/global/k").status_code == 404
        assert http.get("/v1/memory/global/k").status_code == 404
        bad = http.put("/v1/memory/global/k", json={"nope": 1})
        assert bad.status_code == 422


def test_a_task_over_http_writes_its_projects_memory(served: Served) -> None:
    token = served.token("run", "tenant")
    with served.http(token) as http:
        status = http.post(
            "/v1/tasks",
            params={"wait": "true"},
            json={"name": "remember", "inputs": {"key": "seen", "value": 7},
                  "memory_scope": "permanent"},
        ).json()  # fmt: skip
        assert status["state"] == "completed", status
        assert http.get("/v1/memory/task:remember/seen").json()["value"] == 7
    with served.http(served.token("run")) as http:  # the default project: not there
        assert http.get("/v1/memory/task:remember/seen").status_code == 404
    assert served.client._memory("task:remember").get("seen") is None


def test_session_memory_of_another_projects_execution_is_not_found(
    served: Served, finished: dict[str, Any]
) -> None:
    with served.http(served.token("run", "snoop")) as http:
        assert http.get(f"/v1/memory/exec:{finished['id']}").status_code == 404


def test_replay_of_an_execution_without_a_trace_is_a_clear_error(
    served: Served, token: str, finished: dict[str, Any]
) -> None:
    with served.http(token) as http:
        answer = http.post(f"/v1/tasks/{finished['id']}/replay", json={})
        assert answer.status_code < 500, answer.text
        if answer.status_code == 201:  # accepted: it fails with the replay's own error
            eid = answer.json()["id"]
            eventually(lambda: http.get(f"/v1/tasks/{eid}").json()["state"] == "failed")
        assert http.post(f"/v1/tasks/{finished['id']}/replay", json={"bad": 1}).status_code == 422


def test_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    from aesoperator.service import ServiceSettings

    with serving(tmp_path, ServiceSettings(rate_per_token=(0.5, 3))) as served:
        token, spare = served.token("read"), served.token("read")
        with served.http(token) as http:
            codes = [http.get("/v1/handlers").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            limited = http.get("/v1/handlers")
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        with served.http(spare) as http:  # per token: another one is not limited
            assert http.get("/v1/handlers").status_code == 200


def test_cors_is_off_unless_configured(served: Served, token: str, tmp_path: Path) -> None:
    from aesoperator.service import ServiceSettings

    origin = {"Origin": "https://evil.example"}
    with served.http(token) as http:
        answer = http.get("/v1/handlers", headers=origin)
        assert "access-control-allow-origin" not in answer.headers
    allowed = ServiceSettings(cors_origins=("https://ui.example",))
    with serving(tmp_path, allowed) as other, other.http(other.token()) as http:
        ok = http.get("/v1/handlers", headers={"Origin": "https://ui.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ui.example"
        evil = http.get("/v1/handlers", headers=origin)
        assert "access-control-allow-origin" not in evil.headers
