"""Messages between the supervisor and its workers: length-prefixed pickles over a socket pair.

The socket is private to the two processes (a ``socketpair`` inherited by the child), so
pickle's trust model holds: nothing else can write to it.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading
from typing import Any

_HEADER = struct.Struct("!I")


def pack(msg: dict[str, Any]) -> bytes:
    body = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def unpack(body: bytes) -> dict[str, Any]:
    msg = pickle.loads(body)
    assert isinstance(msg, dict)
    return msg


class Channel:
    """Blocking, thread-safe sending end and single-reader receiving end of a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()

    def send(self, msg: dict[str, Any]) -> None:
        data = pack(msg)
        with self._send_lock:
            self._sock.sendall(data)

    def recv(self) -> dict[str, Any] | None:
        """The next message, or None when the other side has gone."""
        head = self._recv_exact(_HEADER.size)
        if head is None:
            return None
        (size,) = _HEADER.unpack(head)
        body = self._recv_exact(size)
        return None if body is None else unpack(body)

    def _recv_exact(self, size: int) -> bytes | None:
        chunks, left = [], size
        while left:
            try:
                chunk = self._sock.recv(min(left, 1 << 20))
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
