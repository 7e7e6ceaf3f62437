"""Hostile values get a clear error naming the field or key, never a RecursionError or a hang.

Also artifact names (``ctx.add_file``) and ``result.save_report`` targets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskConfig, UserError, ValidationError


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


def test_task_json_nested_past_the_parser_limit_is_our_validation_error() -> None:
    deep = '{"name": "x", "inputs": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    with pytest.raises(ValidationError, match="recursion limit exceeded"):
        Task.model_validate_json(deep)
    within_parser = '{"name": "x", "inputs": {"a": ' + "[" * 100 + "]" * 100 + "}}"
    with pytest.raises(ValidationError, match=r"Task.inputs: nested 101 deep"):
        Task.model_validate_json(within_parser)


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


def run_handler(aesop: Aesoperator, fn: Any, name: str) -> Any:
    aesop.handler(name)(fn)
    return aesop.execute_task(Task(name=name))


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("x" * 256, "a part of 256 bytes; file systems allow 255"),
        ("é" * 128, "a part of 256 bytes"),
        ("a\x00b", "control characters"),
        ("../x", "'..' part"),
        ("a/../../x", "'..' part"),
        ("/etc/passwd", "absolute path"),
        ("a//b", "an empty"),
        ("a/", "an empty"),
        (".", "'.' or '..' part"),
        ("a\\..\\x", "backslash"),
        ("a\ud800", "not valid Unicode"),
        ("/".join(["d" * 200] * 6), "the limit is 1024"),
    ],
)
def test_add_file_refuses_names_that_cannot_be_one_file(
    inline: Aesoperator, name: str, error: str
) -> None:
    def handler(ctx: Any) -> str:
        ctx.add_file(name, "data")
        return "kept"

    with pytest.raises(UserError) as info:
        run_handler(inline, handler, "bad_name")
    assert error in str(info.value)
    artifacts = inline.data_dir / "artifacts"
    assert not any(p.is_file() for p in artifacts.rglob("*")) if artifacts.exists() else True


def test_add_file_keeps_folders_apart(inline: Aesoperator) -> None:
    def handler(ctx: Any) -> str:
        ctx.add_file("a/x.txt", "from a")
        ctx.add_file("b/x.txt", "from b")
        ctx.add_file("b/x.txt", "from b, again")  # the same name replaces the file
        ctx.add_file("x" * 255, "longest name")
        return "done"

    result = run_handler(inline, handler, "folders")
    files = {f.name: Path(f.path) for f in result.files}
    assert sorted(files) == ["a/x.txt", "b/x.txt", "x" * 255]
    assert files["a/x.txt"].read_text() == "from a"
    assert files["b/x.txt"].read_text() == "from b, again"
    assert files["a/x.txt"].parent.parent == files["b/x.txt"].parent.parent
    assert result.files[0].media_type == "text/plain"


def test_save_report_onto_its_own_artifact_or_a_directory(inline: Aesoperator) -> None:
    def handler(ctx: Any) -> str:
        ctx.add_file("report.html", "<p>own</p>")
        return "the content"

    result = run_handler(inline, handler, "reporting")
    own = Path(result.files[0].path)
    assert result.save_report(own) == own  # nothing to do: it is already there
    assert own.read_text() == "<p>own</p>"
    folder = own.parent
    with pytest.raises(UserError, match=r"is a directory; give a file path such as .*report"):
        result.save_report(folder)
    with pytest.raises(UserError, match="is a directory"):
        result.save_report(str(folder / "new") + "/")
    with pytest.raises(UserError, match=r"save_report\('/sys/aesop/r.md'\)"):
        result.save_report("/sys/aesop/r.md")  # cannot be written, even by root
