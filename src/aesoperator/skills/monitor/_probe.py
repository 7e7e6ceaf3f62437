"""One check: a timed HTTP/1.1 exchange over asyncio streams, to an IP the policy approved.

Why not httpx: a monitor needs each phase (DNS, connect, TLS, first byte, total) measured on
the wire, the peer certificate even when it does not verify, and a connection pinned to the
address the policy resolved. A minimal client does all three at a fraction of the CPU.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from ...errors import FetchError, PolicyViolation
from ._certs import CertInfo, cert_info

_MAX_HEADER_BYTES = 64 * 1024
_READ = 64 * 1024
USER_AGENT = "Aesoperator-Monitor/0.1"


class PolicyLike(Protocol):
    """The two calls of ``aesoperator.web.policy.Policy`` a probe needs."""

    def check_url(self, url: str, *, navigation: bool = True) -> str: ...

    async def resolve(self, host: str, port: int) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Target:
    """A URL split once into what every check reuses."""

    url: str
    https: bool
    host: str
    port: int
    request: bytes
    head: bool

    @classmethod
    def build(
        cls,
        url: str,
        *,
        method: str = "GET",
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
    ) -> Target:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        host_header = f"[{host}]" if ":" in host else host
        if parts.port and parts.port != (443 if https else 80):
            host_header += f":{parts.port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        names = {k.lower() for k, _ in headers}
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
        if "user-agent" not in names:
            lines.append(f"User-Agent: {USER_AGENT}")
        if "accept" not in names:
            lines.append("Accept: */*")
        # identity: the size and keyword are those of the body as sent; no decompression cost.
        if "accept-encoding" not in names:
            lines.append("Accept-Encoding: identity")
        lines.extend(f"{k}: {v}" for k, v in headers)
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        return cls(url, https, host, port, request, method == "HEAD")


@dataclass(slots=True)
class Check:
    """What one check measured. Times are milliseconds; ``None`` when the phase never ran.

    ``dns_ms``, ``connect_ms`` and ``tls_ms`` are the durations of those phases; ``ttfb_ms``
    and ``total_ms`` count from the start of the check (as curl's ``time_starttransfer`` and
    ``time_total`` do).
    """

    url: str
    at: float  # wall clock (time.time()) when the check started
    ok: bool = False  # the exchange completed (status may still be unexpected)
    reason: str | None = None  # why it failed, when it did
    ip: str | None = None
    status: int | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    total_ms: float | None = None
    body_bytes: int = 0
    truncated: bool = False
    keyword_found: bool | None = None
    keyword_absent_found: bool | None = None
    tls_version: str | None = None
    tls_error: str | None = None  # certificate verification failure, if any
    cert: CertInfo | None = None
    policy_refused: bool = False


class _Reader:
    """A buffer over a StreamReader that can split headers from body without losing bytes."""

    __slots__ = ("_eof", "_reader", "buf")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self.buf = bytearray()
        self._eof = False

    async def fill(self) -> bool:
        if self._eof:
            return False
        data = await self._reader.read(_READ)
        if not data:
            self._eof = True
            return False
        self.buf += data
        return True

    async def until(self, sep: bytes, limit: int) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + len(sep)]
                return out
            if len(self.buf) > limit or not await self.fill():
                raise _BadResponse("connection closed or line too long in HTTP response")

    async def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not await self.fill():
                raise _BadResponse("connection closed before the end of the body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class _BadResponse(Exception):
    pass


class _Body:
    """Counts body bytes and looks for keywords across chunk boundaries, keeping nothing else."""

    __slots__ = ("_tails", "found", "keywords", "limit", "size", "truncated")

    def __init__(self, keywords: tuple[bytes, ...], limit: int) -> None:
        self.keywords = keywords
        self.found = [False] * len(keywords)
        self._tails = [b""] * len(keywords)
        self.size = 0
        self.limit = limit
        self.truncated = False

    def feed(self, data: bytes) -> bool:
        """Take ``data``; False once the size limit is reached (stop reading)."""
        room = self.limit - self.size
        if len(data) > room:
            data, self.truncated = data[:room], True
        self.size += len(data)
        for i, kw in enumerate(self.keywords):
            if self.found[i]:
                continue
            window = self._tails[i] + data
            if kw in window:
                self.found[i] = True
            else:
                self._tails[i] = window[-(len(kw) - 1) :] if len(kw) > 1 else b""
        return not self.truncated


def _ms(a: float, b: float) -> float:
    return round((b - a) * 1000.0, 3)


async def _open(
    ips: list[str], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    last: BaseException | None = None
    for ip in ips:
        try:
            reader, writer = await asyncio.open_connection(ip, port, limit=_READ)
            return reader, writer, ip
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


def tls_contexts(ca_file: str | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A verifying context (system CAs, plus ``ca_file``) and a non-verifying one (to read a
    certificate that does not verify)."""
    verify = ssl.create_default_context()
    if ca_file:
        verify.load_verify_locations(cafile=ca_file)
    verify.set_alpn_protocols(["http/1.1"])
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    insecure.set_alpn_protocols(["http/1.1"])
    return verify, insecure


async def probe(
    target: Target,
    policy: PolicyLike,
    *,
    timeout: float,
    contexts: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
    keywords: tuple[bytes, ...] = (),
    max_bytes: int = 20 * 1024 * 1024,
    strict_tls: bool = True,
) -> Check:
    """Run one check of ``target``. Network failures become ``Check.reason``, never exceptions.

    ``PolicyViolation`` from the policy also ends in ``reason`` (with ``policy_refused``): no
    request is sent. With ``strict_tls`` a certificate that does not verify fails the check;
    otherwise the exchange continues over a second, non-verifying handshake so that the
    certificate and the server are both measured.
    """
    check = Check(url=target.url, at=time.time())
    phase = "dns"
    t0 = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            policy.check_url(target.url)
            ips = await policy.resolve(target.host, target.port)
            t_dns = time.perf_counter()
            check.dns_ms = _ms(t0, t_dns)
            phase = "connect"
            reader, writer, check.ip = await _open(ips, target.port)
            t_conn = time.perf_counter()
            check.connect_ms = _ms(t_dns, t_conn)
            if target.https:
                phase = "tls"
                verify, insecure = contexts or tls_contexts(None)
                try:
                    await writer.start_tls(verify, server_hostname=target.host)
                except ssl.SSLCertVerificationError as exc:
                    check.tls_error = exc.verify_message or str(exc)
                    writer.transport.abort()
                    # Read the certificate anyway: a second handshake that does not verify.
                    reader, writer, check.ip = await _open([check.ip], target.port)
                    t_conn = time.perf_counter()
                    await writer.start_tls(insecure, server_hostname=target.host)
                t_tls = time.perf_counter()
                check.tls_ms = _ms(t_conn, t_tls)
                sslobj = writer.get_extra_info("ssl_object")
                if sslobj is not None:
                    check.tls_version = sslobj.version()
                    der = sslobj.getpeercert(binary_form=True)
                    if der:
                        check.cert = cert_info(der)
                if check.tls_error is not None and strict_tls:
                    check.reason = f"TLS certificate not valid: {check.tls_error}"
                    check.total_ms = _ms(t0, t_tls)
                    return check
            phase = "request"
            writer.write(target.request)
            await writer.drain()
            phase = "response"
            buffered = _Reader(reader)
            if not await buffered.fill():
                raise _BadResponse("connection closed before any response")
            t_first = time.perf_counter()
            check.ttfb_ms = _ms(t0, t_first)
            head = await buffered.until(b"\r\n\r\n", _MAX_HEADER_BYTES)
            status, chunked, length = _parse_head(head)
            check.status = status
            body = _Body(keywords, max_bytes)
            if not (target.head or status in (204, 304) or 100 <= status < 200):
                phase = "body"
                await _read_body(buffered, body, chunked, length)
            check.body_bytes, check.truncated = body.size, body.truncated
            if keywords:
                check.keyword_found = body.found[0]
                if len(keywords) > 1:
                    check.keyword_absent_found = body.found[1]
            check.total_ms = _ms(t0, time.perf_counter())
            check.ok = True
    except TimeoutError:
        check.reason = f"timed out after {timeout * 1000:.0f} ms during {phase}"
    except FetchError as exc:  # only the policy's resolver raises it: the name does not resolve
        check.reason = f"DNS lookup failed: {exc}"
    except PolicyViolation as exc:
        if exc.rule == "dns":  # the resolver's answer is not an address: an outage too
            check.reason = f"DNS lookup failed: {exc}"
        else:
            check.reason, check.policy_refused = f"refused by policy: {exc}", True
    except ConnectionRefusedError:
        check.reason = f"connection refused ({phase})"
    except ssl.SSLError as exc:
        check.reason = f"TLS handshake failed: {exc.reason or exc}"
    except _BadResponse as exc:
        check.reason = f"invalid HTTP response: {exc}"
    except (OSError, EOFError) as exc:
        # socket.gaierror and friends: the name did not resolve or the network failed.
        text = str(exc) or type(exc).__name__
        check.reason = f"{'DNS lookup failed' if phase == 'dns' else 'network error'}: {text}"
    except Exception as exc:  # a check never ends the task; the reason says what happened
        check.reason = f"{phase} failed: {type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.transport.abort()
        if check.total_ms is None and not check.ok:
            check.total_ms = _ms(t0, time.perf_counter())
    return check


def _parse_head(head: bytes) -> tuple[int, bool, int | None]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise _BadResponse(f"bad status line {lines[0][:80]!r}")
    chunked, length = False, None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    return int(parts[1]), chunked, length


async def _read_body(buf: _Reader, body: _Body, chunked: bool, length: int | None) -> None:
    if chunked:
        while True:
            size_line = await buf.until(b"\r\n", 1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadResponse(f"bad chunk size {size_line[:40]!r}") from None
            if size == 0:
                return  # trailers are not needed; the connection is closed next
            if not body.feed(await buf.take(size)):
                return
            await buf.take(2)
    if length is not None:
        left = length
        while left > 0:
            if not buf.buf and not await buf.fill():
                raise _BadResponse("connection closed before the end of the body")
            data = bytes(buf.buf[:left])
            del buf.buf[: len(data)]
            left -= len(data)
            if not body.feed(data):
                return
        return
    while True:  # no length: the body ends with the connection
        if buf.buf:
            data = bytes(buf.buf)
            buf.buf.clear()
            if not body.feed(data):
                return
        if not await buf.fill():
            return
