"""The ``max_llm_tokens`` guard: an upper bound of a call's prompt, and a cap on its output.

A guard that estimates low lets a call exceed the budget (4 characters per token is right for
English and wrong by 4x for Chinese or emoji). Every tokenizer in use (byte-level BPE:
OpenAI's, Anthropic's, Llama's...) emits at most one token per UTF-8 byte of text, so bytes
plus fixed allowances for the chat template, tool definitions and images never under-count.
The output is capped by the provider at what the budget has left (``max_output_tokens``).
"""

from __future__ import annotations

import json
import struct
from typing import Any

from ...errors import LimitExceeded
from ...models import Message, Model, ModelResponse, ToolSpec

CALL_OVERHEAD = 1024  # chat template and a provider's tool-use preamble (Anthropic's ~350)
MESSAGE_OVERHEAD = 16  # role and separators of one message or tool definition
IMAGE_TOKENS = 6_400  # per image: Claude ≤ ~1,600, gpt-4.1* ≤ 3,800, Llama 3.2 vision 6,404
IMAGE_TOKENS_4O_MINI = 48_200  # gpt-4o-mini bills images at 2,833 + 5,667 per 512-px tile
MIN_OUTPUT = 16  # below this a reply cannot even hold one tool call


def prompt_bound(system: str, messages: list[Message], tools: list[ToolSpec], model: str) -> int:
    """Tokens the call's prompt can cost at most, whatever the model's tokenizer."""
    total = CALL_OVERHEAD + _bytes(system)
    for m in messages:
        total += MESSAGE_OVERHEAD + _bytes(m.role) + _bytes(m.text) + _bytes(m.tool_call_id)
        for c in m.tool_calls:
            raw = c.raw or json.dumps(c.arguments, ensure_ascii=False)
            total += MESSAGE_OVERHEAD + _bytes(c.id) + _bytes(c.name) + _bytes(raw)
        if m.image_png is not None:
            total += _image_tokens(m.image_png, model)
    for t in tools:
        spec = {"name": t.name, "description": t.description, "parameters": t.parameters}
        total += MESSAGE_OVERHEAD + _bytes(json.dumps(spec, ensure_ascii=False))
    return total


def output_cap(max_tokens: int | None, used: int, prompt: int, calls: int) -> int | None:
    """The most output tokens the next call may produce (``None``: no token budget).

    Raises ``LimitExceeded`` when the prompt alone, plus a minimal reply, would not fit.
    """
    if max_tokens is None:
        return None
    left = max_tokens - used - prompt
    if left < MIN_OUTPUT:
        raise LimitExceeded(
            f"max_llm_tokens={max_tokens} would be exceeded by the next model call "
            f"(up to {prompt} prompt tokens, counted as one per UTF-8 byte, after {used} used "
            f"in {calls} calls); raise TaskConfig.max_llm_tokens"
        )
    return left


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _image_tokens(png: bytes, model: str) -> int:
    per_image = IMAGE_TOKENS_4O_MINI if "gpt-4o-mini" in model else IMAGE_TOKENS
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return per_image
    # Big images cost more on models that bill by 14-px patch (Qwen-VL and the like).
    width, height = struct.unpack(">II", png[16:24])
    return max(per_image, int(width) * int(height) // 196 + 1)


def used_tokens(usage: dict[str, Any]) -> int:
    """Tokens already spent, from an execution's usage counters."""
    return int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))


def charge(ctx: Any, model: Model, reply: ModelResponse) -> float:
    """Add one call's tokens and price to the task's usage (``ctx.add_usage``); its cost."""
    cost = model.cost(reply.usage)
    ctx.add_usage(
        input_tokens=reply.usage.input_tokens,
        output_tokens=reply.usage.output_tokens,
        cost_usd=cost,
        llm_calls=1,
    )
    return cost
