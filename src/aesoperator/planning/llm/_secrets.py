"""Secrets by placeholder: the model writes ``{{secret:NAME}}``; only the browser sees values."""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*secret:([A-Za-z0-9_.-]+)\s*\}\}")


class Redactor:
    """Replaces every secret value with its placeholder, in text and in JSON-like values."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self._secrets = dict(secrets)
        # Longest first, so a secret that contains another is replaced whole.
        self._pairs = sorted(
            ((v, "{{secret:" + k + "}}") for k, v in secrets.items() if v),
            key=lambda p: -len(p[0]),
        )

    @property
    def names(self) -> list[str]:
        return sorted(self._secrets)

    def text(self, value: str) -> str:
        for secret, placeholder in self._pairs:
            if secret in value:
                value = value.replace(secret, placeholder)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def fill(self, text: str) -> str:
        """Substitute real values for placeholders: for the browser only, never for logs."""

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._secrets:
                raise KeyError(name)
            return self._secrets[name]

        return PLACEHOLDER.sub(sub, text)
