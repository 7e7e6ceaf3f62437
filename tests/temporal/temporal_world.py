"""The world of one Temporal test: ``aesop worker`` subprocesses (each the leader of its own
process group), clients, a side-effect log, and what stops them all (used by conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aesoperator
from aesoperator import Aesoperator

HERE = Path(__file__).resolve().parent
SRC = Path(aesoperator.__file__).resolve().parents[1]


@dataclass
class Worker:
    """One ``aesop worker`` subprocess, the leader of its own process group."""

    proc: subprocess.Popen[bytes]
    ready: dict[str, object]
    stderr: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM the worker (it hands back what it runs); SIGKILL its group if it lingers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(15)
        self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a machine that dies."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def worker_env(env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, str]:
    """``env`` (default: this one) with the handlers' directories and the tree's src first."""
    env = dict(os.environ if env is None else env)
    dirs = [*([str(cwd)] if cwd else []), str(HERE), str(SRC)]
    path = [*dirs, *filter(None, [env.get("PYTHONPATH")])]
    return dict(env, PYTHONPATH=os.pathsep.join(path))


def start_worker(
    backend: str,
    store: str,
    logdir: Path,
    pool_size: int = 2,
    *,
    imports: tuple[str, ...] = ("temporal_handlers",),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Worker:
    """Start ``aesop worker`` and wait for its ready JSON line."""
    stderr = logdir / f"worker-{uuid.uuid4().hex[:8]}.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aesoperator.cli", "worker", "--backend", backend,
             "--store", store, *(a for m in imports for a in ("--import", m)),
             "--pool-size", str(pool_size), "--json"],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
            env=worker_env(env, cwd), cwd=cwd or logdir, start_new_session=True,
        )  # fmt: skip
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + 60
    line = b""
    while not line.endswith(b"\n"):
        if proc.poll() is not None or time.monotonic() > end:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"aesop worker not ready: {stderr.read_text()[-3000:]}")
        if sel.select(0.2):
            chunk = os.read(proc.stdout.fileno(), 4096)
            line += chunk
    sel.close()
    ready = json.loads(line.decode().splitlines()[0])
    assert ready["worker"].endswith(f":{proc.pid}")
    return Worker(proc, ready, stderr)


@dataclass
class Setup:
    """One test's world: its database, its task queue, its workers and its clients."""

    store: str
    backend: str
    dir: Path
    workers: list[Worker] = field(default_factory=list)
    clients: list[Aesoperator] = field(default_factory=list)

    @property
    def log(self) -> str:
        """The side-effect log the handlers append to (``temporal_handlers.note``)."""
        return str(self.dir / "effects.log")

    def effects(self) -> list[tuple[str, int]]:
        path = Path(self.log)
        lines = path.read_text().splitlines() if path.exists() else []
        return [(what, int(pid)) for what, pid in (line.split() for line in lines)]

    def start_workers(self, n: int, pool_size: int = 2) -> list[Worker]:
        new = [start_worker(self.backend, self.store, self.dir, pool_size) for _ in range(n)]
        self.workers.extend(new)
        return new

    def client(self) -> Aesoperator:
        client = Aesoperator(store=self.store, backend=self.backend)
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close()
        for worker in self.workers:
            worker.stop()
