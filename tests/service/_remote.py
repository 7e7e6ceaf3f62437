"""Fixtures of the remote-client tests: a real ``aesop serve`` in a subprocess, tokens made
with the real CLI, and a TCP relay that can drop every connection (a network cut)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serving import free_port
from waiting import eventually

HERE = Path(__file__).resolve().parent
AESOP = str(Path(sys.executable).with_name("aesop"))
TOKEN = re.compile(r"aesop_[A-Za-z0-9_-]{43}")


def need_service() -> None:
    try:
        import aesoperator.service  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"no service to serve yet ({exc})")


def _cli_env(
    data_dir: Path, extra: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, str]:
    """The environment of a server-side command: never a remote client itself."""
    env = {**os.environ, **(extra or {})}
    env.pop("AESOP_URL", None)
    env.pop("AESOP_TOKEN", None)
    env["AESOP_DATA_DIR"] = str(data_dir)
    paths = [str(HERE), *([str(cwd)] if cwd else []), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def make_token(data_dir: Path, name: str, *args: str) -> str:
    """``aesop token create NAME ...`` as a person would run it; the token it printed."""
    out = subprocess.run(
        [AESOP, "token", "create", name, *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=_cli_env(data_dir), timeout=60, check=True,
    )  # fmt: skip
    found = TOKEN.search(out.stdout)
    assert found, out.stdout + out.stderr
    return found.group(0)


def revoke_token(data_dir: Path, name: str) -> None:
    subprocess.run(
        [AESOP, "token", "revoke", name, "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=_cli_env(data_dir), timeout=60, check=True,
    )  # fmt: skip


@contextmanager
def served(
    data_dir: Path,
    *,
    imports: tuple[str, ...] = ("_remote_handlers",),
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``aesop serve`` on a free loopback port until the block ends; yields its base url."""
    port = free_port()
    cmd = [AESOP, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    for module in imports:
        cmd += ["--import", module]
    log = (cwd or data_dir.parent) / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd or data_dir.parent,
            env=_cli_env(data_dir, env, cwd),
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        with suppress(httpx.TransportError):
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        return False

    try:
        eventually(up, timeout=90, interval=0.1, what="aesop serve ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Relay:
    """A TCP relay to ``port``; ``cut()`` drops every connection through it, as a network
    failure would, and the relay keeps accepting new ones."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._open += [client, upstream]
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._server.close()
        self.cut()


@contextmanager
def served_in_process(data_dir: Path, settings: object) -> Iterator[str]:
    """``create_app`` with ``settings`` (ones the CLI does not expose) on uvicorn in a thread."""
    from aesoperator import Aesoperator
    from aesoperator.service import create_app
    from serving import uvicorn_app

    local = Aesoperator(data_dir=data_dir, url="", isolation="inline", pool_size=1)
    app = create_app(local, settings=settings)  # type: ignore[arg-type]
    try:
        with uvicorn_app(app) as url:
            yield url
    finally:
        local.close()
