"""TASKS.md's "Task Composition" example (research, then summarize), runnable offline.

    python examples/compose.py [--topic "quantum computing"]

``research_and_summarize`` is TASKS.md's function; the research task gets the two offline
additions explained in ``_offline.py`` (a demo-site search provider and
``allow_private_network=True``).
"""

from __future__ import annotations

import argparse
import tempfile

from _offline import demo_web

from aesoperator import Aesoperator, Task, TaskConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", default="quantum computing")
    opts = parser.parse_args()

    with demo_web() as base_url, tempfile.TemporaryDirectory() as data_dir:
        aesop = Aesoperator(data_dir=data_dir)

        def research_and_summarize(topic: str):  # type: ignore[no-untyped-def]
            # Research task
            research_task = Task(
                name="research",
                inputs={
                    "topic": topic,
                    "search": {"provider": "site", "base_url": base_url},  # offline demo
                },
                config=TaskConfig(
                    max_pages=5,
                    allowed_domains=["nature.com"],  # offline demo: stay on the demo site
                    allow_private_network=True,  # offline demo: the site is on 127.0.0.1
                ),
            )
            research_result = aesop.execute_task(research_task)

            # Summarization task
            summary_task = Task(
                name="summarize",
                inputs={"text": research_result.content, "max_length": 1000},
            )
            summary = aesop.execute_task(summary_task)

            return summary

        # Execute composed workflow
        summary = research_and_summarize(opts.topic)
        print(summary.content)
        print(f"\n({len(summary.content)} characters, served by {summary.planner})")
        aesop.close()


if __name__ == "__main__":
    main()
