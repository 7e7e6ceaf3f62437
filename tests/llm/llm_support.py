"""Helpers the LLM tests share (a module of its own: ``conftest`` is not a unique name)."""

from __future__ import annotations

from typing import Any

from aesoperator import TaskConfig


def local(**kw: Any) -> TaskConfig:
    """Limits for tasks on the local shop: loopback allowed, nothing else."""
    base: dict[str, Any] = {
        "allow_private_network": True,
        "allowed_domains": ["127.0.0.1"],
        "respect_robots_txt": False,
        "max_retries": 2,
        "retry_delay_seconds": 0.01,
        "request_timeout_seconds": 10,
        "max_duration_seconds": 60,
        "max_steps": 20,
    }
    base.update(kw)
    return TaskConfig(**base)
