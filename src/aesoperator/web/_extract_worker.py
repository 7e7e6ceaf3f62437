"""An extraction process: reads pages on stdin, writes ``Extracted`` results on stdout.

Started as ``python -m aesoperator.web._extract_worker`` (never through multiprocessing, so
the user's ``__main__`` is never imported again). Imports only the extractor.
"""

from __future__ import annotations

import contextlib
import ctypes
import pickle
import signal
import struct
import sys

_HEADER = struct.Struct("!I")


def _read(stream: object, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))  # type: ignore[attr-defined]
        if not chunk:
            return None
        data += chunk
    return data


def main() -> None:
    with contextlib.suppress(Exception):  # die with the process that started us (Linux)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .extract import extract_page

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = _read(stdin, _HEADER.size)
        if head is None:
            return
        body = _read(stdin, _HEADER.unpack(head)[0])
        if body is None:
            return
        page, url, content_type = pickle.loads(body)
        try:
            reply: tuple[bool, object] = (True, extract_page(page, url, content_type))
        except Exception as exc:  # reported to the caller, which extracts on a thread instead
            reply = (False, f"{type(exc).__name__}: {exc}")
        out = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(_HEADER.pack(len(out)) + out)
        stdout.flush()


if __name__ == "__main__":
    main()
