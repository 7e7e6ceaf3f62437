"""Handlers the Temporal benches run: ``aesop worker --import _temporal_handlers`` (and the local
baselines import this module too, so both sides run the same code)."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from typing import Any

import aesoperator as aesop


async def short(ctx: Any, i: int = 0) -> dict[str, int]:
    """One durable step and one memory write: the shortest task that touches both."""
    v = await ctx.step("double", lambda: i * 2)
    ctx.memory.set(f"tb_short/{i % 16}", v)
    return {"v": v}


async def slow_steps(ctx: Any, steps: int = 40, every: float = 0.25) -> dict[str, Any]:
    """Steps ``every`` s apart; each records which worker process ran it, and when."""

    def one(k: int) -> dict[str, Any]:
        time.sleep(every)
        return {"k": k, "pid": os.getpid(), "ppid": os.getppid(), "t": time.time()}

    done = []
    for k in range(steps):
        done.append(await ctx.step(f"s{k}", lambda k=k: one(k)))
    return {"steps": len(done)}


async def checks(ctx: Any, url: str, checks: int = 1440, every: float = 0.05) -> dict[str, int]:
    """A monitor, time compressed: ``checks`` GETs of ``url`` every ``every`` s, a progress
    report and a memory write per check (what the monitor skill keeps per URL)."""
    ok = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k in range(checks):
        await asyncio.sleep(max(0.0, start + k * every - loop.time()))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                ok += r.status == 200
        except OSError:
            pass
        ctx.progress(100 * (k + 1) / checks, f"check {k + 1}/{checks}")
        ctx.memory.set("tb_checks/last", {"k": k, "ok": ok})
    return {"checks": checks, "ok": ok}


HANDLERS = {"tb_short": short, "tb_slow_steps": slow_steps, "tb_checks": checks}


def register(client: Any) -> None:
    """On a local client (the baselines); ``aesop worker --import`` registers them below."""
    for name, fn in HANDLERS.items():
        client.handler(name)(fn)


register(aesop)
