"""The end-of-execution webhook: a signed POST once an execution is completed, failed or
cancelled, sent by the process that ran it, after the end is stored.

Same signing, retries and ``webhook_delivery`` timeline records as the monitor's alert
webhooks (``skills/monitor/_webhooks.py``). The target's addresses go through the policy at
each attempt: private, loopback and link-local ones are refused unless the task's config
has ``allow_private_network``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..execution import TaskStatus
from ..store.base import EventRecord
from ..task import Task
from ..web.policy import Policy
from ._state_writer import StateWriter

_TIMEOUT_S = 10.0  # one attempt, at most: a hanging receiver costs this, never the execution
_MAX_RETRIES = 5
_SUMMARY_CHARS = 500
_LINK = re.compile(r"\b(?:https?|ftp)://\S+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Hook:
    """Where and how to sign: the task's ``webhook_url``/``webhook_secret`` or the defaults."""

    url: str
    secret: str


def hook_for(task: Task, url: str | None, secret: str | None) -> Hook | None:
    """The hook of ``task`` given the client's defaults; None when there is no URL or secret
    (the client refuses a task with a URL and no secret before it runs)."""
    target = task.webhook_url or url
    key = task.webhook_secret.get_secret_value() if task.webhook_secret else secret
    return Hook(target, key) if target and key else None


def payload(status: TaskStatus) -> dict[str, Any]:
    """What the receiver learns: ids, state, error, end time and a short summary (the
    stored, redacted one, without links)."""
    summary = None
    if status.result is not None and status.result.summary:
        text = _LINK.sub("", status.result.summary)
        summary = " ".join(text.split())[:_SUMMARY_CHARS]
    return {
        "type": "execution.finished",
        "execution_id": status.id,
        "task_name": status.name,
        "state": status.state.value,
        "error": status.error.model_dump(mode="json") if status.error else None,
        "finished_at": status.finished_at.isoformat() if status.finished_at else None,
        "summary": summary,
    }


async def notify_end(status: TaskStatus, task: Task, hook: Hook, writer: StateWriter) -> bool:
    """Deliver the end of ``status``'s execution to ``hook``; each attempt is recorded."""
    config = task.config

    def record(**info: Any) -> None:
        writer.write(EventRecord(status.id, "webhook_delivery", info))

    # Imported here: the monitor's HTTP probe (and cryptography's x509) would otherwise load
    # with every client, ~65 ms of `import aesoperator`, for a webhook most tasks never have.
    from ..skills.monitor._webhooks import deliver

    return await deliver(
        hook.url,
        hook.secret,
        payload(status),
        policy=Policy(allow_private_network=config.allow_private_network),
        contexts=None,
        retries=min(config.max_retries, _MAX_RETRIES),
        first_delay=config.retry_delay_seconds,
        record=record,
        timeout=min(_TIMEOUT_S, config.request_timeout_seconds),
    )
