"""Events over HTTP: the JSON page and the live, resumable event stream."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service._api import Served, serving
from waiting import eventually

SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("events")) as served:
        yield served


@pytest.fixture(scope="module")
def token(served: Served) -> str:
    return served.token("run")


def frames(answer: httpx.Response) -> Iterator[dict[str, Any]]:
    """The stream's frames as {"id", "event", "data"} ({"comment"} for a ping)."""
    frame: dict[str, Any] = {}
    for line in answer.iter_lines():
        if not line:
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            field, _, value = line.partition(": ")
            frame[field] = json.loads(value) if field == "data" else value


def stored(served: Served, token: str, eid: str) -> list[int]:
    with served.http(token) as http:
        page = http.get(f"/v1/tasks/{eid}/events", params={"limit": 1000}).json()
    return [e["seq"] for e in page["items"]]


def hub_watched(served: Served) -> int:
    return int(served.app.state.aesop.hub.watched)


def test_json_page_and_next_after(served: Served, token: str) -> None:
    status = served.submit(token, "ticker", wait=True, n=5, pause=0)
    with served.http(token) as http:
        first = http.get(f"/v1/tasks/{status['id']}/events", params={"limit": 3}).json()
        assert len(first["items"]) == 3 and first["next_after"] == first["items"][-1]["seq"]
        rest = http.get(
            f"/v1/tasks/{status['id']}/events", params={"after": first["next_after"]}
        ).json()
    kinds = [e["kind"] for e in first["items"] + rest["items"]]
    assert kinds.count("tick") == 5 and kinds[-1] == "state"
    assert rest["next_after"] == rest["items"][-1]["seq"]


def test_the_live_stream_sends_every_event_status_changes_then_end(
    served: Served, token: str
) -> None:
    eid = served.submit(token, "ticker", n=25, pause=0.03)["id"]
    seen: list[int] = []
    statuses: list[dict[str, Any]] = []
    with (
        served.http(token) as http,
        http.stream("GET", f"/v1/tasks/{eid}/events", headers=SSE) as answer,
    ):
        assert answer.headers["content-type"].startswith("text/event-stream")
        for frame in frames(answer):
            if frame.get("event") == "status":
                assert "id" not in frame and frame["data"]["result"] is None
                statuses.append(frame["data"])
            elif frame.get("event") == "end":
                end = frame["data"]
                break
            elif "id" in frame:
                assert int(frame["id"]) == frame["data"]["seq"]
                assert frame["event"] == frame["data"]["kind"]
                seen.append(frame["data"]["seq"])
    assert end["state"] == "completed" and end["result"]["content"] == "ticked 25"
    assert seen == stored(served, token, eid)  # every one, in order, once
    progress = [s["progress"] for s in statuses]
    assert progress == sorted(progress) and len(statuses) >= 2
    eventually(lambda: hub_watched(served) == 0, what="the poller ended with its execution")


def test_resume_after_a_dropped_connection_loses_no_event(served: Served, token: str) -> None:
    eid = served.submit(token, "ticker", n=40, pause=0.03)["id"]
    seen: list[int] = []
    with served.http(token) as http:
        with http.stream("GET", f"/v1/tasks/{eid}/events", headers=SSE) as answer:
            for frame in frames(answer):
                if "id" in frame:
                    seen.append(int(frame["id"]))
                if len(seen) == 5:
                    break  # the connection drops here
        resume = {**SSE, "Last-Event-ID": str(seen[-1])}
        with http.stream("GET", f"/v1/tasks/{eid}/events", headers=resume) as answer:
            for frame in frames(answer):
                if "id" in frame:
                    seen.append(int(frame["id"]))
                if frame.get("event") == "end":
                    break
        again = http.get(f"/v1/tasks/{eid}/events", headers={**SSE, "Last-Event-ID": "0"})
        bad = http.get(f"/v1/tasks/{eid}/events", headers={**SSE, "Last-Event-ID": "x"})
    assert seen == stored(served, token, eid)
    assert again.text.count("\nevent: tick\n") == 40  # finished: the backlog, then end
    assert again.text.rstrip().split("\n")[-2] == "event: end"
    assert bad.status_code == 422 and bad.json()["field"] == "Last-Event-ID"


def test_many_subscribers_share_one_poller_which_ends_when_they_leave(
    served: Served, token: str
) -> None:
    eid = served.submit(token, "slow", seconds=60)["id"]
    started = threading.Barrier(21)
    ends: list[str] = []

    def follow() -> None:
        with (
            served.http(token) as http,
            http.stream("GET", f"/v1/tasks/{eid}/events", headers=SSE) as answer,
        ):
            started.wait()
            for frame in frames(answer):
                if frame.get("event") == "end":
                    ends.append(frame["data"]["state"])
                    return

    threads = [threading.Thread(target=follow) for _ in range(20)]
    for thread in threads:
        thread.start()
    started.wait(timeout=60)
    eventually(lambda: hub_watched(served) == 1)
    with served.http(token) as http:
        assert http.post(f"/v1/tasks/{eid}/cancel").json()["cancelled"] is True
    for thread in threads:
        thread.join(60)
    assert ends == ["cancelled"] * 20
    eventually(lambda: hub_watched(served) == 0)


def test_a_subscriber_leaving_early_ends_the_poller(served: Served, token: str) -> None:
    eid = served.submit(token, "slow", seconds=60)["id"]
    with served.http(token) as http:
        with http.stream("GET", f"/v1/tasks/{eid}/events", headers=SSE) as answer:
            # Held in a name: a generator dropped after next() closes the response, and the
            # server, seeing the client gone, would end the poller before the check below.
            stream = frames(answer)
            next(f for f in stream if f.get("event") == "status")
            watches = served.app.state.aesop.hub._watches
            assert eid in watches
        eventually(lambda: eid not in watches, what="the poller stopped")
        http.post(f"/v1/tasks/{eid}/cancel")


def test_keepalive_pings_an_idle_stream(tmp_path: Any) -> None:
    from aesoperator.service import ServiceSettings

    with serving(tmp_path, ServiceSettings(keepalive_seconds=1)) as served:
        token = served.token()
        eid = served.submit(token, "slow", seconds=60)["id"]
        with served.http(token) as http:
            with http.stream("GET", f"/v1/tasks/{eid}/events", headers=SSE) as answer:
                assert any(f.get("comment") == "ping" for f in frames(answer))
            http.post(f"/v1/tasks/{eid}/cancel")


def test_a_subscriber_that_stops_reading_is_cut_off_and_resumes_without_loss(
    served: Served, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that never reads must not make the server hold a busy execution's events
    in memory: past MAX_QUEUED frames its stream ends with an error naming Last-Event-ID,
    and resuming from there loses nothing."""
    import socket

    from aesoperator.service import _events

    monkeypatch.setattr(_events, "MAX_QUEUED", 20)
    status = served.submit(token, "ticker", n=3000, pause=0.001)
    host, port = served.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast: back-pressure
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET /v1/tasks/{status['id']}/events HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    with served.http(token) as http:  # read nothing until the execution has ended
        eventually(
            lambda: http.get(f"/v1/tasks/{status['id']}").json()["state"] == "completed",
            timeout=120,
        )
    sock.settimeout(30)
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    sock.close()
    ids = [int(line[4:]) for line in raw.decode().splitlines() if line.startswith("id: ")]
    assert b"event: error" in raw and b"Last-Event-ID" in raw, raw[-500:]
    every: list[int] = []
    with served.http(token) as http:  # every stored event, page by page
        while page := http.get(
            f"/v1/tasks/{status['id']}/events", params={"after": (every or [0])[-1]}
        ).json()["items"]:
            every += [e["seq"] for e in page]
    last = ids[-1] if ids else 0  # a fast execution can overflow it before its first write
    assert last < every[-1]  # cut off before the end
    with (
        served.http(token) as http,
        http.stream(
            "GET",
            f"/v1/tasks/{status['id']}/events",
            headers={**SSE, "Last-Event-ID": str(last)},
        ) as answer,
    ):
        rest = [int(f["id"]) for f in frames(answer) if "id" in f]
    assert ids + rest == every
