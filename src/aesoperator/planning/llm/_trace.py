"""The action trace of an LLM-planned execution: what replay runs again without a model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

TRACE_FILE = "llm_trace.json"
TRACE_VERSION = 1


def input_placeholders(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    """``(value, "{{input:KEY}}")`` for string inputs, longest value first.

    Text the model typed that contains an input's value is recorded with the placeholder, so a
    replay with new inputs types the new values.
    """
    pairs = [
        (v, "{{input:" + k + "}}") for k, v in inputs.items() if isinstance(v, str) and len(v) >= 3
    ]
    return sorted(pairs, key=lambda p: -len(p[0]))


@dataclass
class Trace:
    task: str
    inputs: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    version: int = TRACE_VERSION

    def add(
        self, tool: str, args: dict[str, Any], locator: dict[str, Any] | None, url: str | None
    ) -> None:
        step: dict[str, Any] = {"tool": tool, "args": args, "url": url}
        if locator:
            step["locator"] = locator
        self.steps.append(step)

    def dumps(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, default=str)

    @classmethod
    def loads(cls, text: str) -> Trace:
        data = json.loads(text)
        return cls(
            task=data.get("task", ""),
            inputs=data.get("inputs") or {},
            steps=list(data.get("steps") or []),
            usage=data.get("usage") or {},
            version=int(data.get("version", TRACE_VERSION)),
        )
