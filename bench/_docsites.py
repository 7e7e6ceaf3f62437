"""Real documentation sites, installed from Debian packages and served by nginx on 127.0.0.1.

Content nobody here generated, built by two different generators (DocBook for PostgreSQL,
Sphinx for Django), for the research quality bench.

    with DocSite("postgresql") as site:   # installs postgresql-doc-15 and nginx-light if missing
        site.url("index.html")

A server that already answers on the site's usual port (8601 PostgreSQL, 8602 Django) with that
site's index is reused and left running; otherwise nginx is started on a free port with its own
configuration in a temporary directory and stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class SiteSpec:
    package: str
    root: Path
    port: int  # the usual port: a server already there is reused
    marker: bytes  # in the index page's <title>: tells this site from another on the port


SITES = {
    "postgresql": SiteSpec(
        "postgresql-doc-15", Path("/usr/share/doc/postgresql-doc-15/html"), 8601, b"PostgreSQL"
    ),
    "django": SiteSpec(
        "python-django-doc", Path("/usr/share/doc/python-django-doc/html"), 8602, b"Django"
    ),
}

_CONF = """worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log;
events {{ worker_connections 1024; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  server {{ listen 127.0.0.1:{port}; root {root}; index index.html; }}
}}
"""


def _answers(base: str, marker: bytes) -> bool:
    try:
        with urllib.request.urlopen(base + "index.html", timeout=2) as resp:
            return resp.status == 200 and marker in resp.read(4096)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def install(site: str) -> SiteSpec:
    """Install the site's package and nginx with apt-get when missing (needs root)."""
    spec = SITES[site]
    need = [] if spec.root.is_dir() else [spec.package]
    if _nginx() is None:
        need.append("nginx-light")
    if need:
        apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "-n", "apt-get"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*apt, "update", "-qq"], env=env, capture_output=True, check=False)
        done = subprocess.run(
            [*apt, "install", "-y", "-qq", *need], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"apt-get install {' '.join(need)} failed ({done.stderr.strip()[-300:]}); "
                "run the bench as root or install those packages first"
            )
    if not spec.root.is_dir():
        raise RuntimeError(f"no HTML under {spec.root} after installing {spec.package}")
    return spec


class DocSite:
    """The site served over HTTP for the life of the ``with`` block."""

    def __init__(self, site: str) -> None:
        self.name = site
        self.spec = install(site)
        self.base = ""
        self._run: tempfile.TemporaryDirectory[str] | None = None

    def url(self, path: str = "") -> str:
        return self.base + path.lstrip("/")

    def __enter__(self) -> DocSite:
        usual = f"http://127.0.0.1:{self.spec.port}/"
        if _answers(usual, self.spec.marker):
            self.base = usual
            return self
        nginx = _nginx()
        if nginx is None:
            raise RuntimeError("nginx is not installed; apt-get install nginx-light")
        self._run = tempfile.TemporaryDirectory(prefix=f"docsite-{self.name}-")
        run = Path(self._run.name)
        port = _free_port()
        (run / "nginx.conf").write_text(_CONF.format(run=run, port=port, root=self.spec.root))
        subprocess.run(
            [nginx, "-e", str(run / "error.log"), "-c", str(run / "nginx.conf"), "-p", str(run)],
            check=True,
        )
        self.base = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 10
        while not _answers(self.base, self.spec.marker):
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"nginx did not serve {self.spec.root} on port {port}")
            time.sleep(0.05)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._run is None:
            return
        pid_file = Path(self._run.name) / "nginx.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)  # the master: it stops its worker
            deadline = time.monotonic() + 5
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        self._run.cleanup()
        self._run = None
