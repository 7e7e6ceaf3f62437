"""Shared by the monitor benchmarks: a local HTTP server in its own process that records when
each request arrived (``time.monotonic()``, a system-wide clock on Linux, so comparable with
the benchmark's), and can answer after a known delay (``/delay/<ms>``).

Endpoints: any path → 200 with a small body; ``/delay/50`` → the same after 50 ms;
``/__arrivals?prefix=/x`` → JSON list of arrival times of requests whose path starts with /x;
``/__count`` → number of requests so far.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

_SERVER = r"""
import asyncio, json, sys, time
arrivals = []  # (path, monotonic)
BODY = b"<html><body>ok</body></html>"

async def handle(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except Exception:
        writer.close(); return
    now = time.monotonic()
    path = head.split(b" ", 2)[1].decode()
    if path.startswith("/__arrivals"):
        prefix = path.partition("prefix=")[2] or "/"
        body = json.dumps([t for p, t in arrivals if p.startswith(prefix)]).encode()
    elif path == "/__count":
        body = str(len(arrivals)).encode()
    else:
        arrivals.append((path, now))
        if path.startswith("/delay/"):
            await asyncio.sleep(int(path.split("/")[2]) / 1000)
        body = BODY
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (len(body), body))
    try:
        await writer.drain()
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes

asyncio.run(main())
"""


class BenchServer:
    """The recording server, started in a child process; ``close()`` stops it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as resp:
            return json.loads(resp.read())

    def arrivals(self, prefix: str) -> list[float]:
        return list(self._get(f"/__arrivals?prefix={prefix}"))

    def count(self) -> int:
        return int(self._get("/__count"))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> BenchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load() -> str:
    """The machine's load average, printed with the figures: they mean little without it."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]
