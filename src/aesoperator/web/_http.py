"""httpx plumbing: a transport that connects only to addresses the policy approved."""

from __future__ import annotations

import asyncio
import ssl
import typing
from collections.abc import Awaitable, Callable

import httpcore
import httpx

from ..errors import PolicyViolation

Resolve = Callable[[str, int], Awaitable[list[str]]]


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
                return await self._inner.connect_tcp(
                    ip,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        if error is None:  # pragma: no cover - resolve never returns an empty list
            raise PolicyViolation(f"no address for {host}", url=host, rule="dns")
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
        super().__init__(trust_env=False)
        ctx = ssl.create_default_context()
        if http2:
            ctx.set_alpn_protocols(["h2", "http/1.1"])
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
    return httpx.AsyncClient(
        transport=PinnedTransport(resolve, max_connections=max_connections),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout),
    )
