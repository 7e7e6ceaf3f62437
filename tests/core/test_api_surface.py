import aesoperator

PINNED = {
    "AesoperatorError", "Aesoperator", "Alert", "Event", "Execution", "FetchError",
    "Interrupted", "LimitExceeded", "MemoryLimitExceeded", "NoPlannerError", "NotFoundError",
    "Output", "PageLimitExceeded", "Plan", "PolicyViolation", "Step", "Task", "TaskCancelled",
    "TaskConfig", "TaskContext", "TaskError", "TaskFailed", "TaskResult", "TaskState", "TaskStatus",
    "TimeLimitExceeded", "UserError", "ValidationError", "WorkerCrashed", "cancel_task",
    "default_client", "execute_task", "execute_task_async", "get_alerts", "get_events",
    "get_task_status", "handler", "list_tasks",
}  # fmt: skip


def test_public_names_are_pinned() -> None:
    # Growing the public API is a decision: update this list on purpose.
    assert set(aesoperator.__all__) == PINNED
    for name in PINNED:
        assert hasattr(aesoperator, name), name
