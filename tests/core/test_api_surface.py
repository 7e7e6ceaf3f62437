import inspect

import aesoperator
from aesoperator import Aesoperator, errors

PINNED = {
    "AesoperatorError", "Aesoperator", "Alert", "Event", "Execution", "FetchError",
    "Interrupted", "LimitExceeded", "LoopDetected", "MemoryLimitExceeded", "ModelError",
    "NoPlannerError", "NotFoundError", "Output", "PageLimitExceeded", "Plan", "PolicyViolation",
    "ReplayError", "Step", "Task", "TaskCancelled", "TaskConfig", "TaskContext", "TaskError",
    "TaskFailed", "TaskResult", "TaskState", "TaskStatus", "TimeLimitExceeded", "UserError",
    "ValidationError", "WorkerCrashed", "cancel_task", "close", "default_client", "execute_task",
    "execute_task_async", "function", "get_alerts", "get_events", "get_execution",
    "get_task_status", "handler", "list_tasks", "replay", "warmup",
}  # fmt: skip


def test_public_names_are_pinned() -> None:
    # Growing the public API is a decision: update this list on purpose.
    assert set(aesoperator.__all__) == PINNED
    for name in PINNED:
        assert hasattr(aesoperator, name), name


def test_every_public_error_is_exported() -> None:
    public = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.AesoperatorError)
    }
    assert {"ModelError", "LoopDetected", "ReplayError"} <= public
    assert public <= set(aesoperator.__all__)
    for name in public:
        assert getattr(aesoperator, name) is getattr(errors, name)


def test_the_module_is_a_client_with_every_public_method() -> None:
    # `import aesoperator as aesop` then `aesop.<method>`: the README uses the module so.
    methods = {
        name
        for name, value in vars(Aesoperator).items()
        if not name.startswith("_") and callable(value)
    }
    assert {"function", "replay", "handler", "execute_task"} <= methods
    assert methods <= set(aesoperator.__all__)
    for name in methods:
        fn = getattr(aesoperator, name)
        method = inspect.signature(getattr(Aesoperator, name))
        assert inspect.signature(fn).parameters.keys() == method.parameters.keys() - {"self"}
        assert fn.__doc__ == getattr(Aesoperator, name).__doc__


def test_the_type_checkers_view_of_the_module_lists_the_same_methods() -> None:
    # For type checkers, __init__.py spells the module's functions out (`execute_task =
    # _client.execute_task`); at run time they are made from the class. Both lists must agree.
    import ast
    from pathlib import Path

    tree = ast.parse(Path(aesoperator.__file__).read_text(encoding="utf-8"))
    spelled = {
        node.targets[0].id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Attribute)
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "_client"
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == node.value.attr
    }
    methods = {
        name
        for name, value in vars(Aesoperator).items()
        if not name.startswith("_") and callable(value)
    }
    assert spelled == methods
