"""Built-in research skill: discover pages on a topic, read them best-first, and write a cited,
extractive report (no LLM needed; with one, an abstractive report whose every sentence is
checked against the source it cites, see ``_llm``).

Inputs: ``topic`` (required), ``depth`` (``overview`` | ``technical``), ``focus_areas``,
``start_date`` (ISO date), ``max_results``, ``start_urls``, ``search`` (provider name, or
``{"provider": ..., "base_url": ...}``, or a list of them). Limits come from ``TaskConfig``.

The Wikipedia, arXiv and DuckDuckGo providers are API clients: robots.txt (which refuses them
on the real sites) is not consulted for their API requests, each API's terms are followed
instead and said in the timeline (see ``_discover``); the policy still applies to them. A site
behind a bot wall is reported once and not asked again; when every provider fails,
``result.summary`` says which and why.

With a client model (``Aesoperator(llm=...)``, reaching skills as ``ctx.llm``) the topic is
expanded into extra queries and crawl terms, and the report is written by the model: each
sentence must cite sources, and one its cited source does not support (lexical share below
``_llm.SUPPORT_MIN``, or the model's own yes/no judgement) is dropped and counted in
``result.data["llm"]``. Model errors and calls the token or cost budget cannot hold fall back to
the extractive report, said in the timeline and the report.

This module is cheap to import; the work lives in private submodules loaded by ``run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...results import TaskResult
    from ...runtime.context import TaskContext
    from ...task import Task

__all__ = ["matches", "run", "save_report"]


def matches(task: Task) -> bool:
    """A ``topic`` input, a name like ``research`` / ``research_*``, or ``skill="research"``."""
    if task.skill == "research" or "topic" in task.inputs:
        return True
    name = task.name.lower()
    return name == "research" or name.startswith(("research_", "research-", "research."))


# Below this many pages, extraction runs on a thread. The web layer's extraction processes are
# warm for the life of the worker, so only a worker's first task pays their start-up (about
# 0.3 CPU-s, once for all of them); until they are up, the crawl follows links from a cheap
# pass over each page, and the pages wait for their extraction.
_POOL_FROM_PAGES = 8


async def run(ctx: TaskContext) -> Any:
    """Run the research pipeline for ``ctx.task``."""
    pool_warm = None
    if ctx.budget.pages_left >= _POOL_FROM_PAGES:
        from ...web import warm_extraction

        # Before the pipeline's imports (~0.2 s): the processes start on the other core
        # meanwhile, and are warm when the first page arrives.
        pool_warm = warm_extraction()
    from ._pipeline import research

    return await research(ctx, pool_warm)


def save_report(result: TaskResult, path: Path) -> bool:
    """``.md`` gets the markdown report, ``.json`` the sources and passages; else fall back."""
    import json

    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        path.write_text(result.content, encoding="utf-8")
        return True
    if suffix == ".json" and isinstance(result.data, dict):
        path.write_text(json.dumps(result.data, indent=2, ensure_ascii=False), encoding="utf-8")
        return True
    return False
