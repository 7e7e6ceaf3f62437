"""Run TASKS.md's web examples offline: the bundled demo site stands in for the real web.

The demo site is generated into a temporary directory and served on 127.0.0.1. The domain
names the examples use (arxiv.org, nature.com, science.org) are mapped to it through
``AESOP_HOSTS``, the policy's own hosts override, so ``allowed_domains`` stay as TASKS.md writes
them and every request still passes the policy gate. Because the answer is a loopback address,
the tasks opt in with ``TaskConfig(allow_private_network=True)``: without it the policy refuses
the demo server, as it should.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_site.generate import build_site
from demo_site.serve import DemoServer

DOMAINS = ("arxiv.org", "nature.com", "science.org")


@contextmanager
def demo_web(site_domain: str = "nature.com") -> Iterator[str]:
    """Serve the demo site; yield its base URL under ``site_domain`` (mapped to 127.0.0.1)."""
    with tempfile.TemporaryDirectory(prefix="aesop-demo-") as tmp:
        manifest = build_site(tmp)
        previous = os.environ.get("AESOP_HOSTS")
        os.environ["AESOP_HOSTS"] = ",".join(f"{d}=127.0.0.1" for d in DOMAINS)
        try:
            with DemoServer(tmp) as server:
                print(f"demo site: {manifest['pages']} pages at {server.url} "
                      f"(as http://{site_domain}:{server.port})\n", flush=True)  # fmt: skip
                yield f"http://{site_domain}:{server.port}"
        finally:
            if previous is None:
                os.environ.pop("AESOP_HOSTS", None)
            else:
                os.environ["AESOP_HOSTS"] = previous
