"""Secrets by placeholder: the model writes ``{{secret:NAME}}``; only the browser sees values.

Redaction is the runtime's one redaction (``aesoperator._redact``), with the placeholder as
its mark, so what the model reads names the placeholder it can type. Every request to the
model passes :class:`RedactingModel`: the model's own earlier turns included.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from ..._redact import Redactor as _Redactor
from ...models import Message, Model, ModelResponse, ToolCall, ToolSpec, Usage

if TYPE_CHECKING:
    from ._observe import Observation

PLACEHOLDER = re.compile(r"\{\{\s*secret:([A-Za-z0-9_.-]+)\s*\}\}")


class Redactor(_Redactor):
    """Replaces every secret value, in any form, with its ``{{secret:NAME}}`` placeholder."""

    def __init__(self, secrets: dict[str, str], also: tuple[tuple[str, str], ...] = ()) -> None:
        """Types ``secrets``; redacts them and the ``also`` pairs (a parent task's)."""
        super().__init__((*secrets.items(), *also), mark="{{{{secret:{}}}}}")
        self._secrets = dict(secrets)
        self.names = sorted(secrets)  # the ones the model may type

    def fill(self, text: str) -> str:
        """Substitute real values for placeholders: for the browser only, never for logs."""

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._secrets:
                raise KeyError(name)
            return self._secrets[name]

        return PLACEHOLDER.sub(sub, text)

    def message(self, msg: Message) -> Message:
        calls = [
            ToolCall(c.id, c.name, self.value(c.arguments), self.text(c.raw))
            for c in msg.tool_calls
        ]
        return replace(msg, text=self.text(msg.text), tool_calls=calls)

    def observation(self, obs: Observation) -> Observation:
        """``obs`` redacted field by field, before rendering cuts any of them short."""
        return replace(
            obs, url=self.text(obs.url), title=self.text(obs.title), text=self.text(obs.text),
            elements=[{k: v if k == "ref" else self.value(v) for k, v in el.items()}
                      for el in obs.elements],
        )  # fmt: skip


class RedactingModel:
    """``model`` whose every request is redacted: observations, tool results, and the
    model's own earlier text and tool arguments (it may have written a real value)."""

    def __init__(self, model: Model, redactor: Redactor) -> None:
        self.model = model
        self.redactor = redactor
        self.name = model.name
        self.vision = model.vision

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
        clean = [self.redactor.message(m) for m in messages]
        return await self.model.complete(
            self.redactor.text(system),
            clean,
            tools,
            timeout=timeout,
            max_retries=max_retries,
            max_output_tokens=max_output_tokens,
        )

    def cost(self, usage: Usage) -> float:
        return self.model.cost(usage)
