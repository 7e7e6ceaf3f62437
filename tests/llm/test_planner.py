"""The LLM planner end to end: real SDK clients, scripted protocol server, real Chromium."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from llm_protocol import ModelServer
from llm_support import local
from llm_webapp import ShopServer
from pydantic import BaseModel

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
    assert PASSWORD not in Path(trace.path).read_text(encoding="utf-8")


def _raw(shop: ShopServer) -> list[tuple[str, str, bytes]]:
    with shop.lock:
        return list(shop.requests)


def test_multi_step_form_with_server_validation(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    seen: list[str] = []

    def remember(obs: str) -> Any:
        seen.append(obs)
        return call("type", ref=ref_of(obs, '"Email"'), text="bob@example.org")

    model.reset([
        call("navigate", url=f"{shop.url}/contact"),
        lambda obs: [
            call("type", ref=ref_of(obs, '"Your name"'), text="Bob"),
            call("type", ref=ref_of(obs, '"Email"'), text="bob-at-example"),
        ],
        lambda obs: call("click", ref=ref_of(obs, 'button "Send"')),
        remember,  # the server's validation errors are in this observation
        lambda obs: [
            call("type", ref=ref_of(obs, '"Your name"'), text="Bob"),
            call("select", ref=ref_of(obs, '"Topic"'), option="Returns"),
            call("check", ref=ref_of(obs, "I accept the terms"), checked=True),
        ],
        # Weaker models send refs as text: "[12]" works like 12.
        lambda obs: call("click", ref="[" + str(ref_of(obs, 'button "Send"')) + "]"),
        lambda obs: call("finish", result={"confirmation": obs.split("Visible text:")[1].strip()}),
    ])  # fmt: skip
    result = aesop.execute_task(
        Task(name="contact_form", description="Send a returns request", config=local())
    )
    assert "Email must contain @." in seen[0]
    assert "You must accept the terms." in seen[0]
    confirmation = result.data["confirmation"]
    assert "Thank you, Bob" in confirmation
    assert "Ticket about Returns for bob@example.org received." in confirmation
    names = [a.name for a in result.actions]
    assert 'select "Topic" [' in " ".join(names) and 'check "I accept the terms" [' in " ".join(
        names
    )
    # Each step was an action of the execution, and all of them succeeded.
    assert all(a.ok for a in result.actions) and len(result.actions) == 9


class Product(BaseModel):
    name: str
    price: float


class Results(BaseModel):
    query: str
    products: list[Product]


def test_extraction_into_a_schema_across_paginated_results(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    schema = {"type": "object", "properties": {"items": {"type": "array"}}, "required": ["items"]}

    def rows(obs: str) -> list[dict[str, Any]]:
        return [
            {"name": line.split(" — ")[0].strip(), "price": float(line.split("$")[1])}
            for line in obs.splitlines()
            if " — $" in line
        ]

    model.reset([
        call("navigate", url=f"{shop.url}/search?q=lamp"),
        call("extract", instruction="the products and prices", schema=schema),
        lambda prompt: call("respond", items=rows(prompt)),  # the extraction call itself
        lambda obs: call("click", ref=ref_of(obs, "Next page")),
        call("extract", instruction="the products and prices", schema=schema),
        lambda prompt: call("respond", items=rows(prompt)),
        # A wrong shape first: the validation error goes back to the model.
        call("finish", result={"query": "lamp", "products": [{"name": "Desk lamp"}]}),
        lambda obs: call("finish", result={"query": "lamp", "products": _collected(model)}),
    ])  # fmt: skip
    task = Task(
        name="lamp_prices",
        description="List every lamp with its price",
        inputs={"query": "lamp"},
        output_schema=Results,
        config=local(),
    )
    result = aesop.execute_task(task)
    got = Results.model_validate(result.data)
    assert [p.name for p in got.products] == [
        "Desk lamp", "Floor lamp", "Lamp shade", "Reading lamp", "Lamp bulb pack", "Wall lamp"
    ]  # fmt: skip
    assert got.products[1].price == 79.0
    bodies = model.requests()
    # The model was told what was wrong with its first result.
    tool_texts = [m.get("content") for m in bodies[-1]["messages"] if m.get("role") == "tool"]
    assert any(
        "does not match the output schema" in str(t) and "price" in str(t) for t in tool_texts
    )
    finish = next(t for t in bodies[0]["tools"] if t["function"]["name"] == "finish")
    params = finish["function"]["parameters"]
    # The pydantic schema's $defs sit at the root, where its $refs resolve.
    assert params["properties"]["result"]["properties"]["products"]["items"] == {
        "$ref": "#/$defs/Product"
    }
    assert "Product" in params["$defs"]
    extract_calls = [b for b in bodies if b["tools"][0]["function"]["name"] == "respond"]
    assert len(extract_calls) == 2
    assert "<page_content>" in extract_calls[0]["messages"][-1]["content"]


def _collected(model: ModelServer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for body in model.requests():
        for m in body["messages"]:
            if m.get("role") == "tool" and m["content"].startswith('{"items"'):
                items.extend(json.loads(m["content"])["items"])
    unique = {i["name"]: i for i in items}
    return list(unique.values())


def test_model_calls_a_registered_function(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    calls: list[tuple[str, int]] = []

    @aesop.function
    def stock_level(sku: str, warehouse: int = 1) -> dict[str, Any]:
        """How many units of a product are in stock.

        Args:
            sku: the product's code
            warehouse: which warehouse to ask
        """
        calls.append((sku, warehouse))
        return {"sku": sku, "units": 7 * warehouse}

    model.reset([
        call("stock_level", sku="LAMP-1", warehouse=3),
        call("finish", result="21 units"),
    ])  # fmt: skip
    result = aesop.execute_task(Task(name="stock", description="Check stock", config=local()))
    assert calls == [("LAMP-1", 3)]
    assert result.content == "21 units"
    tools = {t["function"]["name"]: t["function"] for t in model.requests()[0]["tools"]}
    spec = tools["stock_level"]
    assert spec["description"] == "How many units of a product are in stock."
    sku = {"type": "string", "description": "the product's code"}
    assert spec["parameters"]["properties"]["sku"] == sku
    assert spec["parameters"]["required"] == ["sku"]
    # The function's answer went back to the model as the tool result.
    second = model.requests()[1]["messages"]
    assert any(m.get("role") == "tool" and '"units": 21' in m["content"] for m in second)
    first = result.actions[0]
    assert first.name == 'stock_level(sku="LAMP-1", warehouse=3)'
    assert first.details["args"] == {"sku": "LAMP-1", "warehouse": 3}


def test_page_cannot_send_the_task_to_a_forbidden_host(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer, forbidden: Any
) -> None:
    target = f"http://127.0.0.2:{forbidden.server_address[1]}/steal"
    shop.evil_target = target
    model.reset([
        call("navigate", url=f"{shop.url}/evil"),
        # A model that obeys the page: both ways out are refused by the policy.
        call("navigate", url=target),
        lambda obs: call("click", ref=ref_of(obs, "Claim your prize")),
        lambda obs: call("finish", result=obs.split("URL: ")[1].split("\n")[0]),
    ])  # fmt: skip
    result = aesop.execute_task(
        Task(name="deals", description="Read the deals", config=local(),
             secrets={"password": PASSWORD})
    )  # fmt: skip
    assert forbidden.hits == 0 and forbidden.connections == 0
    assert result.content.startswith(shop.url)  # still on the allowed site
    bodies = model.requests()
    refused = [m["content"] for m in bodies[2]["messages"] if m.get("role") == "tool"]
    assert "refused by the task's policy" in refused[-1]
    # The page's text reached the model only inside the data delimiters.
    first_obs = bodies[1]["messages"][-1]["content"]
    start, end = first_obs.index("<page_content>"), first_obs.index("</page_content>")
    assert start < first_obs.index("ignore all previous instructions") < end
    assert first_obs.count("</page_content>") == 1  # the page's own closing tag was defused
    assert PASSWORD not in model.everything()


def test_anthropic_protocol_drives_the_same_loop(
    anthropic_aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    model.reset(login_script(shop))
    result = anthropic_aesop.execute_task(
        Task(name="shop_login", config=local(), secrets={"password": PASSWORD})
    )
    assert result.content == "logged in"
    assert all(p.endswith("/v1/messages") for p in model.paths)
    body = model.requests()[-1]
    assert body["model"] == "claude-sonnet-4-20250514" and "system" in body
    kinds = [b["type"] for m in body["messages"] for b in m["content"]]
    assert "tool_use" in kinds and "tool_result" in kinds
    assert PASSWORD not in model.everything()
    assert result.usage["cost_usd"] > 0


def test_memory_and_subtask_tools(aesop: Aesoperator, model: ModelServer) -> None:
    text = (
        "Aesoperator runs tasks on the web. Each task has hard limits on pages and time. "
        "The planner records every step. Replays need no model at all. "
    ) * 4
    model.reset([
        call("memory_set", key="note", value={"seen": 3}),
        call("memory_get", key="note"),
        call("run_subtask", name="digest", skill="summarize", inputs={"text": text}),
        call("finish", result="done"),
    ])  # fmt: skip
    execution = aesop.execute_task_async(Task(name="compose", config=local()))
    result = execution.result(timeout=60)
    assert result.content == "done"
    answers = [m["content"] for m in model.requests()[-1]["messages"] if m.get("role") == "tool"]
    assert answers[0] == "stored" and answers[1] == '{"seen": 3}'
    assert "Aesoperator runs tasks on the web" in answers[2]  # the summarize skill's summary
    children = aesop.list_tasks(name="digest")
    assert children and children[0].parent_id == execution.id and children[0].state == "completed"


def test_screenshot_goes_to_a_vision_model(
    anthropic_aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    model.reset([
        call("navigate", url=f"{shop.url}/cart"),
        call("screenshot"),
        call("finish", result="looked"),
    ])  # fmt: skip
    result = anthropic_aesop.execute_task(Task(name="look", config=local()))
    assert result.content == "looked"
    last = model.requests()[-1]["messages"][-1]["content"]
    images = [b for b in last if b["type"] == "image"]
    assert len(images) == 1 and images[0]["source"]["media_type"] == "image/png"
    assert base64.b64decode(images[0]["source"]["data"]).startswith(b"\x89PNG")


def test_secret_in_a_visited_url_is_redacted(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    token = "tok-9f8e7d6c5b"
    model.reset([
        call("navigate", url=f"{shop.url}/search"),
        lambda obs: call("type", ref=ref_of(obs, "Search products"), text="{{secret:token}}",
                         submit=True),
        lambda obs: call("finish", result=obs.split("URL: ")[1].split("\n")[0]),
    ])  # fmt: skip
    execution = aesop.execute_task_async(
        Task(name="get_form", config=local(), secrets={"token": token})
    )
    result = execution.result(timeout=60)
    assert any(token in path for _, path, _ in shop.requests)  # the GET form sent it
    assert result.content.endswith("/search?q={{secret:token}}")
    events = aesop.get_events(execution.id)
    assert any(e.kind == "page" and "{{secret:token}}" in e.data["url"] for e in events)
    assert token not in "".join(e.model_dump_json() for e in events)
    assert token not in model.everything() and token not in result.model_dump_json()


def test_failed_navigation_goes_back_and_tells_the_model(
    aesop: Aesoperator, shop: ShopServer, model: ModelServer
) -> None:
    model.reset([
        call("navigate", url=f"{shop.url}/cart"),
        call("navigate", url="http://127.0.0.1:1/closed"),  # nothing listens there
        lambda obs: call("finish", result=obs.split("URL: ")[1].split("\n")[0]),
    ])  # fmt: skip
    result = aesop.execute_task(Task(name="closed_port", config=local()))
    assert result.content == f"{shop.url}/cart"
    told = [m["content"] for m in model.requests()[2]["messages"] if m.get("role") == "tool"]
    assert (
        told[-1].startswith("error: navigate failed:") and f"still on {shop.url}/cart" in told[-1]
    )
    assert result.actions[1].ok is True and result.actions[1].name.startswith("navigate ")
