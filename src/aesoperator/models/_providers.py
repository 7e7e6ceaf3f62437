"""Real provider clients (the official ``openai`` and ``anthropic`` SDKs), imported lazily.

The SDKs already retry 429, 408, 409 and 5xx with exponential backoff and honour
``Retry-After``; we set their retry count and timeout from the task and turn what is left of a
failure into a :class:`ModelError` that says which provider, which status and what to do.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
from typing import Any

from ..errors import UserError
from ._base import (
    Message,
    ModelError,
    ModelResponse,
    ToolCall,
    ToolSpec,
    Usage,
    cost_of,
    price_of,
)

_VISION_HINTS = ("gpt-4o", "gpt-4.1", "claude", "o4", "llava", "vision", "gemma3")


class _Provider:
    """What both providers share: credentials from arguments or the environment, the price,
    and one SDK client made on first use."""

    provider: str
    _sdk_module: str  # the package, which is also the extra that installs it
    _sdk_class: str

    def __init__(
        self, model: str, base_url: str | None, api_key: str | None,
        price: tuple[float, float] | None, local_hint: str,
    ) -> None:  # fmt: skip
        env = self.provider.upper()
        self.name = model
        self.base_url = base_url or os.environ.get(f"{env}_BASE_URL") or None
        key = api_key or os.environ.get(f"{env}_API_KEY")
        if not key:
            if self.base_url is None:
                raise UserError(
                    f"model '{self.provider}:{model}' needs an API key: set {env}_API_KEY"
                    + local_hint
                )
            key = "not-needed"  # local servers ignore it; the SDK insists on one
        self._key = key
        self._price = price if price is not None else price_of(model)
        self._client: Any = None
        self._module: Any = None

    def cost(self, usage: Usage) -> float:
        return cost_of(usage, self._price)

    def _sdk(self, max_retries: int) -> tuple[Any, Any]:
        """The SDK module and its client; a missing SDK names the extra that installs it."""
        if self._client is None:
            try:
                module = importlib.import_module(self._sdk_module)
            except ImportError:
                raise _missing("llm", self._sdk_module) from None
            self._client = getattr(module, self._sdk_class)(
                api_key=self._key, base_url=self.base_url, max_retries=max_retries
            )
            self._module = module
        return self._module, self._client


def _missing(extra: str, module: str) -> UserError:
    return UserError(
        f"the {module!r} package is needed for this model; install it with "
        f"`pip install 'aesoperator[{extra}]'`"
    )


def _fail(provider: str, model: str, exc: Exception) -> ModelError:
    status = getattr(exc, "status_code", None)
    body = str(getattr(exc, "message", "") or exc)[:300]
    if status == 401:
        hint = "check the API key (OPENAI_API_KEY / ANTHROPIC_API_KEY)"
    elif status == 404:
        hint = f"check the model name {model!r} and the base_url"
    elif status == 429:
        hint = "rate limited or out of quota even after retries; slow down or raise the quota"
    elif status is not None and status >= 500:
        hint = "the provider kept failing after retries; try again later"
    else:
        hint = "check that the server is reachable and speaks this protocol"
    what = f"HTTP {status}" if status else type(exc).__name__
    return ModelError(f"{provider} model {model!r} failed: {what}: {body}; {hint}")


class OpenAIModel(_Provider):
    """OpenAI chat completions, or any compatible server (Ollama, vLLM, LM Studio, llama.cpp)."""

    provider = "openai"
    _sdk_module, _sdk_class = "openai", "AsyncOpenAI"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        price: tuple[float, float] | None = None,
        vision: bool | None = None,
    ) -> None:
        super().__init__(
            model, base_url, api_key, price,
            ", or give a base_url for a local OpenAI-compatible server "
            "('openai:MODEL?base_url=...')",
        )  # fmt: skip
        self.vision = vision if vision is not None else any(h in model for h in _VISION_HINTS)

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
        openai, client = self._sdk(max_retries)
        wire: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for m in messages:
            wire.append(_openai_message(m))
        kwargs: dict[str, Any] = {"model": self.name, "messages": wire}
        if max_output_tokens is not None:
            # OpenAI's own name (the only one its reasoning models take); compatible servers
            # (Ollama, vLLM, llama.cpp, LM Studio) all read the older one.
            key = "max_completion_tokens" if self.base_url is None else "max_tokens"
            kwargs[key] = max_output_tokens
        if tools:
            kwargs["tools"] = [
                {"type": "function",
                 "function": {"name": t.name, "description": t.description,
                              "parameters": t.parameters}}
                for t in tools
            ]  # fmt: skip
        try:
            resp = await client.with_options(timeout=timeout).chat.completions.create(**kwargs)
        except openai.APIError as exc:
            raise _fail("openai", self.name, exc) from None
        if not getattr(resp, "choices", None):
            raise ModelError(f"openai model {self.name!r} returned no choices")
        msg = resp.choices[0].message
        calls = [
            ToolCall.parse(tc.id or f"call_{i}", tc.function.name, tc.function.arguments)
            for i, tc in enumerate(msg.tool_calls or [])
            if getattr(tc, "function", None) is not None
        ]
        usage = Usage(
            int(getattr(resp.usage, "prompt_tokens", 0) or 0),
            int(getattr(resp.usage, "completion_tokens", 0) or 0),
        )
        return ModelResponse(msg.content or "", calls, usage, resp.model or self.name)


def _openai_message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text}
    if m.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": m.text or None}
        if m.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.raw or json.dumps(c.arguments)}}
                for c in m.tool_calls
            ]  # fmt: skip
        return out
    if m.image_png is None:
        return {"role": "user", "content": m.text}
    url = "data:image/png;base64," + base64.b64encode(m.image_png).decode()
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": m.text},
            {"type": "image_url", "image_url": {"url": url}},
        ],
    }


class AnthropicModel(_Provider):
    """Anthropic messages API."""

    provider = "anthropic"
    _sdk_module, _sdk_class = "anthropic", "AsyncAnthropic"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        price: tuple[float, float] | None = None,
        vision: bool | None = None,
        max_tokens: int = 4096,
    ) -> None:
        super().__init__(model, base_url, api_key, price, "")
        self.vision = True if vision is None else vision
        self.max_tokens = max_tokens

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
        anthropic, client = self._sdk(max_retries)
        wire: list[dict[str, Any]] = []
        for m in messages:
            role, blocks = _anthropic_blocks(m)
            if wire and wire[-1]["role"] == role:
                wire[-1]["content"].extend(blocks)  # the API wants roles to alternate
            else:
                wire.append({"role": role, "content": blocks})
        kwargs: dict[str, Any] = {
            "model": self.name, "system": system, "messages": wire,
            "max_tokens": min(self.max_tokens, max_output_tokens or self.max_tokens),
        }  # fmt: skip
        if tools:
            kwargs["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in tools
            ]
        try:
            resp = await client.with_options(timeout=timeout).messages.create(**kwargs)
        except anthropic.APIError as exc:
            raise _fail("anthropic", self.name, exc) from None
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in resp.content or []:
            kind = getattr(block, "type", "")
            if kind == "text":
                text.append(block.text)
            elif kind == "tool_use":
                raw = block.input
                calls.append(ToolCall.parse(block.id, block.name, raw if raw is not None else ""))
        usage = Usage(
            int(getattr(resp.usage, "input_tokens", 0) or 0),
            int(getattr(resp.usage, "output_tokens", 0) or 0),
        )
        return ModelResponse("".join(text), calls, usage, resp.model or self.name)


def _anthropic_blocks(m: Message) -> tuple[str, list[dict[str, Any]]]:
    if m.role == "tool":
        return "user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.text}]
    if m.role == "assistant":
        blocks: list[dict[str, Any]] = []
        if m.text:
            blocks.append({"type": "text", "text": m.text})
        for c in m.tool_calls:
            blocks.append(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}}
            )
        return "assistant", blocks
    blocks = [{"type": "text", "text": m.text or "(empty)"}]
    if m.image_png is not None:
        data = base64.b64encode(m.image_png).decode()
        blocks.append(
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
        )
    return "user", blocks
