"""Extraction processes: each reads pages from its socket and writes ``Extracted`` results back.

Started as ``python -m aesoperator.web._extract_worker FD [FD ...]`` (never through
multiprocessing, so the user's ``__main__`` is never imported again) with one inherited socket
per slot. The first process imports the extractor and warms it (lazy imports, compiled
patterns), then forks one copy per further socket: N slots pay one start-up, and the copies
share its memory pages. Each copy dies with the process that forked it, and the first with the
process that started it.

Messages both ways: ``aesoperator._framing`` frames. On start each slot sends its pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys

from .._framing import recv_frame, send_frame


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):  # Linux: SIGKILL when the parent goes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _serve(sock: socket.socket) -> None:
    from .extract import extract_page

    send_frame(sock, os.getpid())
    while True:
        try:
            page, url, content_type, markdown, listing = recv_frame(sock)
        except EOFError:
            return
        try:
            extracted = extract_page(page, url, content_type, markdown=markdown, listing=listing)
            reply: tuple[bool, object] = (True, extracted)
        except Exception as exc:  # reported to the caller, which extracts on a thread instead
            reply = (False, f"{type(exc).__name__}: {exc}")
        send_frame(sock, reply)


def main() -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fds = [int(a) for a in sys.argv[1:]]
    from .extract import warm_up

    warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the forked slots
    mine = fds[0]
    for fd in fds[1:]:
        if os.fork() == 0:
            _die_with_parent()
            mine = fd
            break
    for fd in fds:
        if fd != mine:
            os.close(fd)
    sock = socket.socket(fileno=mine)
    with contextlib.suppress(OSError):  # the pool closed its end: nothing left to answer
        _serve(sock)
    os._exit(0)


if __name__ == "__main__":
    main()
