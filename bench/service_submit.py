"""1,000 short tasks submitted over HTTP vs through the local Python API.

Local: one `Aesoperator` on a tmp data dir, `execute_task_async` for each no-op task, then wait
for all. HTTP: a served instance (`aesop serve`, same pool size) and ``--concurrency`` client
connections, each POSTing `/v1/tasks?wait=true` (answered when the task has ended) and checking
the answer is a completed TaskStatus. Throughput = tasks / wall time from the first submit to
the last completion; both sides use the same worker pool size. Rounds alternate (local, HTTP,
local, ...) so both see the same machine; the best round of each is compared.

The HTTP load comes from a bare asyncio-streams client (keep-alive HTTP/1.1: a request, then
the status line, headers and Content-Length body of the answer), as in service_status.py: on a
2-core machine httpx spent more CPU per request (~1.7 ms) than the server's event loop did
(~1.1 ms), so it measured the client as much as the server.

    python bench/service_submit.py [--tasks 1000] [--concurrency 16] [--pool 2] [--rounds 3]

Target (issue 16): HTTP / local >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import Served

from aesoperator import Aesoperator, Task


def local(n: int, pool: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        client = Aesoperator(data_dir=tmp, pool_size=pool)
        client.handler("noop")(lambda ctx: None)
        client.warmup()
        client.execute_task(Task(name="noop"))
        t0 = time.perf_counter()
        runs = [client.execute_task_async(Task(name="noop")) for _ in range(n)]
        for e in runs:
            assert e.wait().state == "completed"
        rate = n / (time.perf_counter() - t0)
        client.close()
    return rate


async def _http(srv: Served, n: int, conc: int) -> float:
    """``conc`` keep-alive connections, each POSTing a task with ``?wait=true`` (answered
    when it ends) and sending the next when the answer is in."""
    parts = urlsplit(srv.url)
    body = json.dumps({"name": "noop"}).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in srv.headers.items())
    request = (
        f"POST /v1/tasks?wait=true HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(request)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        answer = await reader.readexactly(length)
        if b" 200 " not in status or b'"state":"completed"' not in answer:
            raise RuntimeError(f"{status!r} {answer[:300]!r}")

    left = n

    async def submitter() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            await post(reader, writer)  # a warm connection before the clock starts
            await started.wait()
            while left > 0:
                left -= 1
                await post(reader, writer)
        finally:
            writer.close()

    started = asyncio.Event()
    tasks = [asyncio.create_task(submitter()) for _ in range(conc)]
    await asyncio.sleep(0.5)
    t0 = time.perf_counter()
    started.set()
    await asyncio.gather(*tasks)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--pool", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    locs, https = [], []
    with Served(imports=["_service_handlers"], pool_size=args.pool) as srv:
        for _ in range(args.rounds):
            locs.append(local(args.tasks, args.pool))
            https.append(asyncio.run(_http(srv, args.tasks, args.concurrency)))
    print(f"local Python API: {max(locs):7.1f} tasks/s  (rounds {[round(x) for x in locs]})")
    print(f"over HTTP:        {max(https):7.1f} tasks/s  (rounds {[round(x) for x in https]})")
    print(f"ratio HTTP/local: {max(https) / max(locs):.2f}   (target >= 0.5)")


if __name__ == "__main__":
    main()
