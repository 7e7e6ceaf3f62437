"""Browser memory on real pages: does a browser task fit the default ``max_memory_mb``?

A browser-mode task fetches ~100 pages of a real documentation site (``_docsites.py``:
PostgreSQL's DocBook pages, Django's Sphinx pages) with ``concurrent_requests=4`` and the
default ``max_memory_mb`` (1024). Printed per run: pages completed and failed, how the task
ended, and the peak memory of the execution's process tree as the watchdog measures it (the
worker and the browser under it: the sum of PSS) against the limit.

    python bench/browser_memory.py [--site postgresql|django|both] [--pages 100] [--rounds 1]
                                   [--largest] [--base-src DIR]

``--base-src`` is another checkout's ``src`` (e.g. ``git archive main src | tar -x -C DIR``):
its runs alternate with this tree's in the same invocation, so before and after share the
machine's conditions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _urls(site_name: str, base: str, pages: int, largest: bool) -> list[str]:
    from _docsites import SITES

    root = SITES[site_name].root
    files = list(root.rglob("*.html"))
    if largest:  # the heaviest pages of the site: where a browser's memory is tested
        files = sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:pages]
    names = sorted(p.relative_to(root).as_posix() for p in files)
    step = max(1, len(names) // pages)
    return [base + n for n in names[::step][:pages]]


class _Peak:
    """The largest PSS sum over each worker's process tree, sampled like the watchdog."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.1):
            for worker in self._me.children():
                try:
                    procs = [worker, *worker.children(recursive=True)]
                except psutil.Error:
                    continue
                total = 0
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_full_info().pss
                self.peak = max(self.peak, total)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run_one(urls: list[str], tabs: int, data_dir: str) -> dict[str, object]:
    import asyncio

    from aesoperator import Aesoperator, Task, TaskConfig, TaskError

    with Aesoperator(data_dir=data_dir, pool_size=1) as aesop:

        @aesop.handler("browse_docs")
        async def browse(ctx, urls):  # type: ignore[no-untyped-def]
            queue = list(reversed(urls))
            done = [0, 0]

            async def worker() -> None:
                while queue:
                    try:
                        await ctx.web.fetch(queue.pop(), mode="browser")
                        done[0] += 1
                    except TaskError:
                        done[1] += 1
                    ctx.progress(100 * (done[0] + done[1]) / len(urls))

            await asyncio.gather(*(worker() for _ in range(tabs)))
            return {"completed": done[0], "failed": done[1]}

        config = TaskConfig(concurrent_requests=tabs, max_pages=len(urls),
                            allow_private_network=True, allowed_domains=["127.0.0.1"])  # fmt: skip
        task = Task(name="browse_docs", inputs={"urls": urls}, config=config)
        t0 = time.perf_counter()
        with _Peak() as peak:
            execution = aesop.execute_task_async(task)
            try:
                data = dict(execution.result().data)
            except TaskError as exc:
                data = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            status = aesop.get_task_status(execution.id)
        events = [e.kind for e in aesop.get_events(execution.id)]
        data.update(state=str(status.state.value), progress=round(status.progress),
                    limit_mb=config.max_memory_mb, peak_mb=round(peak.peak / 1048576),
                    seconds=round(time.perf_counter() - t0, 1),
                    sheds=sum(1 for k in events if k.startswith("browser_memory")))  # fmt: skip
        return data


def _child(args: argparse.Namespace) -> None:
    from _docsites import DocSite

    with DocSite(args.site) as site, tempfile.TemporaryDirectory() as tmp:
        urls = _urls(args.site, site.url(), args.pages, args.largest)
        print(json.dumps(run_one(urls, args.tabs, tmp)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", choices=["postgresql", "django", "both"], default="both")
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--tabs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--base-src", help="another checkout's src/ to run beside this one")
    ap.add_argument("--largest", action="store_true", help="the site's largest pages")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    sites = ["postgresql", "django"] if args.site == "both" else [args.site]
    impls = [("ours", str(HERE.parent / "src"))]
    if args.base_src:
        impls.insert(0, ("base", str(Path(args.base_src).resolve())))
    for r in range(args.rounds):
        for site in sites:
            for label, src in impls:
                env = {**os.environ, "PYTHONPATH": src}
                cmd = [sys.executable, __file__, "--child", "--site", site,
                       "--pages", str(args.pages), "--tabs", str(args.tabs),
                       *(["--largest"] if args.largest else [])]  # fmt: skip
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                lines = out.stdout.strip().splitlines()
                got = json.loads(lines[-1]) if lines else {"crashed": out.stderr[-500:]}
                print(f"round {r + 1} {site:10s} {label:4s} {json.dumps(got)}", flush=True)


if __name__ == "__main__":
    main()
