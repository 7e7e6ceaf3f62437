"""The LLM planner end to end: real SDK clients, scripted protocol server, real Chromium."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

import pytest
from conftest import local
from llm_protocol import ModelServer
from llm_webapp import ShopServer

from aesoperator import Aesoperator, Task
from aesoperator.models import call, ref_of

pytestmark = pytest.mark.browser

PASSWORD = "s3cret-Pa55-word!"


def login_script(shop: ShopServer) -> list[Any]:
    return [
        call("navigate", url=f"{shop.url}/login"),
        lambda obs: [
            call("type", ref=ref_of(obs, '"Username"'), text="alice"),
            call("type", ref=ref_of(obs, '"Password"'), text="{{secret:password}}"),
        ],
        lambda obs: call("click", ref=ref_of(obs, '"Sign in"')),
        lambda obs: call(
            "finish",
            result="logged in" if "Welcome, alice" in obs else "login failed",
            summary="signed in",
        ),
    ]


def test_login_with_secret_never_reaches_model_events_or_result(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    model.reset(login_script(shop))
    task = Task(
        name="shop_login",
        description="Log in to the shop as alice",
        config=local(),
        secrets={"password": PASSWORD},
    )
    execution = aesop.execute_task_async(task)
    result = execution.result(timeout=60)
    assert result.planner == "llm"
    assert result.content == "logged in"
    # The real value reached the page (the shop accepted it) ...
    sent = quote_plus(PASSWORD).encode()
    assert any(m == "POST" and sent in b for m, _, b in _raw(shop))
    # ... and never the model, the timeline or the result.
    assert PASSWORD not in model.everything()
    assert "{{secret:password}}" in model.everything()
    events = aesop.get_events(execution.id)
    assert PASSWORD not in "".join(e.model_dump_json() for e in events)
    assert PASSWORD not in result.model_dump_json()
    names = [a.name for a in result.actions]
    assert names[0].startswith("navigate ")
    assert 'click "Sign in" [' in names[-1]
    assert result.usage["llm_calls"] == 4
    assert result.usage["input_tokens"] > 0 and result.usage["cost_usd"] > 0
    trace = next(f for f in result.files if f.name == "llm_trace.json")
    assert PASSWORD not in open(trace.path, encoding="utf-8").read()


def _raw(shop: ShopServer) -> list[tuple[str, str, bytes]]:
    with shop.lock:
        return list(shop.requests)
