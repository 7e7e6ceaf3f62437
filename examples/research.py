"""TASKS.md's "Web Research Task", runnable offline (``make demo``).

    python examples/research.py [--topic "quantum computing"] [--save report.md]

The task is the one in TASKS.md; two additions make it work without internet (see
``_offline.py``): ``allow_private_network=True`` because the demo site is on loopback, and a
``search`` input that points the generic "site" search provider at it.
"""

from __future__ import annotations

import argparse
import tempfile

from _offline import demo_web

from aesoperator import Aesoperator, Task, TaskConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", default="quantum computing")
    parser.add_argument("--save", default=None, help="write the markdown report here")
    opts = parser.parse_args()

    with demo_web() as base_url, tempfile.TemporaryDirectory() as data_dir:
        aesop = Aesoperator(data_dir=data_dir)
        research_task = Task(
            name="research_quantum_computing",
            description="Research recent advances in quantum computing",
            config=TaskConfig(
                max_pages=10,
                allowed_domains=["arxiv.org", "nature.com", "science.org"],
                allow_private_network=True,  # offline demo: the site is on 127.0.0.1
            ),
            inputs={
                "topic": opts.topic,
                "start_date": "2023-01-01",
                "focus_areas": ["algorithms", "hardware"],
                "search": {"provider": "site", "base_url": base_url},  # offline demo
            },
        )

        result = aesop.execute_task(research_task)
        print(result.summary)
        print("\n" + "-" * 72 + "\n")
        print(result.content)
        print(f"({result.pages_visited} pages, {result.duration_seconds:.1f}s, "
              f"served by {result.planner})")  # fmt: skip
        if opts.save:
            print("report saved to", result.save_report(opts.save))
        aesop.close()


if __name__ == "__main__":
    main()
