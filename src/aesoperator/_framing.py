"""Length-prefixed pickle framing: the one wire format between our processes.

A frame is a 4-byte big-endian length, then a pickle. It is only ever spoken over a
``socketpair`` inherited by a child we started, so pickle's trust model holds: nothing else
can write to the socket. Used by the runtime's workers and the web layer's extraction pool.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from typing import Any

HEADER = struct.Struct("!I")


def encode(value: object) -> bytes:
    """One frame: the length, then the pickle."""
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def send_frame(sock: socket.socket, value: object) -> None:
    """Write one frame to a blocking socket (callers serialise concurrent senders)."""
    sock.sendall(encode(value))


def recv_frame(sock: socket.socket) -> Any:
    """The next frame's value from a blocking socket; ``EOFError`` once the other end closed."""
    (size,) = HEADER.unpack(_recv_exact(sock, HEADER.size))
    return pickle.loads(_recv_exact(sock, size))


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next frame's value from a stream; ``asyncio.IncompleteReadError`` at its end."""
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return pickle.loads(await reader.readexactly(size))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("the other end closed the connection")
        got += n
    return bytes(buf)
