"""``aesop serve`` as the operator runs it: a process, its refusals, a kill -9 and a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from aesoperator.store import open_store
from serving import free_port
from waiting import eventually

AESOP = [sys.executable, "-m", "aesoperator.cli"]
HANDLERS = """
import aesoperator as aesop


@aesop.handler("slow")
async def slow(ctx, seconds=60):
    ctx.progress(5, "sleeping")
    await ctx.sleep(seconds)
    return "woke"
"""


@contextmanager
def serve(
    tmp_path: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    where = [] if env else ["--data-dir", str(tmp_path / "data")]  # env: $AESOP_DATA_DIR
    proc = subprocess.Popen(
        [*AESOP, "serve", "--port", str(port), *where, "--import", "served_handlers"],
        cwd=tmp_path, start_new_session=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        eventually(lambda: _healthy(port), timeout=60, what="aesop serve answers")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_non_loopback_host_is_refused_and_says_why(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*AESOP, "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--allow-remote" in proc.stderr and "loopback" in proc.stderr


def test_token_commands_print_the_token_once_and_never_list_it(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    made = subprocess.run(
        [*AESOP, "token", "create", "ci", "--scope", "read", "--project", "acme", *data],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    token = made.stdout.strip()
    assert made.returncode == 0 and token.startswith("aesop_"), made.stderr
    listed = subprocess.run([*AESOP, "token", "list", *data], capture_output=True, text=True)
    assert "ci" in listed.stdout and "acme" in listed.stdout and token not in listed.stdout
    assert "live" in listed.stdout
    revoked = subprocess.run([*AESOP, "token", "revoke", "ci", *data], capture_output=True)
    assert revoked.returncode == 0
    store = open_store(tmp_path)
    try:
        assert store.token_check(token) is None
    finally:
        store.close()
    bad = subprocess.run(
        [*AESOP, "token", "create", "x", "--scope", "root", *data], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "read" in bad.stderr and "admin" in bad.stderr


def test_kill_9_mid_task_then_restart_leaves_it_failed_interrupted(tmp_path: Path) -> None:
    (tmp_path / "served_handlers.py").write_text(HANDLERS)
    store = open_store(tmp_path / "data")
    token = store.token_create("ops", scope="run")[1]
    store.close()
    auth = {"Authorization": f"Bearer {token}"}
    port = free_port()
    with serve(tmp_path, port) as proc:
        url = f"http://127.0.0.1:{port}"
        eid = httpx.post(f"{url}/v1/tasks", json={"name": "slow"}, headers=auth, timeout=30).json()[
            "id"
        ]
        eventually(
            lambda: httpx.get(f"{url}/v1/tasks/{eid}", headers=auth).json()["state"] == "running"
        )
        os.kill(proc.pid, signal.SIGKILL)  # the server only: its workers die with it
        proc.wait(30)
    with serve(tmp_path, port):
        status = httpx.get(f"{url}/v1/tasks/{eid}", headers=auth).json()
        assert status["state"] == "failed", status
        assert status["error"]["type"] == "Interrupted"
        running = httpx.get(f"{url}/v1/tasks", params={"state": "running"}, headers=auth)
        assert running.json()["items"] == []


def test_serve_stays_local_when_aesop_url_points_elsewhere(tmp_path: Path) -> None:
    """$AESOP_URL makes a plain client remote; the server itself must not become one (it
    would send every task to that address, or to itself)."""
    (tmp_path / "served_handlers.py").write_text(HANDLERS)
    store = open_store(tmp_path / "data")
    token = store.token_create("ops", scope="run")[1]
    store.close()
    port = free_port()
    env = {"AESOP_URL": "http://127.0.0.1:9", "AESOP_DATA_DIR": str(tmp_path / "data")}
    with serve(tmp_path, port, env=env):
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/tasks?wait=true",
            json={"name": "slow", "inputs": {"seconds": 0}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    assert answer.status_code == 200 and answer.json()["state"] == "completed", answer.text
