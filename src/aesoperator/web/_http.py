"""httpx plumbing: a transport that connects only to addresses the policy approved."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import ssl
import threading
import typing
from collections.abc import Awaitable, Callable

import httpcore
import httpx

from ..errors import FetchError, PolicyViolation
from ._decode import ACCEPT_ENCODING

Resolve = Callable[[str, int], Awaitable[list[str]]]

# TLS contexts, one per setting, shared by every client of the process. Loading the trusted
# certificates costs ~50 ms of CPU (more on a busy machine), so it waits for the first TLS
# handshake: a task that only speaks plain HTTP never pays it.
_contexts: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}
_loaded: set[int] = set()
_tls_lock = threading.Lock()


def _tls_context(http2: bool) -> ssl.SSLContext:
    # Keyed by the variables OpenSSL reads, so a changed SSL_CERT_FILE gets a fresh context.
    key = (http2, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _tls_lock:
        ctx = _contexts.get(key)
        if ctx is None:
            # What ssl.create_default_context() builds (verification, host-name check),
            # minus the certificates, loaded by _ensure_certificates.
            ctx = _contexts[key] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if http2:
                ctx.set_alpn_protocols(["h2", "http/1.1"])
        return ctx


def _ensure_certificates(ctx: ssl.SSLContext) -> None:
    with _tls_lock:
        if id(ctx) not in _loaded:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
            _loaded.add(id(ctx))


def verified_context() -> ssl.SSLContext:
    """The process's client TLS context with the trusted certificates loaded (what
    ``ssl.create_default_context()`` gives, built once), for connections made outside httpx."""
    ctx = _tls_context(http2=False)
    _ensure_certificates(ctx)
    return ctx


class _Stream(httpcore.AsyncNetworkStream):
    """A connection whose TLS upgrade first makes sure the context trusts the system's CAs.

    It also remembers its socket: httpcore asks whether a kept-alive connection is readable
    (closed by the server) before every request on it, and anyio rebuilds all of the stream's
    attributes, system calls included, to answer each time.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: typing.Any = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        _ensure_certificates(ssl_context)
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info in ("socket", "is_readable"):
            if self._socket is None:
                self._socket = self._inner.get_extra_info("socket")
            return self._socket if info == "socket" else _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket | None) -> bool:
    """Whether a read would return at once (data, or the end of a closed connection)."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True  # gone: the next read returns b""
    if not hasattr(select, "poll"):  # pragma: no cover - Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections to the IPs ``resolve`` returns, never to a name.

    TLS still uses the URL's host name (httpcore passes it as SNI and checks the certificate
    against it), so HTTPS stays correct while DNS is decided once, by the policy.
    """

    def __init__(self, resolve: Resolve) -> None:
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        ips = await self._resolve(host, port)
        error: Exception | None = None
        for ip in ips:
            try:
                stream = await self._inner.connect_tcp(
                    ip,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
                return _Stream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        if error is None:  # pragma: no cover - resolve never returns an empty list
            raise FetchError(f"no address for {host}", url=host, transient=True)
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise PolicyViolation("unix sockets are not reachable from tasks", rule="scheme")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """``AsyncHTTPTransport`` whose connections go only to policy-approved addresses."""

    def __init__(self, resolve: Resolve, *, max_connections: int, http2: bool = True) -> None:
        ctx = _tls_context(http2)
        super().__init__(verify=ctx, trust_env=False)  # its pool is replaced just below
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ctx,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=15.0,
            http1=True,
            http2=http2,
            network_backend=_PinnedBackend(resolve),
        )


def make_client(resolve: Resolve, *, max_connections: int, timeout: float) -> httpx.AsyncClient:
    # trust_env=False: a proxy from the environment would be a second path to the network.
    # Offer only the codings _decode bounds (httpx would offer whatever it can import).
    return httpx.AsyncClient(
        headers={"accept-encoding": ACCEPT_ENCODING},
        transport=PinnedTransport(resolve, max_connections=max_connections),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout),
    )
