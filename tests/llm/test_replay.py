"""Record and replay: a recorded run again without the model, with new inputs, after changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llm_protocol import ModelServer
from llm_support import local
from llm_webapp import ShopServer

from aesoperator import Aesoperator, Task, TaskResult
from aesoperator.errors import ReplayError
from aesoperator.models import call, ref_of
from aesoperator.planning.llm import replay_task

pytestmark = pytest.mark.browser


def record(aesop: Aesoperator, shop: ShopServer, model: ModelServer) -> TaskResult:
    model.reset([
        call("navigate", url=f"{shop.url}/search"),
        lambda obs: call("type", ref=ref_of(obs, "Search products"), text="lamp", submit=True),
        lambda obs: call("click", ref=ref_of(obs, '"Desk lamp"')),
        lambda obs: call("click", ref=ref_of(obs, '"Add to cart"')),
        lambda obs: call("finish", result=obs.split("Visible text:\n")[1]),
    ])  # fmt: skip
    task = Task(name="buy", description="Put the first lamp in the cart",
                inputs={"query": "lamp"}, config=local())  # fmt: skip
    result = aesop.execute_task(task)
    assert "Desk lamp × 1" in result.content
    return result


def trace_of(result: TaskResult) -> dict[str, Any]:
    art = next(f for f in result.files if f.name == "llm_trace.json")
    data: dict[str, Any] = json.loads(Path(art.path).read_text(encoding="utf-8"))
    return data


def test_replay_runs_the_recorded_steps_without_the_model(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    first = record(aesop, shop, model)
    steps = trace_of(first)["steps"]
    assert [s["tool"] for s in steps] == ["navigate", "type", "click", "click", "finish"]
    assert steps[1]["args"]["text"] == "{{input:query}}"  # inputs recorded by placeholder
    assert steps[2]["locator"]["role"] == "link" and steps[2]["locator"]["name"] == "Desk lamp"
    assert steps[3]["locator"]["css"].endswith("button:nth-of-type(1)")

    model.reset([])  # any model call now would fail the replay
    again = aesop.execute_task(replay_task(first.execution_id, config=local()))
    assert model.bodies == []
    assert "Desk lamp × 1" in again.content
    assert again.data["steps"] == 5 and again.data["repaired"] == 0
    assert [a.name for a in again.actions][-1] == 'replay click "Add to cart"'
    assert "llm_calls" not in again.usage


def test_replay_with_new_inputs(aesop: Aesoperator, shop: ShopServer, model: ModelServer) -> None:
    first = record(aesop, shop, model)
    model.reset([])
    shop.requests.clear()
    again = aesop.execute_task(replay_task(first.execution_id, {"query": "shade"}, config=local()))
    assert model.bodies == []
    assert any(p == "/search?q=shade" for _, p, _ in shop.requests)
    # "Desk lamp" is not among the new results: the first result, by its CSS path, is used.
    assert "Lamp shade × 1" in again.content and "Desk lamp" not in again.content


def test_replay_fails_cleanly_when_the_page_changed(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    first = record(aesop, shop, model)
    shop.variant = "v2"
    model.reset([])
    execution = aesop.execute_task_async(
        replay_task(first.execution_id, config=local(), repair=False)
    )
    with pytest.raises(ReplayError) as info:  # the same class, across the process boundary
        execution.result(timeout=60)
    message = str(info.value)
    assert "failed at step 4/5 (click)" in message and "name='Add to cart'" in message
    assert "/product/1" in message and "the page has changed" in message
    assert model.bodies == []
    assert not [p for m, p, _ in shop.requests if m == "POST" and p == "/cart/add"][1:]


def test_replay_hands_a_lost_step_to_the_model_and_records_the_repair(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    first = record(aesop, shop, model)
    shop.variant = "v2"
    model.reset([lambda obs: call("click", ref=ref_of(obs, '"Buy now"'))])
    again = aesop.execute_task(replay_task(first.execution_id, config=local()))
    assert len(model.bodies) == 1  # one step repaired, the rest replayed without the model
    assert "Desk lamp × 1" in again.content and again.data["repaired"] == 1
    repaired = trace_of(again)["steps"][3]
    assert repaired["locator"]["name"] == "Buy now"
    kinds = [e.kind for e in aesop.get_events(again.execution_id)]
    assert "replay_step_repaired" in kinds
    assert again.usage["llm_calls"] == 1


def test_replay_types_secrets_given_to_the_replay(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    password = "s3cret-Pa55-word!"
    model.reset([
        call("navigate", url=f"{shop.url}/login"),
        lambda obs: [
            call("type", ref=ref_of(obs, '"Username"'), text="{{secret:user}}"),
            call("type", ref=ref_of(obs, '"Password"'), text="{{secret:password}}"),
            call("click", ref=ref_of(obs, '"Sign in"')),
        ],
        call("finish", result="in"),
    ])  # fmt: skip
    secrets = {"user": "alice", "password": password}
    first = aesop.execute_task(Task(name="login", config=local(), secrets=secrets))
    model.reset([])
    again = aesop.execute_task(replay_task(first.execution_id, config=local(), secrets=secrets))
    assert "Welcome, {{secret:user}}" in again.content  # the page greets alice; redacted
    assert password not in again.model_dump_json() and "alice" not in again.content
    assert model.bodies == []
    # Without the secrets the replay cannot type them, and says which one is missing.
    with pytest.raises(ReplayError, match=r"secrets \['password', 'user'\] that this replay"):
        aesop.execute_task(replay_task(first.execution_id, config=local(), repair=False))


def test_client_replay_needs_no_model(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    first = record(aesop, shop, model)
    model.reset([])
    # Another client on the same data directory, with no model configured at all.
    plain = Aesoperator(data_dir=aesop.data_dir, isolation="inline", llm=None)
    try:
        again = plain.replay(first.execution_id, {"query": "lamp"})
    finally:
        plain.close()
    assert model.bodies == []
    assert "Desk lamp × 1" in again.content and again.task_name == "buy.replay"
    assert again.planner == "llm"
