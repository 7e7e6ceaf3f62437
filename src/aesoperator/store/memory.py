"""Task memory: JSON values under string keys, in a namespace of the store.

Namespaces: ``global`` (``aesop.memory`` outside a task), ``task:<name>`` (a task with
``memory_scope="permanent"``: kept across executions and processes) and ``exec:<id>``
(``memory_scope="session"``: the execution's own, cleared when it ends, however it ends).

Every method is one store operation, so each is atomic on its own; a ``get`` then a ``set``
is not (another process may write in between): ``update`` and ``incr`` are the
read-modify-writes that are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from .._bounds import shape_problem, short_repr, to_json
from ..errors import ValidationError
from .base import MemoryStore
from .lifecycle import session_namespace
from .tokens import DEFAULT_PROJECT, project_namespace

_MISSING = object()


class Memory:
    """A dict-like view of one memory namespace. Values must be JSON-serialisable."""

    def __init__(self, store: MemoryStore, namespace: str) -> None:
        self._store = store
        self.namespace = namespace

    def get(self, key: str, default: Any = None) -> Any:
        raw = self._store.mem_get(self.namespace, _key(key))
        return default if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        """Store ``value``: JSON, at most 64 levels deep and 16 MiB, valid Unicode.

        ``TypeError`` for a value that is not JSON, ``ValidationError`` for one out of bounds.
        """
        self._store.mem_set(self.namespace, _key(key), _dumps("set", key, value))

    def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Replace the value with ``fn(value)`` atomically, across threads and processes.

        ``fn`` gets the current value (``default`` if the key is absent) and returns the new
        one, which is stored and returned. No write from elsewhere can come in between, so
        concurrent updates never lose one another's changes. ``fn`` runs while the store is
        locked for writing: keep it a quick function of the value (it must not use memory).

        >>> memory.update("seen", lambda urls: sorted({*urls, url}), default=[])  # doctest: +SKIP
        """
        if not callable(fn):
            raise TypeError(f"memory.update({key!r}, fn): fn must be callable, got {fn!r}")
        new: list[Any] = []

        def apply(raw: str | None) -> str:
            new[:] = [fn(default if raw is None else json.loads(raw))]
            return _dumps("update", key, new[0])

        self._store.mem_update(self.namespace, _key(key), apply)
        return new[0]

    def incr(self, key: str, by: int | float = 1) -> int | float:
        """Add ``by`` to a number (an absent key counts as 0) atomically; return the sum."""
        if isinstance(by, bool) or not isinstance(by, int | float):
            raise TypeError(f"memory.incr({key!r}, by=...): got {by!r}; use an int or a float")

        def add(value: Any) -> int | float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(
                    f"memory.incr({key!r}): the stored value is a {type(value).__name__} "
                    f"({value!r:.60}), not a number; set a number first or use memory.update"
                )
            return value + by

        result: int | float = self.update(key, add, default=0)
        return result

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


def _dumps(method: str, key: str, value: Any) -> str:
    """``value`` as JSON; ``TypeError`` if it is not JSON, ``ValidationError`` if out of bounds."""
    try:
        return to_json(value, f"memory.{method}({short_repr(key)}, ...)")
    except ValueError as exc:  # out of bounds (not JSON is a TypeError, raised as it is)
        raise ValidationError(str(exc)) from None


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"memory keys are non-empty strings, got {short_repr(key)}")
    problem = shape_problem(key)  # a lone surrogate cannot be stored as UTF-8
    if problem is not None:
        raise ValidationError(f"memory key {short_repr(key)}: {problem}")
    if "\x00" in key:  # PostgreSQL text cannot hold it: refused by every store alike
        raise ValidationError(f"memory key {short_repr(key)}: contains a NUL character; remove it")
    return key


def namespace_for(
    task_name: str, scope: str, execution_id: str, project: str = DEFAULT_PROJECT
) -> str:
    """A task's memory namespace; a permanent one lives in its project's space.

    Session namespaces are the execution's own (ids are unique across projects).
    """
    if scope == "permanent":
        return project_namespace(project, f"task:{task_name}")
    return session_namespace(execution_id)
