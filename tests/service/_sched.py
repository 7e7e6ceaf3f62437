"""Helpers of the webhook and schedule tests: a local webhook receiver that records requests."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from serving import QuietHandler


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    seen: Any  # what ``Receiver.on_request`` returned when the request arrived

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook target on 127.0.0.1. ``statuses`` answers the n-th request (the last one
    repeats); ``hold`` keeps every request waiting until it is set."""

    def __init__(self, statuses: tuple[int, ...] = (200,)) -> None:
        self.statuses = statuses
        self.requests: list[Received] = []
        self.hold: threading.Event | None = None
        self.on_request: Callable[[], Any] = lambda: None
        self._lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                seen = receiver.on_request()
                with receiver._lock:
                    receiver.requests.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, seen)
                    )
                    n = len(receiver.requests)
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status = receiver.statuses[min(n, len(receiver.statuses)) - 1]
                self.reply(status, b"ok", "text/plain")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def served_app(tmp_path: Path, settings: Any = None) -> Iterator[Any]:
    """``aesop serve``'s app (``build_app``: the API plus schedules) on a free local port."""
    from _api import serving

    from aesoperator.service.serve import build_app

    with serving(tmp_path, settings, build=build_app) as served:
        yield served
