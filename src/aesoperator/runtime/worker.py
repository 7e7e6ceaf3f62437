"""A worker process: runs one execution at a time for the supervisor.

Started as ``python -m aesoperator.runtime.worker FD`` — never through multiprocessing — so
the user's ``__main__`` is never imported again here: scripts without an
``if __name__ == "__main__":`` guard and notebook cells are safe. Handlers arrive
cloudpickled (by value when defined in ``__main__``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import cloudpickle

from .protocol import Cancel, Channel, Idle, Ready, Retire, Run, ToSupervisor
from .runner import CancelToken, Registry, Runner


def _die_with_parent(parent: int | None) -> None:
    # Linux: get SIGKILL when the supervisor dies, so no worker (or its browser) is orphaned.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:
        os._exit(0)  # it died before the line above took effect: nobody will send us work


def main() -> None:
    fd = int(sys.argv[1])
    _die_with_parent(int(sys.argv[2]) if len(sys.argv) > 2 else None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    channel = Channel(socket.socket(fileno=fd))

    def send(msg: ToSupervisor) -> None:
        try:
            channel.send(msg)
        except OSError:  # the supervisor has gone (it is exiting): nobody is left to report to
            os._exit(0)

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="worker-loop", daemon=True).start()
    runner = Runner(send, loop)
    registry = Registry()
    handlers_version = ""
    current: dict[str, tuple[CancelToken, Any]] = {}
    send(Ready(os.getpid()))

    def finished(eid: str) -> None:
        current.pop(eid, None)
        if runner.stuck_threads and any(t.is_alive() for t in runner.stuck_threads):
            # A handler thread ignored cancellation; this process is no longer clean.
            send(Retire("a handler thread did not stop"))
            os._exit(0)
        send(Idle())

    while True:
        msg = channel.recv()
        if isinstance(msg, Run):
            # The client's import path first: unpickling the handlers imports their modules,
            # and what those import may only be found there.
            for path in reversed(msg.sys_path):
                if path not in sys.path:
                    sys.path.insert(0, path)
            if msg.handlers_blob is not None:
                registry = cloudpickle.loads(msg.handlers_blob)
                handlers_version = msg.handlers_version
            assert msg.handlers_version == handlers_version
            job = dataclasses.replace(msg.job, registry=registry)
            if job.cwd:
                with contextlib.suppress(OSError):
                    os.chdir(job.cwd)
            token = CancelToken()
            fut = asyncio.run_coroutine_threadsafe(runner.run(job, token), loop)
            current[job.execution_id] = (token, fut)
            fut.add_done_callback(functools.partial(_done, finished, job.execution_id))
        elif isinstance(msg, Cancel):
            entry = current.get(msg.id)
            if entry is not None:
                token, _fut = entry
                token.cancel(msg.reason)
                if token.task is not None:
                    loop.call_soon_threadsafe(token.task.cancel)
        else:  # Shutdown, or the supervisor has gone
            os._exit(0)


def _done(finished: Callable[[str], None], execution_id: str, _fut: object) -> None:
    finished(execution_id)


if __name__ == "__main__":
    main()
