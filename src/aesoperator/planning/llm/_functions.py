"""Tool schemas for the user's ``@aesop.function`` callables, from type hints and docstring."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import TypeAdapter

from ...models import ToolSpec

_ARG_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


def _doc_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """Summary and per-argument descriptions (Google-style ``Args:`` section)."""
    doc = inspect.getdoc(fn) or ""
    summary: list[str] = []
    args: dict[str, str] = {}
    section = ""
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.lower() in ("args:", "arguments:", "parameters:"):
            section = "args"
            continue
        if stripped.endswith(":") and stripped[:-1].lower() in ("returns", "raises", "example"):
            section = "other"
            continue
        if section == "args":
            m = _ARG_LINE.match(line)
            if m:
                args[m.group(1)] = m.group(2).strip()
        elif section == "" and stripped:
            summary.append(stripped)
    return " ".join(summary), args


def function_spec(name: str, fn: Callable[..., Any]) -> ToolSpec:
    """A JSON-schema tool description of ``fn`` (the first ``ctx`` parameter is skipped)."""
    try:
        hints = get_type_hints(fn)
    except Exception:
        hints = {}
    summary, arg_docs = _doc_parts(fn)
    props: dict[str, Any] = {}
    required: list[str] = []
    for pname, param in inspect.signature(fn).parameters.items():
        if pname in ("ctx", "self") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(pname, Any)
        try:
            schema = TypeAdapter(hint).json_schema()
        except Exception:
            schema = {}
        if pname in arg_docs:
            schema["description"] = arg_docs[pname]
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        else:
            try:
                TypeAdapter(Any).dump_json(param.default)
                schema["default"] = param.default
            except Exception:
                pass
        props[pname] = schema
    params = {"type": "object", "properties": props, "required": required}
    return ToolSpec(name, summary or f"the user's function {name}", params)


def wants_ctx(fn: Callable[..., Any]) -> bool:
    params = list(inspect.signature(fn).parameters)
    return bool(params) and params[0] == "ctx"
