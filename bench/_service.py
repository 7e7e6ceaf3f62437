"""A served instance for the service benchmarks: `aesop serve` in a subprocess on a free port.

    with Served(imports=["_service_handlers"]) as srv:   # a tmp data dir, an admin token
        srv.url, srv.token, srv.headers

The data dir is temporary; the token is made with `aesop token create` before the server starts,
as a user would.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

_BIN = Path(sys.executable).parent
_HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, imports: list[str] | None = None, pool_size: int | None = None) -> None:
        self.imports = imports or []
        self.pool_size = pool_size
        self._tmp = tempfile.TemporaryDirectory(prefix="aesop-bench-")
        self.data_dir = Path(self._tmp.name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _aesop(self, *args: str) -> str:
        out = subprocess.run(
            [str(_BIN / "aesop"), *args, "--data-dir", str(self.data_dir)],
            check=True, capture_output=True, text=True, env=self._env(),
        )  # fmt: skip
        return out.stdout

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(_HERE), env.get("PYTHONPATH", "")])
        if self.pool_size:
            env["AESOP_POOL_SIZE"] = str(self.pool_size)
        return env

    def __enter__(self) -> Served:
        made = self._aesop("token", "create", "bench", "--scope", "admin")
        found = re.search(r"aesop_[A-Za-z0-9_-]{20,}", made)
        if not found:
            raise RuntimeError("aesop token create printed no token")
        self.token = found.group(0)
        # --rate-limit 0: the per-token limit (100/s by default) would be what is measured
        cmd = [str(_BIN / "aesop"), "serve", "--port", str(self.port), "--rate-limit", "0"]
        cmd += ["--data-dir", str(self.data_dir)]
        for mod in self.imports:
            cmd += ["--import", mod]
        self._proc = subprocess.Popen(cmd, env=self._env(), cwd=_HERE, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None:
                raise RuntimeError(f"aesop serve exited with {self._proc.returncode}")
            time.sleep(0.1)
        raise RuntimeError("aesop serve did not become ready in 60 s")

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._tmp.cleanup()
