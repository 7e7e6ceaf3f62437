"""The public scripted model, process isolation, and how a model is named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_protocol import ModelServer
from llm_support import local
from llm_webapp import ShopServer

from aesoperator import Aesoperator, NoPlannerError, Task, UserError
from aesoperator.models import ScriptedModel, call, ref_of, resolve

PASSWORD = "pr0cess-Secret-77"


@pytest.fixture
def isolated(tmp_path: Path, model_server: ModelServer) -> Iterator[Aesoperator]:
    llm = f"openai:gpt-4.1-mini?base_url={model_server.base_url}/v1"
    client = Aesoperator(data_dir=tmp_path, pool_size=1, llm=llm)  # worker processes
    yield client
    client.close()


@pytest.mark.browser
def test_planner_in_a_worker_process(
    isolated: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    model.reset([
        call("navigate", url=f"{shop.url}/login"),
        lambda obs: [
            call("type", ref=ref_of(obs, '"Username"'), text="alice"),
            call("type", ref=ref_of(obs, '"Password"'), text="{{secret:pw}}"),
            call("click", ref=ref_of(obs, '"Sign in"')),
        ],
        lambda obs: call("finish", result="Wrong username or password." in obs),
    ])  # fmt: skip
    # Chromium's processes count against max_memory_mb (RSS summed over the process tree).
    task = Task(name="proc_login", config=local(max_memory_mb=3072), secrets={"pw": PASSWORD})
    execution = isolated.execute_task_async(task)
    seen: list[str] = []
    execution.on_progress(lambda status: seen.append(status.current_action or ""))
    result = execution.result(timeout=90)
    assert result.data is True  # the shop refused this password, as the page said
    assert PASSWORD not in model.everything()
    events = "".join(e.model_dump_json() for e in isolated.get_events(execution.id))
    assert PASSWORD not in events and "{{secret:pw}}" in events
    assert any(a.startswith('click "Sign in" [') for a in seen), seen


@pytest.mark.browser
def test_scripted_model_for_offline_tests(tmp_path: Path, shop: ShopServer) -> None:
    # A script of plain values travels inside the llm string: it works in worker processes.
    plain = ScriptedModel(
        [call("navigate", url=f"{shop.url}/search?q=desk"), call("finish", result="seen")],
        price=(1.0, 2.0),
    )
    with Aesoperator(data_dir=tmp_path / "p", pool_size=1, llm=plain.spec) as aesop:
        result = aesop.execute_task(Task(name="offline", config=local(max_memory_mb=3072)))
    assert result.content == "seen" and result.pages_visited == 1
    assert result.usage["llm_calls"] == 2 and result.usage["cost_usd"] > 0

    # A script with functions of the observation runs in this process (inline).
    smart = ScriptedModel([
        call("navigate", url=f"{shop.url}/search?q=desk"),
        lambda obs: call("finish", result=next(ln for ln in obs.splitlines() if "results" in ln)),
    ])  # fmt: skip
    with Aesoperator(data_dir=tmp_path / "i", isolation="inline", llm=smart.spec) as aesop:
        result = aesop.execute_task(Task(name="offline2", config=local()))
    assert result.content == "5 results, page 1"
    assert len(smart.requests) == 2 and "<page_content>" in smart.requests[1][-1].text


def test_model_names() -> None:
    assert resolve("openai:llama3?base_url=http://127.0.0.1:1/v1").name == "llama3"
    assert resolve("ollama:llama3").base_url == "http://localhost:11434/v1"  # type: ignore[attr-defined]
    priced = resolve("anthropic:my-model?base_url=http://127.0.0.1:1&price=3,15")
    from aesoperator.models import Usage

    assert priced.cost(Usage(1_000_000, 1_000_000)) == 18.0
    with pytest.raises(UserError, match="unknown provider 'gemini'"):
        resolve("gemini:pro?base_url=x")
    with pytest.raises(UserError, match="options \\['temperature'\\] are unknown"):
        resolve("openai:gpt-4.1?temperature=1")
    with pytest.raises(UserError, match="use 'provider:model'"):
        resolve("gpt-4.1")


def test_missing_api_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match="set OPENAI_API_KEY"):
        resolve("openai:gpt-4.1-mini")


def test_aesop_llm_environment_variable_chooses_the_planner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = Task(name="free_form_question", description="Say hello", planner="llm")
    monkeypatch.delenv("AESOP_LLM", raising=False)
    with (
        Aesoperator(data_dir=tmp_path / "none", isolation="inline") as aesop,
        pytest.raises(NoPlannerError, match="configure an LLM"),
    ):
        aesop.execute_task(task)
    monkeypatch.setenv("AESOP_LLM", ScriptedModel([call("finish", result="hello")]).spec)
    with Aesoperator(data_dir=tmp_path / "env", isolation="inline") as aesop:
        result = aesop.execute_task(task)
    assert result.planner == "llm" and result.content == "hello" and result.actions == []
