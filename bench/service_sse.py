"""Live events over HTTP: 200 SSE subscribers on one busy execution, delivery latency.

A served instance (`aesop serve`, bench/_service.py) runs the ``ticker`` handler: one timeline
event every 20 ms, each carrying the wall-clock time it was emitted. ``--subscribers`` clients
(spread over ``--procs`` processes so the measuring side does not starve one event loop) each
hold one ``text/event-stream`` connection to ``/v1/tasks/{id}/events`` and note when each tick
arrives. Latency = arrival time - the event's stored ``at`` (the supervisor's clock when it
wrote the row; same machine), and, for reference, arrival - emit time in the worker.

    python bench/service_sse.py [--subscribers 200] [--events 250] [--procs 4]

Target (issue 16): p95 stored->client < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import Served


async def _subscribe(url: str, headers: dict[str, str], out: list[tuple[float, float]]) -> None:
    h = dict(headers, Accept="text/event-stream")
    async with httpx.AsyncClient(timeout=None) as http, http.stream("GET", url, headers=h) as resp:
        resp.raise_for_status()
        kind = ""
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "tick":
                now = time.time()
                ev = json.loads(line[5:])
                stored = datetime.fromisoformat(ev["at"]).timestamp()
                out.append((now - stored, now - float(ev["data"]["t"])))
            elif line.startswith("data:") and kind == "end":
                return


def _proc(url: str, headers: dict[str, str], n: int, q: mp.Queue) -> None:  # type: ignore[type-arg]
    async def go() -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        await asyncio.gather(*(_subscribe(url, headers, out) for _ in range(n)))
        return out

    q.put(asyncio.run(go()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--events", type=int, default=250)
    ap.add_argument("--procs", type=int, default=4)
    args = ap.parse_args()
    with Served(imports=["_service_handlers"]) as srv:
        task = {
            "name": "ticker",
            "inputs": {"events": args.events, "interval": 0.02, "start_after": 3},
        }
        r = httpx.post(srv.url + "/v1/tasks", json=task, headers=srv.headers)
        r.raise_for_status()
        url = f"{srv.url}/v1/tasks/{r.json()['id']}/events"
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        share = [
            args.subscribers // args.procs + (i < args.subscribers % args.procs)
            for i in range(args.procs)
        ]
        procs = [mp.Process(target=_proc, args=(url, srv.headers, n, q)) for n in share]
        for p in procs:
            p.start()
        rows: list[tuple[float, float]] = []
        for _ in procs:
            rows += q.get(timeout=300)
        for p in procs:
            p.join()
    expected = args.subscribers * args.events
    stored = sorted(a * 1000 for a, _ in rows)
    emitted = sorted(b * 1000 for _, b in rows)

    def p(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * q))]

    print(
        f"subscribers {args.subscribers}, events {args.events}, deliveries {len(rows)}/{expected}"
    )
    print(f"stored->client  p50 {statistics.median(stored):6.1f} ms  p95 {p(stored, .95):6.1f} ms  "
          f"max {stored[-1]:6.1f} ms   (target p95 < 50 ms)")  # fmt: skip
    print(
        f"emitted->client p50 {statistics.median(emitted):6.1f} ms  p95 {p(emitted, 0.95):6.1f} ms"
    )


if __name__ == "__main__":
    main()
