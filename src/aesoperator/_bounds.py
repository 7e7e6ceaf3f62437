"""Bounds on the JSON values a caller hands in (task inputs, config, plans, memory values).

A value nested 100,000 deep makes every recursive walk of it (``json``, ``repr``, pickling,
pydantic) raise ``RecursionError``; a self-referencing or enormous one ties a process up.
The walk here is iterative, so measuring a hostile value is itself safe.
"""

from __future__ import annotations

import json
import re
import reprlib
from typing import Any

MAX_DEPTH = 64  # levels of lists and dicts: far beyond any hand-written structure
MAX_VALUES = 1_000_000  # scalars and containers, all counted
MAX_BYTES = 16 * 1024 * 1024  # as UTF-8 JSON

_SURROGATE = re.compile("[\ud800-\udfff]")  # cannot be encoded as UTF-8 (nor stored)
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr`` that is bounded in size and depth whatever ``value`` is."""
    try:
        shown = _SHORT.repr(value)
    except Exception:  # a user's __repr__ may raise anything
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def shape_problem(value: Any) -> str | None:
    """Why ``value`` is too deep, too big or not storable as UTF-8, or ``None`` if it is fine.

    Containers are dicts, lists and tuples; anything else is a leaf (validated elsewhere).
    """
    depth = 0
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        count += 1
        if count > MAX_VALUES:
            if depth > MAX_DEPTH:
                return (
                    f"nested at least {depth:,} deep (or it contains itself); the limit is "
                    f"{MAX_DEPTH} levels of lists and dicts"
                )
            return (
                f"holds more than {MAX_VALUES:,} values (or contains itself); the limit is "
                f"{MAX_VALUES:,}: pass large data as files or URLs"
            )
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return f"the text {short_repr(item)} is not valid Unicode (a lone surrogate)"
            continue
        if isinstance(item, dict):
            for key in item:
                if isinstance(key, str) and _SURROGATE.search(key):
                    return f"the key {short_repr(key)} is not valid Unicode (a lone surrogate)"
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        depth = max(depth, level)
        stack.extend((child, level + 1) for child in children)
    if depth > MAX_DEPTH:
        return f"nested {depth:,} deep; the limit is {MAX_DEPTH} levels of lists and dicts"
    return None


def size_problem(encoded: str) -> str | None:
    """Why JSON text ``encoded`` is too big, or ``None``."""
    if len(encoded) * 4 <= MAX_BYTES:  # a character is at most 4 bytes: no need to encode
        return None
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        return (
            f"{size / 2**20:.1f} MiB as JSON; the limit is {MAX_BYTES // 2**20} MiB: pass large "
            "data as files or URLs"
        )
    return None


class NotJSON(TypeError):
    """A value that JSON cannot represent; ``reason`` says which part."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def to_json(value: Any, where: str) -> str:
    """``value`` as JSON text; ``TypeError`` if it is not JSON, ``ValueError`` if out of bounds.

    Both messages start with ``where``.
    """
    problem = shape_problem(value)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise NotJSON(
            f"{where}: a {type(value).__name__} value cannot be stored ({exc}); store JSON "
            "values: str, int, float, bool, None, list or dict",
            reason=str(exc),
        ) from None
    problem = size_problem(encoded)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
    return encoded
