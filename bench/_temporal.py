"""A Temporal cluster on this machine for the Temporal benches: PostgreSQL (tests/pgserver.py),
the Temporal dev server (tests/temporalserver.py) and N ``aesop worker`` processes.

    with Cluster(workers=2, pool=2, queue="tb", server="file") as c:
        c.store, c.backend, c.workers   # store URL, backend URL, the Popen of each worker
        c.pg_url("other_db")            # another database on the same server
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

import psutil

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent / "tests"))
sys.path.insert(0, str(_HERE))

from pgserver import pg_server  # noqa: E402
from temporalserver import TemporalServer, free_port  # noqa: E402

_BIN = Path(sys.executable).parent


# The dev server's storage: "file" (a SQLite file, as the tests run it), "fast" (the same file
# with WAL and synchronous=off), "memory" (in-memory SQLite, nothing kept).
SERVER_KINDS = ("file", "fast", "memory")


def bench_server(
    root: Path, kind: str, eager: bool, dynamic: dict[str, str] | None = None
) -> TemporalServer:
    """A dev server: ``file`` (as the tests had it: a SQLite file with fsync), ``fast`` (WAL,
    no fsync: the default here and in the tests), or ``memory``; ``dynamic``: more server
    settings."""
    root.mkdir(parents=True, exist_ok=True)
    dynamic = dict(dynamic or {})
    if eager:
        dynamic["system.enableActivityEagerExecution"] = "true"
    return TemporalServer(
        free_port(), root / "temporal.sqlite", root / "temporal.log",
        persist=kind != "memory", fast=kind == "fast", dynamic=dynamic,
    )  # fmt: skip


def bench_env() -> dict[str, str]:
    """This environment with bench/ on PYTHONPATH (the handlers module)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(_HERE), env.get("PYTHONPATH", "")] if p)
    return env


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


class Cluster:
    def __init__(
        self,
        workers: int = 2,
        pool: int = 2,
        queue: str = "tb",
        server: str = "fast",
        eager: bool = False,
        dynamic: dict[str, str] | None = None,
    ) -> None:
        self.n, self.pool, self.queue, self.server = workers, pool, queue, server
        self.eager, self.dynamic = eager, dynamic
        self.root = Path(tempfile.mkdtemp(prefix="aesop-tbench-"))
        self.workers: list[subprocess.Popen[bytes]] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Cluster:
        try:
            self.pg = self._stack.enter_context(pg_server())
            self.pg.create_database("tb")
            self.ts = bench_server(self.root / "temporal", self.server, self.eager, self.dynamic)
            self.ts.start()
            self._stack.callback(self.ts.stop)
            self.store = f"{self.pg.url('tb')}?artifacts={self.root / 'artifacts'}"
            self.backend = self.ts.backend(self.queue)
            for _ in range(self.n):
                self.start_worker()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Each part's processes now: the Temporal server, PostgreSQL, each worker (with its
        pool), and this process (the client)."""

        def tree(pid: int) -> list[psutil.Process]:
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                return [p, *p.children(recursive=True)]
            return []

        pg = []
        for p in psutil.process_iter(["name", "cmdline"]):
            if f"port={self.pg.port}" in " ".join(p.info["cmdline"] or []):
                pg = tree(p.pid)
        out = {"temporal server": tree(self.ts.proc.pid) if self.ts.proc else [], "postgresql": pg}
        for k, w in enumerate(self.workers):
            out[f"worker {k + 1} (+ pool)"] = tree(w.pid)
        out["client (this process)"] = [psutil.Process()]
        return out

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each part's live processes."""
        used = {}
        for part, procs in self.processes().items():
            total = 0.0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            used[part] = total
        return used

    def pg_url(self, db: str) -> str:
        self.pg.create_database(db)
        return f"{self.pg.url(db)}?artifacts={self.root / ('artifacts-' + db)}"

    def start_worker(self) -> subprocess.Popen[bytes]:
        cmd = [str(_BIN / "aesop"), "worker", "--backend", self.backend, "--store", self.store,
               "--import", "_temporal_handlers", "--pool-size", str(self.pool),
               "--json"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=bench_env(), cwd=_HERE, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"aesop worker exited with {proc.wait()} before it was ready")
        json.loads(line)
        self.workers.append(proc)
        return proc

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._stack.close()
        shutil.rmtree(self.root, ignore_errors=True)
