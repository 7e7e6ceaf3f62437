"""Monitor latency accuracy: our measured total time vs ``curl -w %{time_total}``.

Both time the same local endpoint that answers after a known delay (``/delay/50``), one
after the other, N times each (interleaved, so both see the same machine load). Prints the
medians, the median of the paired differences (ours - curl), and the phase breakdown side by
side (curl's times are cumulative; ours are converted to the same form).

    .venv/bin/python bench/monitor_latency.py [--n 40] [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess

from monitor_common import BenchServer, load

from aesoperator.skills.monitor._probe import Target, probe
from aesoperator.web.policy import Policy

CURL_FMT = "%{time_namelookup} %{time_connect} %{time_starttransfer} %{time_total}"


def curl(url: str) -> list[float]:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", CURL_FMT, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [float(x) * 1000 for x in out.split()]


async def main(n: int, delay_ms: int) -> None:
    policy = Policy(allow_private_network=True)
    with BenchServer() as server:
        url = f"{server.base}/delay/{delay_ms}"
        target = Target.build(policy.check_url(url))
        ours: list[list[float]] = []
        theirs: list[list[float]] = []
        for _ in range(3):  # warm both paths
            await probe(target, policy, timeout=5)
            curl(url)
        for _ in range(n):
            c = await probe(target, policy, timeout=5)
            assert c.ok and c.status == 200, c
            dns = c.dns_ms or 0.0
            conn = dns + (c.connect_ms or 0.0)
            ours.append([dns, conn, c.ttfb_ms or 0.0, c.total_ms or 0.0])
            theirs.append(await asyncio.to_thread(curl, url))
    diffs = [o[3] - t[3] for o, t in zip(ours, theirs, strict=True)]
    print(f"latency accuracy: {n} checks of {url.split('/delay')[0]}/delay/{delay_ms} per tool")
    print(f"{'(ms, cumulative)':20}{'dns':>10}{'connect':>10}{'ttfb':>10}{'total':>10}")
    for name, rows in (("aesoperator probe", ours), ("curl", theirs)):
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"{name:20}" + "".join(f"{m:>10.3f}" for m in med))
    print(f"median of paired differences (ours - curl), total: {statistics.median(diffs):+.3f} ms")
    print(f"relative to the known delay: {statistics.median(diffs) / delay_ms * 100:+.2f} %")
    print(load())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--delay-ms", type=int, default=50)
    args = ap.parse_args()
    asyncio.run(main(args.n, args.delay_ms))
