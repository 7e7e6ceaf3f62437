"""A real PostgreSQL server for the tests: initdb into a temporary directory, started on a free
127.0.0.1 port, stopped at the end. Binaries: ``initdb`` on PATH, else Debian's
``/usr/lib/postgresql/*/bin`` (``scripts/install_postgresql.sh`` installs them, `make setup`
runs it). initdb refuses to run as root: as root the server runs as ``nobody``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from serving import free_port

USER, PASSWORD = "aesop", "test-pw"


def pg_bindir() -> Path | None:
    """Where initdb and pg_ctl are, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    bindir: Path
    socket_dir: Path

    def url(self, db: str, *, user: str = USER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{db}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def pg_server() -> Iterator[PgServer]:
    """A running server (superuser ``aesop``/``test-pw``, password auth over TCP)."""
    bindir = pg_bindir()
    if bindir is None:
        raise FileNotFoundError("initdb")
    # Not under pytest's tmp_path: its parents are 0700 root, where ``nobody`` cannot go.
    root = Path(tempfile.mkdtemp(prefix="aesop-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:
        who = pwd.getpwnam("nobody")
        for path in (root, sock):
            os.chown(path, who.pw_uid, who.pw_gid)
        run_as = ["setpriv", f"--reuid={who.pw_uid}", f"--regid={who.pw_gid}", "--clear-groups"]
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if run_as:
        os.chown(pwfile, pwd.getpwnam("nobody").pw_uid, -1)
    env = {**os.environ, "LC_ALL": "C", "HOME": str(root)}

    def run(*cmd: str) -> None:
        subprocess.run([*run_as, *cmd], check=True, env=env, cwd=root, capture_output=True)

    port = free_port()
    run(
        str(bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
    )  # fmt: skip
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sock}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    try:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
            "-w", "-t", "60", "start")  # fmt: skip
        yield PgServer("127.0.0.1", port, bindir, sock)
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            env=env, cwd=root, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
