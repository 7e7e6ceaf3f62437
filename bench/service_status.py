"""Status reads over HTTP: `GET /v1/tasks/{id}` against a bare FastAPI endpoint on the same row.

The baseline is the least a status endpoint can do: a FastAPI app on the same uvicorn, reading
the same execution's row from the same SQLite file with ``sqlite3`` and returning it as JSON
(no auth, no model). Ours goes through the token check, the project scope and the TaskStatus
model. Both are loaded by the same client: ``--concurrency`` keep-alive connections for
``--seconds``, rounds alternating.

    python bench/service_status.py [--seconds 5] [--concurrency 16] [--rounds 3]

Target (issue 16): ours / bare >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import Served, free_port

_BARE = textwrap.dedent("""
    import sqlite3, sys
    from fastapi import FastAPI
    import uvicorn
    db = sys.argv[1]
    app = FastAPI()
    conn = sqlite3.connect(db, check_same_thread=False)
    conn.row_factory = sqlite3.Row

    @app.get("/v1/tasks/{execution_id}")
    async def status(execution_id: str) -> dict:  # no threadpool hop: the least work
        row = conn.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return dict(row)

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
""")


async def _load(url: str, headers: dict[str, str], seconds: float, conc: int) -> float:
    """Requests/s from ``conc`` keep-alive connections, each sending its next GET when the
    last answer is in. A bare asyncio-streams client (a status line, headers, a body of
    Content-Length bytes): httpx costs more per request than either server, and the two
    would tie at its ceiling."""
    parts = urlsplit(url)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n".encode()
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < stop:
                writer.write(request)
                status = await reader.readline()
                if b" 200 " not in status:
                    raise RuntimeError(f"{url}: {status!r}")
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return done / (time.perf_counter() - t0)


def _db_file(data_dir: Path) -> Path:
    found = sorted(data_dir.glob("*.sqlite3")) + sorted(data_dir.glob("*.db"))
    if not found:
        raise RuntimeError(
            f"no SQLite file in the data dir: {sorted(p.name for p in data_dir.iterdir())}"
        )
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with Served(imports=["_service_handlers"]) as srv:
        r = httpx.post(srv.url + "/v1/tasks?wait=true", json={"name": "noop"}, headers=srv.headers)
        r.raise_for_status()
        eid = r.json()["id"]
        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-c", _BARE, str(_db_file(srv.data_dir)), str(port)]
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/v1/tasks/{eid}").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            ours, bare_rates = [], []
            for _ in range(args.rounds):
                bare_rates.append(
                    asyncio.run(_load(f"{base}/v1/tasks/{eid}", {}, args.seconds, args.concurrency))
                )
                ours.append(
                    asyncio.run(
                        _load(
                            f"{srv.url}/v1/tasks/{eid}", srv.headers, args.seconds, args.concurrency
                        )
                    )
                )
        finally:
            bare.terminate()
            bare.wait(10)
    for label, rates in (
        ("bare FastAPI + sqlite3 row", bare_rates),
        ("ours GET /v1/tasks/{id}", ours),
    ):
        print(f"{label:27s} {max(rates):7.0f} reads/s  (rounds {[round(x) for x in rates]})")
    print(f"ratio ours/bare: {max(ours) / max(bare_rates):.2f}   (target >= 0.5)")


if __name__ == "__main__":
    main()
