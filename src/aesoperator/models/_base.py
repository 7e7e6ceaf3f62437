"""The provider-neutral shape of a model call: messages in, text and tool calls out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..errors import ModelError as ModelError  # one exception tree: crosses processes

Role = Literal["user", "assistant", "tool"]


@dataclass
class ToolCall:
    """One tool call of the model. ``arguments`` is ``None`` when ``raw`` was not a JSON object."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str = ""

    @classmethod
    def parse(cls, id: str, name: str, raw: str | dict[str, Any] | None) -> ToolCall:
        if isinstance(raw, dict):
            return cls(id, name, raw, json.dumps(raw))
        text = raw or "{}"
        try:
            value = json.loads(text)
        except ValueError:
            return cls(id, name, None, text)
        return cls(id, name, value if isinstance(value, dict) else None, text)


@dataclass
class Message:
    """A turn of the conversation. ``tool`` messages answer ``tool_call_id``."""

    role: Role
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    image_png: bytes | None = None


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: name, description and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class ModelResponse:
    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    model: str = ""


class Model(Protocol):
    """A chat model with tool calling. One method, like an httpx transport."""

    name: str
    vision: bool

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
        """One model call. ``max_output_tokens`` caps the reply (the task's token budget)."""
        ...

    def cost(self, usage: Usage) -> float:
        """US dollars for ``usage`` (0.0 when the price is unknown)."""
        ...


# USD per million tokens (input, output), from the providers' public price lists.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.0),
    "gpt-4o-mini": (0.15, 0.60),
    "o4-mini": (1.10, 4.40),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-haiku-4-5": (1.0, 5.0),
}


def cost_of(usage: Usage, price: tuple[float, float] | None) -> float:
    """US dollars for ``usage`` at ``price`` (USD per million input and output tokens)."""
    if price is None:
        return 0.0
    return (usage.input_tokens * price[0] + usage.output_tokens * price[1]) / 1e6


def price_of(model: str) -> tuple[float, float] | None:
    """The price of ``model``; dated variants (``gpt-4o-2024-08-06``) match their family."""
    best = ""
    for name in PRICES:
        if (model == name or model.startswith(name + "-")) and len(name) > len(best):
            best = name
    return PRICES.get(best) if best else None
