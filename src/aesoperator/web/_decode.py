"""Content-Encoding, decoded in bounded steps so that no layer of a chain can inflate at once.

httpx decodes a chunk of the wire in one call per layer, without an output limit: 8 KB of
``Content-Encoding: gzip, gzip`` become gigabytes before anyone counts. Here every layer gives
out at most ``_PIECE`` bytes at a time, each piece is handed to the next layer before the
first one goes on, and the bytes out of every layer are counted against the limit (an inner
layer can be all padding: a deflate stream of empty blocks decodes to nothing). So what is held
is at most the limit plus one piece per layer, and the work done is bounded by the limit.

Decoded: ``gzip`` (``x-gzip``), ``deflate`` (zlib-wrapped or raw), and, when a library with a
bounded API is installed, ``br`` (``brotli`` ≥ 1.2) and ``zstd`` (``compression.zstd`` or
``backports.zstd``, windows up to 8 MB as RFC 9659 asks). ``identity`` is skipped. A chain
with any other coding is not decoded at all (the body stays as sent, as Chromium does). Data
after the end of a compressed stream is ignored. At most ``_MAX_LAYERS`` codings are decoded.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

__all__ = ["ACCEPT_ENCODING", "BadEncoding", "Decoder", "TooLarge"]

_PIECE = 64 * 1024
_MAX_LAYERS = 4
_ZSTD_WINDOW_LOG = 23  # 8 MB, the most a zstd content-coding may use (RFC 9659)


class TooLarge(Exception):
    """More than the limit came (or would come) out of a layer."""


class BadEncoding(Exception):
    """The body is not what its ``Content-Encoding`` says, or the chain is refused."""


class _Layer(Protocol):
    name: str
    errors: tuple[type[Exception], ...]

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


class _Zlib:
    """gzip (``wbits=31``) or deflate; ``wbits=None`` picks zlib-wrapped or raw deflate from
    the first two bytes (servers send both under the name ``deflate``)."""

    name = "gzip"
    errors: tuple[type[Exception], ...] = (zlib.error,)

    def __init__(self, wbits: int | None) -> None:
        self._head = b""
        self._z: Any = None if wbits is None else zlib.decompressobj(wbits)
        if wbits is None:
            self.name = "deflate"

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._z is None:
            self._head += data
            if len(self._head) < 2:
                return
            b0, b1 = self._head[0], self._head[1]
            wrapped = b0 & 0x0F == 8 and (b0 << 8 | b1) % 31 == 0
            self._z = zlib.decompressobj(15 if wrapped else -15)
            data, self._head = self._head, b""
        z = self._z
        while not z.eof:
            out = z.decompress(data, _PIECE)
            if out:
                yield out
            data = z.unconsumed_tail
            if not data and len(out) < _PIECE:
                return  # all input taken and nothing held back

    def finish(self) -> Iterator[bytes]:
        if self._z is None and self._head:
            self._z = zlib.decompressobj(-15)  # a one-byte body: raw deflate or nothing
            yield from self.feed(b"")
        # A truncated stream gives what it had, as browsers show a partial page.


class _Brotli:
    name = "br"

    def __init__(self, module: Any) -> None:
        self._d = module.Decompressor()
        self.errors: tuple[type[Exception], ...] = (module.error,)

    def feed(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        if d.is_finished():
            return
        out = d.process(data, output_buffer_limit=_PIECE)
        while True:
            if out:
                yield out
            if d.can_accept_more_data() or d.is_finished():
                return
            out = d.process(b"", output_buffer_limit=_PIECE)

    def finish(self) -> Iterator[bytes]:
        return iter(())


class _Zstd:
    name = "zstd"

    def __init__(self, module: Any) -> None:
        self._new: Callable[[], Any] = lambda: module.ZstdDecompressor(
            options={module.DecompressionParameter.window_log_max: _ZSTD_WINDOW_LOG}
        )
        self._d = self._new()
        self.errors: tuple[type[Exception], ...] = (module.ZstdError, EOFError)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            d = self._d
            out = d.decompress(data, _PIECE)
            if out:
                yield out
            if d.eof:  # frames may follow one another; each starts a new decompressor
                data, self._d = d.unused_data, self._new()
                if not data:
                    return
            elif d.needs_input:
                return
            else:
                data = b""

    def finish(self) -> Iterator[bytes]:
        return iter(())


def _module(*names: str) -> Any:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_BROTLI = _module("brotli")
if _BROTLI is not None and not hasattr(_BROTLI.Decompressor(), "can_accept_more_data"):
    _BROTLI = None  # before 1.2 its output cannot be bounded: not used
_ZSTD = _module("compression.zstd", "backports.zstd")
_LAYERS: dict[str, Callable[[], _Layer]] = {
    "gzip": lambda: _Zlib(31),
    "x-gzip": lambda: _Zlib(31),
    "deflate": lambda: _Zlib(None),
}
if _BROTLI is not None:
    _LAYERS["br"] = lambda: _Brotli(_BROTLI)
if _ZSTD is not None:
    _LAYERS["zstd"] = lambda: _Zstd(_ZSTD)
# What requests offer: only codings decoded here, never one we would pass through.
ACCEPT_ENCODING = ", ".join(c for c in ("gzip", "deflate", "br", "zstd") if c in _LAYERS)


class Decoder:
    """Decodes a body whose ``Content-Encoding`` values are ``codings``, within ``limit``
    bytes: the raw body, what comes out of each layer and the result are each at most
    ``limit`` bytes, else ``TooLarge``. ``BadEncoding`` for a corrupt stream or a chain of
    more than ``_MAX_LAYERS`` codings."""

    def __init__(self, codings: list[str], limit: int) -> None:
        self.limit = limit
        self.passed_through = False  # True when a coding is unknown: the body stays raw
        names = [c.strip().lower() for c in codings]
        names = [n for n in names if n and n != "identity"]
        if any(n not in _LAYERS for n in names):
            self.passed_through, names = True, []
        if len(names) > _MAX_LAYERS:
            raise BadEncoding(
                f"Content-Encoding {', '.join(names)[:200]!r} stacks {len(names)} codings; "
                f"at most {_MAX_LAYERS} are decoded"
            )
        # The last coding listed was applied last: it is undone first.
        self._layers = [_LAYERS[n]() for n in reversed(names)]
        self._counts = [0] * (len(self._layers) + 1)

    def feed(self, raw: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next chunk of the wire, each at most 64 KiB."""
        return self._push(0, raw, final=False)

    def finish(self) -> Iterator[bytes]:
        """What the layers still held at the end of the body."""
        return self._push(0, b"", final=True)

    def _push(self, i: int, data: bytes, *, final: bool) -> Iterator[bytes]:
        self._counts[i] += len(data)
        if self._counts[i] > self.limit:
            raise TooLarge(self._counts[i])
        if i == len(self._layers):
            if data:
                yield data
            return
        layer = self._layers[i]
        try:
            for piece in layer.feed(data):
                yield from self._push(i + 1, piece, final=False)
            if final:
                for piece in layer.finish():
                    yield from self._push(i + 1, piece, final=False)
                yield from self._push(i + 1, b"", final=True)
        except layer.errors as exc:
            raise BadEncoding(f"the body is not valid {layer.name} ({exc})") from None
