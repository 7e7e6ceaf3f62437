"""Task memory: JSON values under string keys, in a namespace of the store.

Namespaces: ``global`` (``aesop.memory`` outside a task), ``task:<name>`` (a task with
``memory_scope="permanent"``: kept across executions and processes) and ``exec:<id>``
(``memory_scope="session"``: the execution's own, cleared when it ends).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .._bounds import shape_problem, short_repr, to_json
from ..errors import ValidationError
from .sqlite import Store

_MISSING = object()


class Memory:
    """A dict-like view of one memory namespace. Values must be JSON-serialisable."""

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self.namespace = namespace

    def get(self, key: str, default: Any = None) -> Any:
        raw = self._store.mem_get(self.namespace, _key(key))
        return default if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        """Store ``value``: JSON, at most 64 levels deep and 16 MiB, valid Unicode.

        ``TypeError`` for a value that is not JSON, ``ValidationError`` for one out of bounds.
        """
        where = f"memory.set({short_repr(_key(key))}, ...)"
        try:
            raw = to_json(value, where)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        self._store.mem_set(self.namespace, key, raw)

    def delete(self, key: str) -> bool:
        return self._store.mem_delete(self.namespace, _key(key))

    def keys(self) -> list[str]:
        return self._store.mem_keys(self.namespace)

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self.get(k)) for k in self.keys()]

    def clear(self) -> None:
        self._store.mem_clear(self.namespace)

    def __contains__(self, key: object) -> bool:
        return (
            isinstance(key, str)
            and shape_problem(key) is None  # an unstorable key is in no namespace
            and self._store.mem_get(self.namespace, key) is not None
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __repr__(self) -> str:
        return f"Memory({self.namespace!r}, keys={self.keys()!r})"


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"memory keys are non-empty strings, got {short_repr(key)}")
    problem = shape_problem(key)  # a lone surrogate cannot be stored as UTF-8
    if problem is not None:
        raise ValidationError(f"memory key {short_repr(key)}: {problem}")
    return key


def namespace_for(task_name: str, scope: str, execution_id: str) -> str:
    return f"task:{task_name}" if scope == "permanent" else f"exec:{execution_id}"
