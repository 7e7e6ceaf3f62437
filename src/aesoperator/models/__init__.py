"""Model clients for the LLM planner: any provider by name, and a scripted model for tests.

``resolve("openai:gpt-4.1-mini")`` gives a client; the string is what ``Aesoperator(llm=...)``
and ``AESOP_LLM`` take::

    openai:gpt-4.1-mini                         key from OPENAI_API_KEY
    anthropic:claude-sonnet-4-20250514          key from ANTHROPIC_API_KEY
    openai:llama3.1?base_url=http://localhost:11434/v1    any OpenAI-compatible server
    ollama:llama3.1                             same, Ollama's default address
    ...?price=0.4,1.6                           USD per million input,output tokens
    ...?vision=1                                send screenshots to the model

Provider SDKs are imported only when a model is used (``pip install 'aesoperator[llm]'``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..errors import UserError
from ._base import Message, Model, ModelError, ModelResponse, ToolCall, ToolSpec, Usage, price_of
from ._scripted import ScriptedModel, call, ref_of

__all__ = [
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "call",
    "price_of",
    "ref_of",
    "resolve",
]

_PROVIDERS = ("openai", "anthropic", "ollama", "scripted")


def resolve(spec: str) -> Model:
    """The model client that ``spec`` names (see the module docstring)."""
    if not isinstance(spec, str) or ":" not in spec:
        raise UserError(
            f"llm: got {spec!r}; use 'provider:model' such as 'openai:gpt-4.1-mini' or "
            "'anthropic:claude-sonnet-4-20250514'"
        )
    provider, _, rest = spec.partition(":")
    if provider == "scripted":
        return ScriptedModel.from_spec(rest)
    model, _, query = rest.partition("?")
    opts = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(opts) - {"base_url", "price", "vision"}
    if unknown or not model:
        raise UserError(
            f"llm: got {spec!r}; the model name is missing or the options {sorted(unknown)} are "
            "unknown (use base_url=, price=IN,OUT, vision=1)"
        )
    price = None
    if "price" in opts:
        try:
            a, b = (float(x) for x in opts["price"].split(","))
        except ValueError:
            raise UserError(
                f"llm: price={opts['price']!r}; use USD per million tokens as 'input,output'"
            ) from None
        price = (a, b)
    vision = None if "vision" not in opts else opts["vision"] not in ("0", "false", "")
    if provider in ("openai", "ollama"):
        from ._providers import OpenAIModel

        base = opts.get("base_url") or (
            "http://localhost:11434/v1" if provider == "ollama" else None
        )
        return OpenAIModel(model, base_url=base, price=price, vision=vision)
    if provider == "anthropic":
        from ._providers import AnthropicModel

        return AnthropicModel(model, base_url=opts.get("base_url"), price=price, vision=vision)
    raise UserError(f"llm: unknown provider {provider!r} in {spec!r}; use one of {_PROVIDERS}")
