"""Hostile values get a clear error naming the field or key, never a RecursionError or a hang."""

from __future__ import annotations

from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskConfig, ValidationError


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_inputs_nested_100000_deep_name_the_field_the_depth_and_the_limit() -> None:
    with pytest.raises(ValidationError) as info:
        Task(name="deep", inputs={"a": nested(100_000)})
    assert "Task.inputs: nested 100,001 deep; the limit is 64 levels" in str(info.value)


def test_the_bounds_hold_for_every_field_and_the_config() -> None:
    at_limit = {"a": nested(63)}  # the inputs dict is the first level
    assert Task(name="ok", inputs=at_limit).inputs == at_limit
    for kwargs, where in [
        ({"inputs": {"a": nested(64)}}, "Task.inputs: nested 65 deep"),
        ({"output_schema": {"a": nested(500)}}, "Task.output_schema: nested 501 deep"),
        ({"plan": [{"action": "x", "args": {"a": nested(500)}}]}, "Task.plan: nested 503 deep"),
        ({"config": {"allowed_domains": nested(5000)}}, "Task.config: nested 5,001 deep"),
        ({"name": nested(5000)}, "Task.name: nested 5,000 deep"),
    ]:
        with pytest.raises(ValidationError) as info:
            Task(**{"name": "t", **kwargs})
        assert where in str(info.value)
    with pytest.raises(ValidationError, match=r"TaskConfig.blocked_domains: nested 2,000 deep"):
        TaskConfig(blocked_domains=nested(2000))


def test_inputs_that_refer_to_themselves_or_are_too_big_are_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValidationError, match=r"Task.inputs: .*contains itself"):
        Task(name="loop", inputs={"a": loop})
    with pytest.raises(ValidationError, match=r"Task.inputs: .*17.0 MiB as JSON; the limit is 16"):
        Task(name="big", inputs={"text": "x" * (17 * 2**20)})
    with pytest.raises(ValidationError, match=r"holds more than 1,000,000 values"):
        Task(name="many", inputs={"n": [0] * 1_000_001})
    with pytest.raises(ValidationError, match=r"Task.inputs: .*lone surrogate"):
        Task(name="text", inputs={"t": "\ud800"})


def test_error_messages_show_a_bounded_value() -> None:
    # The value is echoed in the message: a huge or deep one must not blow it up.
    with pytest.raises(ValidationError) as info:
        TaskConfig(max_pages=["x" * 10_000] * 10_000)
    assert len(str(info.value)) < 400


def test_memory_refuses_unstorable_values_by_key(inline: Aesoperator) -> None:
    with pytest.raises(ValidationError, match=r"memory.set\('s', ...\): .*lone surrogate"):
        inline.memory.set("s", "\ud800")
    with pytest.raises(ValidationError, match=r"memory.set\('d', ...\): nested 5,000 deep"):
        inline.memory.set("d", nested(5000))
    with pytest.raises(ValidationError, match=r"memory.set\('k', ...\): the key '\\ud800'"):
        inline.memory.set("k", {"\ud800": 1})
    with pytest.raises(ValidationError, match=r"memory key '\\udc00'"):
        inline.memory.set("\udc00", 1)
    assert "\udc00" not in inline.memory
    with pytest.raises(TypeError, match=r"memory.set\('n', ...\): a set value cannot be stored"):
        inline.memory.set("n", {1, 2})
    assert inline.memory.keys() == []
