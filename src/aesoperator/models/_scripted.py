"""``ScriptedModel``: a model that answers from a script, for offline tests of your own tasks."""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._base import Message, ModelError, ModelResponse, ToolCall, ToolSpec, Usage, cost_of

Reply = ToolCall | list[ToolCall] | str
Step = Reply | Callable[[str], Reply]

_REGISTRY: dict[str, ScriptedModel] = {}
_ids = itertools.count(1)
_lock = threading.Lock()


def call(tool: str, /, **arguments: Any) -> ToolCall:
    """A tool call for a script: ``call("click", ref=3)``, ``call("finish", result={...})``."""
    return ToolCall(id="", name=tool, arguments=arguments, raw=json.dumps(arguments))


def ref_of(observation: str, name: str) -> int:
    """The ``[ref]`` of the first element whose line in ``observation`` contains ``name``.

    Refs are assigned per observation; a script step written as a function of the observation
    can find its element by name: ``lambda obs: call("click", ref=ref_of(obs, "Add to cart"))``.
    """
    for line in observation.splitlines():
        line = line.strip()
        if line.startswith("[") and "]" in line and name in line:
            head = line[1 : line.index("]")]
            if head.isdigit():
                return int(head)
    raise ModelError(f"ScriptedModel: no element named {name!r} in the observation")


class ScriptedModel:
    """A model whose replies are scripted, one per model call.

    Each step is a tool call (``call("navigate", url=...)``), a list of them, a plain text
    reply, or a function of the latest observation text returning one of those::

        model = ScriptedModel([
            call("navigate", url="http://127.0.0.1:8000/login"),
            lambda obs: call("type", ref=ref_of(obs, "Username"), text="alice"),
            call("finish", result={"ok": True}),
        ])
        aesop = Aesoperator(llm=model.spec, isolation="inline")

    ``spec`` is the string to give as ``llm``. A script of plain values is carried inside the
    string, so it works in worker processes too; a script with functions lives in this process
    and needs ``isolation="inline"``. ``requests`` keeps what the planner sent, for assertions.
    Token usage is estimated at 4 characters per token; ``price`` is USD per million tokens.
    """

    vision = False

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        name: str = "scripted",
        price: tuple[float, float] | None = None,
    ) -> None:
        self.name = name
        self.steps = list(steps)
        self.price = price
        self.requests: list[list[Message]] = []
        self._next = 0
        self._key = ""

    @property
    def spec(self) -> str:
        """The ``llm=`` string that selects this model."""
        if all(not callable(s) for s in self.steps):
            steps = [_dump(s) for s in self.steps if not callable(s)]
            price = list(self.price) if self.price else None
            payload = {"steps": steps, "name": self.name, "price": price}
            return (
                "scripted:json:" + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
            )
        with _lock:
            if not self._key:
                self._key = str(next(_ids))
                _REGISTRY[self._key] = self
        return "scripted:mem:" + self._key

    @classmethod
    def from_spec(cls, spec: str) -> ScriptedModel:
        kind, _, rest = spec.partition(":")
        if kind == "mem":
            model = _REGISTRY.get(rest)
            if model is None:
                raise ModelError(
                    "ScriptedModel with functions in its script is only available in the "
                    "process that made it; use Aesoperator(isolation='inline')"
                )
            return model
        if kind == "json":
            payload = json.loads(base64.urlsafe_b64decode(rest.encode()))
            price = payload.get("price")
            return cls(
                [_load(s) for s in payload["steps"]],
                name=payload.get("name") or "scripted",
                price=(float(price[0]), float(price[1])) if price else None,
            )
        raise ModelError(f"not a ScriptedModel spec: {spec!r}")

    def cost(self, usage: Usage) -> float:
        return cost_of(usage, self.price)

    async def complete(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        *,
        timeout: float,
        max_retries: int,
        max_output_tokens: int | None = None,
    ) -> ModelResponse:
        self.requests.append(list(messages))
        if self._next >= len(self.steps):
            raise ModelError(f"ScriptedModel: the script ended after {len(self.steps)} replies")
        step = self.steps[self._next]
        self._next += 1
        if callable(step):
            last = next((m.text for m in reversed(messages) if m.role == "user"), "")
            step = step(last)
        calls: list[ToolCall] = []
        text = ""
        if isinstance(step, str):
            text = step
        else:
            for i, c in enumerate(step if isinstance(step, list) else [step]):
                calls.append(ToolCall(c.id or f"call_{self._next}_{i}", c.name, c.arguments, c.raw))
        size = len(system) + sum(len(m.text) for m in messages)
        out = len(text) + sum(len(c.raw) for c in calls)
        out_tokens = out // 4 + 1
        if max_output_tokens is not None:
            out_tokens = min(out_tokens, max_output_tokens)
        return ModelResponse(text, calls, Usage(size // 4 + 1, out_tokens), self.name)


def _dump(step: Reply) -> Any:
    if isinstance(step, str):
        return step
    if isinstance(step, list):
        return [_dump(s) for s in step]
    return {"tool": step.name, "arguments": step.arguments}


def _load(data: Any) -> Reply:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return [c for c in (_load(d) for d in data) if isinstance(c, ToolCall)]
    return call(data["tool"], **(data.get("arguments") or {}))
