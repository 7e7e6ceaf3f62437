"""A free-form task for the LLM planner, runnable offline against the local demo site.

    python examples/llm_search.py                       # scripted model, no network
    AESOP_LLM=openai:gpt-4.1-mini python examples/llm_search.py       # a real model
    AESOP_LLM='openai:llama3.1?base_url=http://localhost:11434/v1' python examples/llm_search.py

The task: search the site for quantum computing articles and return the first three as
structured data (validated against a pydantic model). Then the recorded trace is replayed
with another query, without any model.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.demo_site.generate import build_site
from examples.demo_site.serve import DemoServer

from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.models import ScriptedModel, call, ref_of
from aesoperator.planning.llm import replay_task


class Article(BaseModel):
    title: str
    date: str


class Findings(BaseModel):
    articles: list[Article]


def first_three(observation: str) -> list[dict[str, str]]:
    """What a model would read off the results page: title lines followed by their date."""
    text = observation.split("Visible text:\n", 1)[1].splitlines()
    out = []
    for line in text[1:]:
        parts = line.rsplit(" ", 1)
        if len(parts) == 2 and parts[1][:2] == "20" and len(parts[1]) == 10:
            out.append({"title": parts[0], "date": parts[1]})
    return out[:3]


def scripted(site: str) -> ScriptedModel:
    return ScriptedModel([
        call("navigate", url=site),
        lambda obs: call("type", ref=ref_of(obs, 'textbox "Search"'), text="quantum computing",
                         submit=True),
        lambda obs: call("finish", result={"articles": first_three(obs)},
                         summary="the first three results"),
    ])  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build_site(Path(tmp) / "site", articles=80)
        with DemoServer(Path(tmp) / "site") as demo:
            llm = os.environ.get("AESOP_LLM") or scripted(demo.url + "/").spec
            config = TaskConfig(
                allowed_domains=["127.0.0.1"], allow_private_network=True, max_steps=15,
                max_pages=10, max_llm_tokens=60_000, max_cost_usd=0.05,
            )  # fmt: skip
            with Aesoperator(data_dir=Path(tmp) / "data", isolation="inline", llm=llm) as aesop:
                task = Task(
                    name="find_articles",
                    description=f"On {demo.url}/ search for the query and return the first "
                    "three results with their dates",
                    inputs={"query": "quantum computing"},
                    output_schema=Findings,
                    config=config,
                )
                result = aesop.execute_task(task)
                for art in Findings.model_validate(result.data).articles:
                    print(f"{art.date}  {art.title}")
                print("steps:", [a.name for a in result.actions])
                print("usage:", result.usage)

                again = aesop.execute_task(
                    replay_task(result.execution_id, {"query": "genomics"}, config=config)
                )
                print("\nreplayed with query 'genomics', no model:", again.summary)
                print(again.content.splitlines()[0])


if __name__ == "__main__":
    main()
