"""The LLM planner never sends a secret to the model or its trace, in any encoding.

A GET login form puts the password in the URL (form-encoded, as Chromium sends it); the model
then writes the real value itself, in its text and in a tool's arguments. Every request the
provider received, the trace (recording and replay), the timeline and the result are checked
by decoding them, not by looking for one spelling.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from llm_protocol import ModelServer
from llm_support import local

from aesoperator import Aesoperator, Task, TaskResult
from aesoperator.models import call, ref_of
from aesoperator.planning.llm import replay_task
from secret_forms import ODD, leaks
from serving import QuietHandler, running

pytestmark = pytest.mark.browser


class _GetLogin(QuietHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/signin?"):
            self.server.signins.append(self.path)  # type: ignore[attr-defined]
            self.reply(200, "<title>Account</title><h1>Signed in</h1><p>Welcome, ada</p>")
            return
        self.reply(200, (
            "<title>Log in</title><form method='get' action='/signin'>"
            "<label for='u'>Username</label> <input id='u' name='user'>"
            "<label for='p'>Password</label> <input id='p' name='password' type='password'>"
            "<button type='submit'>Sign in</button></form>"
        ))  # fmt: skip


@pytest.fixture
def get_login() -> Iterator[Any]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _GetLogin)
    srv.signins = []  # type: ignore[attr-defined]
    with running(srv, poll_interval=0.05):
        yield srv


def _trace(result: TaskResult) -> Any:
    path = next(f.path for f in result.files if f.name == "llm_trace.json")
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_password_in_a_get_url_and_written_by_the_model_never_reaches_it(
    aesop: Aesoperator, model: ModelServer, get_login: Any
) -> None:
    url = f"http://127.0.0.1:{get_login.server_address[1]}/"
    model.reset([
        call("navigate", url=url),
        lambda obs: [
            call("type", ref=ref_of(obs, '"Username"'), text="ada"),
            call("type", ref=ref_of(obs, '"Password"'), text="{{secret:pw}}"),
            call("click", ref=ref_of(obs, '"Sign in"')),
        ],
        f"I am signed in; for the record the password was {ODD}.",  # the model's own text
        call("wait_for", text=f"password {ODD}", seconds=0.2),  # ... and its tool arguments
        lambda obs: call("finish", result=obs.split("URL: ")[1].split("\n")[0]),
    ])  # fmt: skip
    secrets = {"pw": ODD}
    result = aesop.execute_task(Task(name="get_login", config=local(), secrets=secrets))
    assert ODD.encode() not in b"".join(s.encode() for s in get_login.signins)  # encoded ...
    assert any("password=" in s for s in get_login.signins)  # ... but the browser sent it
    bodies = model.requests()
    assert len(bodies) == 5
    assert [leaks(b, ODD) for b in bodies] == [[]] * 5
    assert result.content.endswith("/signin?user=ada&password={{secret:pw}}")  # as it saw it
    # The model's own turns are still in its history, with the placeholder for the value.
    said = [m for m in bodies[-1]["messages"] if m["role"] == "assistant"]
    assert any("the password was {{secret:pw}}" in (m["content"] or "") for m in said)
    args = [c["function"]["arguments"] for m in said for c in m.get("tool_calls") or []]
    assert any("password {{secret:pw}}" in a for a in args)
    assert leaks(_trace(result), ODD) == []
    events = [e.model_dump(mode="json") for e in aesop.get_events(result.execution_id)]
    assert leaks([events, result.model_dump(mode="json")], ODD) == []

    model.reset([])
    again = aesop.execute_task(replay_task(result.execution_id, config=local(), secrets=secrets))
    assert len(get_login.signins) == 2 and model.bodies == []  # replayed, no model
    assert leaks(_trace(again), ODD) == []
    events = [e.model_dump(mode="json") for e in aesop.get_events(again.execution_id)]
    assert leaks([events, again.model_dump(mode="json")], ODD) == []
