"""A research task on a site served on 127.0.0.1 (the research tests each spelt it out)."""

from __future__ import annotations

from typing import Any

from aesoperator import Task, TaskConfig


def local_research(topic: str, start: str, *, name: str = "research_local", **config: Any) -> Task:
    """Research ``topic`` from ``start`` on 127.0.0.1: no retries, ``config`` on top."""
    base: dict[str, Any] = {
        "allowed_domains": ["127.0.0.1"],
        "allow_private_network": True,
        "max_retries": 0,
        "retry_delay_seconds": 0.01,
        **config,
    }
    return Task(name=name, skill="research", config=TaskConfig(**base),
                inputs={"topic": topic, "start_urls": [start]})  # fmt: skip
