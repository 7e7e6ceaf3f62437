"""LLM planner figures on the local shop (login, search, pages, cart, form), model time excluded.

1. Per-step overhead of observe + act, model time excluded: an 11-step task run through the
   public API with a scripted model (no network, ~0 ms per decision), minus the model time
   recorded in its ``llm_call`` events, divided by the steps. Baseline: the same 11 steps as
   hand-written Playwright calls on a bare Chromium (no observation, no policy gate, no
   recording).
2. Observation size in tokens (4 characters per token for all three) vs the page's raw HTML
   and vs Playwright's ARIA snapshot, on the shop's pages and on demo-site pages; and the time
   of one ``observe`` vs ``page.content()``.
   Baseline 2 runs the same Playwright calls inside the task's policy-gated browser context,
   so the planner's own cost per step (observe, refs, records) is ours minus baseline 2.
3. Replay of the recorded trace (no model) vs the recorded run, the model simulated at
   ``--model-ms`` per decision (a scripted model that sleeps; real ones take 0.5-3 s).

    .venv/bin/python bench/llm_overhead.py [--runs 5] [--model-ms 800]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "llm"))
sys.path.insert(0, str(ROOT))

from llm_webapp import serve  # noqa: E402

from aesoperator import Aesoperator, Task, TaskConfig  # noqa: E402
from aesoperator.models import ScriptedModel, call, ref_of  # noqa: E402
from aesoperator.planning.llm import replay_task  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


def config() -> TaskConfig:
    return TaskConfig(allow_private_network=True, allowed_domains=["127.0.0.1"],
                      respect_robots_txt=False, max_steps=30)  # fmt: skip


def script(url: str) -> list[Any]:
    return [
        call("navigate", url=f"{url}/search"),
        lambda o: call("type", ref=ref_of(o, "Search products"), text="lamp", submit=True),
        lambda o: call("click", ref=ref_of(o, "Next page")),
        lambda o: call("click", ref=ref_of(o, '"Reading lamp"')),
        lambda o: call("click", ref=ref_of(o, '"Add to cart"')),
        call("navigate", url=f"{url}/contact"),
        lambda o: [call("type", ref=ref_of(o, '"Your name"'), text="Bob"),
                   call("type", ref=ref_of(o, '"Email"'), text="bob@example.org"),
                   call("select", ref=ref_of(o, '"Topic"'), option="Order"),
                   call("check", ref=ref_of(o, "I accept"))],
        lambda o: call("click", ref=ref_of(o, 'button "Send"')),
        call("finish", result="done"),
    ]  # fmt: skip


STEPS = 11  # browser steps in the script above (finish excluded)


async def _steps(page: Any, url: str) -> float:
    """Steps 2..11 as hand-written Playwright calls; returns seconds per step."""
    await page.goto(f"{url}/search")
    t0 = time.perf_counter()
    await page.get_by_label("Search products").fill("lamp")
    await page.get_by_label("Search products").press("Enter")
    await page.wait_for_load_state("load")
    await page.get_by_text("Next page").click()
    await page.wait_for_load_state("load")
    await page.get_by_role("link", name="Reading lamp").click()
    await page.wait_for_load_state("load")
    await page.get_by_role("button", name="Add to cart").click()
    await page.wait_for_load_state("load")
    await page.goto(f"{url}/contact")
    await page.get_by_label("Your name").fill("Bob")
    await page.get_by_label("Email").fill("bob@example.org")
    await page.get_by_label("Topic").select_option(label="Order")
    await page.get_by_label("I accept the terms").check()
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_load_state("load")
    return (time.perf_counter() - t0) / (STEPS - 1)


async def raw_playwright(url: str, runs: int) -> list[float]:
    """Baseline 1: bare Playwright on a bare Chromium (no policy gate, observation, records)."""
    from playwright.async_api import async_playwright

    per_step: list[float] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        for i in range(runs + 1):
            ctx = await browser.new_context()
            step = await _steps(await ctx.new_page(), url)
            if i:  # the first run warms up
                per_step.append(step)
            await ctx.close()
        await browser.close()
    return per_step


async def gated_playwright(ctx: Any, url: str) -> float:
    """Baseline 2, a handler: the same calls in the task's policy-gated browser context.

    The difference between this and the planner is what the planner itself adds per step:
    observing the page, resolving refs, recording actions and events.
    """
    return await _steps(await ctx.web.open_page(), url)


class SlowScripted(ScriptedModel):
    """A scripted model that takes ``delay`` seconds per decision, like a real one."""

    delay = 0.0

    async def complete(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(self.delay)
        return await super().complete(*args, **kwargs)


async def sizes(pages: list[str]) -> list[tuple[str, int, int, int, float, float]]:
    from playwright.async_api import async_playwright

    from aesoperator.planning.llm._observe import observe

    rows = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = await browser.new_page()
        for url in pages:
            await page.goto(url)
            html = await page.content()
            t0 = time.perf_counter()
            for _ in range(5):
                html = await page.content()
            t_html = (time.perf_counter() - t0) / 5
            aria = await page.locator("body").aria_snapshot()
            t0 = time.perf_counter()
            for _ in range(5):
                obs = await observe(page)
            t_obs = (time.perf_counter() - t0) / 5
            text = obs.render(3000)
            rows.append((url, len(html) // 4, len(aria) // 4, len(text) // 4, t_obs, t_html))
        await browser.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--model-ms",
        type=float,
        default=800.0,
        help="simulated model time per decision for the replay comparison",
    )
    opts = parser.parse_args()
    runs, model_ms = opts.runs, opts.model_ms
    from examples.demo_site.generate import build_site
    from examples.demo_site.serve import DemoServer

    with serve() as shop, tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        manifest = build_site(site, articles=60)
        with Aesoperator(data_dir=Path(tmp) / "d", isolation="inline", llm="scripted:x") as aesop:
            overheads, setups, gated, base = [], [], [], []
            observes: list[float] = []
            aesop.handler("gated")(gated_playwright)
            # The three are interleaved, run by run, so that the machine's load hits them alike.
            for i in range(runs + 1):
                model = ScriptedModel(script(shop.url))
                aesop.llm = model.spec
                ex = aesop.execute_task_async(Task(name="shop", config=config()))
                result = ex.result(timeout=120)
                events = aesop.get_events(ex.id)
                model_s = sum(e.data["seconds"] for e in events if e.kind == "llm_call")
                steps = [e.data for e in events if e.kind == "llm_step"]
                first_s = steps[0]["act_ms"] / 1000  # opens the policy-gated browser context
                gate = aesop.execute_task(
                    Task(name="gated", inputs={"url": shop.url}, config=config())
                )
                raw = asyncio.run(raw_playwright(shop.url, 1))[0]
                if i:  # the first run starts Chromium
                    overheads.append((result.duration_seconds - model_s - first_s) / (STEPS - 1))
                    setups.append(first_s)
                    observes.extend(s["observe_ms"] for s in steps[1:])
                    gated.append(float(gate.data))
                    base.append(raw)
            # Replay vs a recorded run whose model takes `model_ms` per decision.
            durations, replays = [], []
            for _ in range(runs):
                slow = SlowScripted(script(shop.url))
                slow.delay = model_ms / 1000
                aesop.llm = slow.spec
                rec = aesop.execute_task(Task(name="shop", config=config()))
                durations.append(rec.duration_seconds)
                again = aesop.execute_task(
                    replay_task(rec.execution_id, config=config(), repair=False)
                )
                replays.append(again.duration_seconds)
        with DemoServer(site) as demo:
            art = manifest["articles"][0]["path"]  # type: ignore[index]
            pages = [f"{shop.url}/search?q=lamp", f"{shop.url}/contact", f"{shop.url}/catalog",
                     f"{demo.url}/",
                     f"{demo.url}/{str(art).lstrip('/')}"]  # fmt: skip
            rows = asyncio.run(sizes(pages))

    ours, raw = statistics.median(overheads), statistics.median(base)
    gate = statistics.median(gated)
    own = statistics.median(o - g for o, g in zip(overheads, gated, strict=True))
    print(f"per-step time, model time excluded (median of {runs} runs; steps 2-{STEPS})")
    print(f"  baseline 1, bare Playwright + bare Chromium:    {raw * 1000:7.1f} ms/step")
    print(f"  baseline 2, same calls in the policy gate:      {gate * 1000:7.1f} ms/step")
    print(f"  Aesoperator planner (observe + act + record):   {ours * 1000:7.1f} ms/step")
    print(
        f"    of which observe: {statistics.median(observes):.1f} ms/step (median); "
        f"step 1 (opens the gated browser context): {statistics.median(setups) * 1000:.0f} ms"
    )
    print(
        f"  planner's own cost (median over runs of ours - baseline 2): {own * 1000:.1f} ms/step; "
        f"the gate's (baseline 2 - 1): {(gate - raw) * 1000:.1f} ms/step"
    )
    print(f"  ratios: ours/baseline 1 {ours / raw:.2f}x, ours/baseline 2 {ours / gate:.2f}x; "
          f"target < 150 ms/step: {'met' if ours < 0.150 else 'NOT met'}")  # fmt: skip
    print("\nobservation size (tokens ~ chars/4) and time")
    print(f"  {'page':45} {'raw HTML':>9} {'ARIA snap':>9} {'ours':>6} {'HTML/ours':>9} "
          f"{'observe ms':>10} {'content() ms':>12}")  # fmt: skip
    for url, h, a, o, t_obs, t_html in rows:
        short = url.split("//", 1)[1][:45]
        print(f"  {short:45} {h:9d} {a:9d} {o:6d} {h / o:8.1f}x {t_obs * 1000:10.1f} "
              f"{t_html * 1000:12.1f}")  # fmt: skip
    rec, rep = statistics.median(durations), statistics.median(replays)
    print(
        f"\nreplay without the model vs the recorded run (model simulated at {model_ms:g} ms "
        "per decision; the replay makes none)"
    )
    print(f"  recorded run: {rec * 1000:.0f} ms   replay: {rep * 1000:.0f} ms   "
          f"ratio replay/recorded: {rep / rec:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
