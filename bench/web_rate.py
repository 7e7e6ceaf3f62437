"""Rate ceiling accuracy, counted at the server.

``requests_per_second=5``, ``concurrent_requests=8``, 8 workers fetching distinct pages for
20 s through the public API against a local static site served by a separate process (which
timestamps every arrival, robots.txt included). Prints the most requests in any one-second
window (must be <= 5) and the mean rate (target >= 4.75/s). Baseline in the same run: the
same load through a token bucket (capacity 5, 5 tokens/s), the usual limiter, whose bursts
break the one-second ceiling.

    python bench/web_rate.py [--rps 5] [--seconds 20] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sites import SiteServer, build_site


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def report(name: str, times: list[float]) -> None:
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    mean = (len(times) - 1) / span if span else 0.0
    print(
        f"{name:12s} requests {len(times):4d}  max in any 1 s window {max_in_window(times):3d}"
        f"  mean rate {mean:5.2f}/s  (first to last arrival: {span:5.2f} s)"
    )


def run_ours(site: SiteServer, rps: float, seconds: float, conc: int, data_dir: str) -> None:
    from aesoperator import Aesoperator, Task, TaskConfig

    with Aesoperator(data_dir=data_dir, isolation="inline") as aesop:

        @aesop.handler("rate")
        async def rate(ctx, base, seconds, conc):  # type: ignore[no-untyped-def]
            end = time.monotonic() + seconds
            counter = iter(range(10**6))

            async def worker() -> None:
                while time.monotonic() < end:
                    await ctx.web.fetch(f"{base}/a/{next(counter) % 1000:05d}.html")

            await asyncio.gather(*(worker() for _ in range(conc)))
            return "ok"

        config = TaskConfig(
            requests_per_second=rps, concurrent_requests=conc, max_pages=100_000,
            allow_private_network=True, allowed_domains=["127.0.0.1"], fetch_mode="http",
        )  # fmt: skip
        task = Task(name="rate", inputs={"base": site.url(""), "seconds": seconds, "conc": conc},
                    config=config)  # fmt: skip
        aesop.execute_task(task)


async def _bucket(base: str, rps: float, seconds: float, conc: int) -> None:
    import httpx

    tokens, last = rps, time.monotonic()
    lock = asyncio.Lock()

    async def take() -> None:
        nonlocal tokens, last
        async with lock:
            while True:
                now = time.monotonic()
                tokens = min(rps, tokens + (now - last) * rps)
                last = now
                if tokens >= 1:
                    tokens -= 1
                    return
                await asyncio.sleep((1 - tokens) / rps)

    end = time.monotonic() + seconds
    counter = iter(range(10**6))
    async with httpx.AsyncClient() as client:

        async def worker() -> None:
            while time.monotonic() < end:
                await take()
                await client.get(f"{base}/a/{next(counter) % 1000:05d}.html")

        await asyncio.gather(*(worker() for _ in range(conc)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rps", type=float, default=5)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = build_site(Path(tmp) / "site", pages=300)
        for i in range(1000):  # plain numbered pages for the fetch loop
            (root / "a" / f"{i:05d}.html").write_text(f"<title>{i}</title><p>page {i}</p>")
        for name in ("ours", "token bucket"):
            with SiteServer(root) as site:
                before = len(site.arrivals())
                if name == "ours":
                    run_ours(site, args.rps, args.seconds, args.concurrency, tmp + "/data")
                else:
                    asyncio.run(_bucket(site.url(""), args.rps, args.seconds, args.concurrency))
                times = site.arrivals()[before:]
            report(name, times)
    print(f"ceiling {args.rps:g}/s: ours must show max <= {int(args.rps)}; target mean >= "
          f"{0.95 * args.rps:.2f}/s")  # fmt: skip


if __name__ == "__main__":
    main()
