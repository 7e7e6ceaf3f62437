"""Budgets, loop detection and provider failures end the task with a clear, named error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llm_protocol import BadArgs, ModelServer, Raw, Usage
from llm_support import local
from llm_webapp import ShopServer

from aesoperator import (
    Aesoperator,
    LimitExceeded,
    PageLimitExceeded,
    Task,
    TimeLimitExceeded,
)
from aesoperator.errors import LoopDetected, ModelError
from aesoperator.models import call, ref_of


def wander(shop: ShopServer, n: int = 8) -> list[Any]:
    paths = ["/", "/search", "/cart", "/contact", "/login"]
    return [call("navigate", url=shop.url + paths[i % len(paths)]) for i in range(n)]


def run_failing(aesop: Aesoperator, task: Task) -> tuple[BaseException, str]:
    execution = aesop.execute_task_async(task)
    with pytest.raises(Exception) as info:
        execution.result(timeout=60)
    return info.value, execution.id


@pytest.mark.browser
def test_max_steps_ends_the_task_and_keeps_the_partial_trace(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    model.reset(wander(shop))
    exc, eid = run_failing(aesop, Task(name="wander", config=local(max_steps=3)))
    assert isinstance(exc, LimitExceeded) and "max_steps=3" in str(exc)
    status = aesop.get_task_status(eid)
    assert status.state == "failed" and status.result is not None
    steps = status.result.data["steps"]
    assert [s["tool"] for s in steps] == ["navigate"] * 3
    assert steps[2]["args"]["url"].endswith("/cart")
    assert any(f.name == "llm_trace.json" for f in status.result.files)
    assert len([e for e in aesop.get_events(eid) if e.kind == "llm_step"]) == 3


@pytest.mark.browser
def test_token_budget(aesop: Aesoperator, shop: ShopServer, model: ModelServer) -> None:
    model.reset(wander(shop))
    model.usage = Usage(5000, 10)
    exc, _ = run_failing(aesop, Task(name="tokens", config=local(max_llm_tokens=8000)))
    assert isinstance(exc, LimitExceeded)
    # The second prompt (bounded at a token per byte) cannot fit in what is left: not sent.
    assert "max_llm_tokens=8000 would be exceeded by the next model call" in str(exc)
    assert "after 5010 used in 1 calls" in str(exc)
    assert len(model.bodies) == 1

    # A provider that bills more than the call could cost is caught after the call.
    model.reset(wander(shop))
    model.usage = Usage(9000, 10)
    exc, _ = run_failing(aesop, Task(name="tokens", config=local(max_llm_tokens=8000)))
    assert isinstance(exc, LimitExceeded)
    assert "max_llm_tokens=8000 exceeded (9010 tokens used in 1 model calls)" in str(exc)
    assert len(model.bodies) == 1

    # A prompt that alone would break the budget is not sent at all.
    model.reset(wander(shop))
    exc, _ = run_failing(aesop, Task(name="tiny", config=local(max_llm_tokens=50)))
    assert isinstance(exc, LimitExceeded) and "would be exceeded by the next model call" in str(exc)
    assert model.bodies == []


WIDE_TEXT = "量子计算🙂" * 1500  # 6 characters, 16 UTF-8 bytes: 4 characters a token is far off


@pytest.mark.parametrize("client", ["aesop", "anthropic_aesop"])
def test_token_guard_never_underestimates_wide_text(
    request: pytest.FixtureRequest, model: ModelServer, client: str
) -> None:
    # The task's inputs go into the prompt: 24,000 UTF-8 bytes in 9,000 characters. Billed a
    # token per byte, the first call alone is over the budget: it must not be sent.
    aesop: Aesoperator = request.getfixturevalue(client)
    model.reset([call("finish", result="done")])
    model.tokenizer = "bytes"
    task = Task(name="wide", inputs={"notes": WIDE_TEXT}, config=local(max_llm_tokens=12_000))
    exc, eid = run_failing(aesop, task)
    assert isinstance(exc, LimitExceeded)
    assert "max_llm_tokens=12000 would be exceeded by the next model call" in str(exc)
    assert model.bodies == []
    assert aesop.get_task_status(eid).state == "failed"


def test_token_guard_caps_the_reply_to_what_the_budget_has_left(
    aesop: Aesoperator, model: ModelServer
) -> None:
    # The prompt fits, and the model answers at length (40,000 bytes of emoji): the reply is
    # capped by the provider at what is left, so the call stays within max_llm_tokens.
    model.reset([call("finish", result="🙂" * 10_000)])
    model.tokenizer = "bytes"
    budget = 60_000
    task = Task(name="wide", inputs={"notes": WIDE_TEXT}, config=local(max_llm_tokens=budget))
    result = aesop.execute_task(task, timeout=60)
    assert result.usage["input_tokens"] + result.usage["output_tokens"] <= budget
    sent = model.requests()[0]
    assert 0 < sent["max_tokens"] <= budget - result.usage["input_tokens"]


@pytest.mark.browser
def test_cost_budget(aesop: Aesoperator, shop: ShopServer, model: ModelServer) -> None:
    model.reset(wander(shop))
    model.usage = Usage(100_000, 0)  # $0.04 a call at gpt-4.1-mini's $0.40 per million
    exc, eid = run_failing(aesop, Task(name="cost", config=local(max_cost_usd=0.1)))
    assert isinstance(exc, LimitExceeded) and "max_cost_usd=0.1 exceeded" in str(exc)
    assert len(model.bodies) == 3
    calls = [e.data for e in aesop.get_events(eid) if e.kind == "llm_call"]
    assert [c["cost_usd"] for c in calls] == [0.04, 0.04, 0.04]


def test_time_budget(aesop: Aesoperator, model: ModelServer) -> None:
    @aesop.function
    async def pause(seconds: float) -> str:
        """Wait a while."""
        await asyncio.sleep(seconds)
        return "rested"

    import openai  # noqa: F401  (inline client: the SDK's first import is not the task's time)

    model.reset([call("pause", seconds=0.01), call("pause", seconds=30), call("finish", result="")])
    exc, eid = run_failing(aesop, Task(name="slow", config=local(max_duration_seconds=4)))
    assert isinstance(exc, TimeLimitExceeded) and "max_duration_seconds=4" in str(exc)
    status = aesop.get_task_status(eid)
    assert status.result is not None
    assert [s["tool"] for s in status.result.data["steps"]] == ["pause"]  # the finished step


@pytest.mark.browser
def test_page_budget_counts_navigations(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    model.reset([
        call("navigate", url=f"{shop.url}/search?q=lamp"),
        lambda obs: call("click", ref=ref_of(obs, "Next page")),  # a navigation by click
        lambda obs: call("click", ref=ref_of(obs, "Home")),
        call("finish", result="done"),
    ])  # fmt: skip
    exc, _ = run_failing(aesop, Task(name="pages", config=local(max_pages=2)))
    assert isinstance(exc, PageLimitExceeded) and "max_pages=2" in str(exc)
    assert [p for _, p, _ in shop.requests if p == "/"] == []  # the third page never left


@pytest.mark.browser
def test_repeating_an_action_on_the_same_state_is_told_then_fails(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    click_name = lambda obs: call("click", ref=ref_of(obs, '"Your name"'))  # noqa: E731
    model.reset([call("navigate", url=f"{shop.url}/contact"), click_name, click_name, click_name])
    exc, eid = run_failing(aesop, Task(name="loop", config=local()))
    assert isinstance(exc, LoopDetected) and "loop detected" in str(exc)
    assert 'click "Your name"' in str(exc)
    told = model.requests()[3]["messages"]
    assert any(m.get("role") == "tool" and "changed nothing" in m["content"] for m in told)
    assert [e.kind for e in aesop.get_events(eid)].count("loop_warning") == 1


def test_rate_limit_is_retried(aesop: Aesoperator, shop: ShopServer, model: ModelServer) -> None:
    model.reset([
        Raw(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "10"}),
        Raw(503, {"error": {"message": "busy"}}, {"retry-after-ms": "10"}),
        call("finish", result="ok"),
    ])  # fmt: skip
    result = aesop.execute_task(Task(name="retry", config=local()))
    assert result.content == "ok" and len(model.bodies) == 3
    assert result.usage["llm_calls"] == 1


def test_server_errors_fail_after_retries_with_a_clear_message(
    aesop: Aesoperator, model: ModelServer
) -> None:
    boom = Raw(500, {"error": {"message": "internal"}}, {"retry-after-ms": "10"})
    model.reset([boom] * 5)
    exc, _ = run_failing(aesop, Task(name="down", config=local(max_retries=2)))
    assert isinstance(exc, ModelError)
    assert "openai model 'gpt-4.1-mini' failed: HTTP 500" in str(exc)
    assert "kept failing after retries" in str(exc)
    assert len(model.bodies) == 3  # one call and two retries


def test_malformed_tool_calls_go_back_to_the_model_then_fail(
    aesop: Aesoperator, model: ModelServer
) -> None:
    model.reset([BadArgs("navigate", '{"url": "http://127.0.0.1/'), call("finish", result="ok")])
    assert aesop.execute_task(Task(name="bad_once", config=local())).content == "ok"
    second = model.requests()[1]["messages"]
    assert any(m.get("role") == "tool" and "not a JSON object" in m["content"] for m in second)

    model.reset([BadArgs("navigate", "{oops")] * 2 + [call("teleport", to="moon")])
    exc, _ = run_failing(aesop, Task(name="bad_always", config=local()))
    assert isinstance(exc, ModelError)
    assert "malformed tool calls 3 times in a row" in str(exc) and "teleport" in str(exc)
