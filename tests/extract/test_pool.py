"""The extraction processes behind ``ctx.web.extract``: one start-up for all, forked copies,
results equal to in-process extraction, and a process that dies is replaced without a page lost.

Each case runs in a fresh interpreter: the pool is process-wide and lives as long as its process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = """
import json, os, signal, threading, time
from http.server import HTTPServer, SimpleHTTPRequestHandler
import psutil
from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.web.extract import extract_page

os.environ["AESOP_EXTRACT_PROCESSES"] = "2"
for i in range(6):
    open(f"p{i}.html", "w").write(
        f"<html><head><title>Page {i}</title></head><body><article><h1>Page {i}</h1>"
        + f"<p>Sentence number {i} about batteries and grids, long enough to keep. </p>" * 8
        + f"<a href='/p{(i + 1) % 6}.html'>next</a></article></body></html>")
server = HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"

def extractors():
    me = psutil.Process()
    return [p for p in me.children(recursive=True)
            if any("_extract_worker" in part for part in p.cmdline())]

aesop = Aesoperator(isolation="inline")

@aesop.handler("read")
async def read(ctx, urls, kill):
    import asyncio
    pages = [await ctx.web.fetch(u) for u in urls]
    first = await asyncio.gather(*(ctx.web.extract(p) for p in pages))
    procs = extractors()
    report = {"procs": len(procs), "roots": len({p.ppid() for p in procs})}
    if kill:
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
        time.sleep(0.2)
    second = await asyncio.gather(*(ctx.web.extract(p) for p in pages))
    local = [extract_page(p.body, p.url, p.headers.get("content-type")) for p in pages]
    report["same"] = [a == b == c for a, b, c in zip(first, second, local)]
    # markdown=False: the same extraction, the markdown left as the plain text.
    import dataclasses
    plain = await asyncio.gather(*(ctx.web.extract(p, markdown=False) for p in pages))
    report["plain"] = [b.markdown == b.text != a.markdown
                       and dataclasses.replace(b, markdown=a.markdown) == a
                       for a, b in zip(first, plain)]
    report["titles"] = [e.title for e in second]
    # listing=True (a page read for its links): no main-content pass, the same links and title.
    listed = await asyncio.gather(*(ctx.web.extract(p, listing=True) for p in pages))
    alone = [extract_page(p.body, p.url, p.headers.get("content-type"), listing=True)
             for p in pages]
    report["listing"] = [b == c and not b.blocks and a.blocks != [] and b.links == a.links
                         and b.title == a.title and b.text.startswith("Page")
                         for a, b, c in zip(first, listed, alone)]
    report["after"] = len(extractors())
    return report

cfg = TaskConfig(allow_private_network=True, allowed_domains=["127.0.0.1"])
urls = [f"{base}/p{i}.html" for i in range(6)]
result = aesop.execute_task(Task(name="read", inputs={"urls": urls, "kill": __KILL__}, config=cfg))
print(json.dumps(result.data))
aesop.close()
"""


def _run(tmp_path: Path, kill: bool) -> dict[str, object]:
    import json

    script = tmp_path / "pool.py"
    script.write_text(textwrap.dedent(SCRIPT).replace("__KILL__", repr(kill)))
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def test_two_slots_from_one_start_give_in_process_results(tmp_path: Path) -> None:
    report = _run(tmp_path, kill=False)
    # One process started by us, one forked from it: two extractors, one of them the other's
    # parent, so the set of their parents has two members (us and the first extractor).
    assert report["procs"] == 2
    assert report["roots"] == 2
    assert report["same"] == [True] * 6
    assert report["titles"] == [f"Page {i}" for i in range(6)]
    assert report["plain"] == [True] * 6
    assert report["listing"] == [True] * 6


def test_killed_extractors_are_replaced_and_no_page_is_lost(tmp_path: Path) -> None:
    report = _run(tmp_path, kill=True)
    assert report["same"] == [True] * 6  # the pages in flight fell back to a thread
    assert report["titles"] == [f"Page {i}" for i in range(6)]
    assert report["after"] >= 1  # new processes took the dead ones' place
