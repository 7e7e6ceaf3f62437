"""The gate: the one path every request of an execution takes, HTTP, browser or WebSocket.

For each request and each redirect hop, in this order: policy (``Policy.check_url``) →
address (resolved once, checked, then pinned: connections go only to the checked addresses) →
robots.txt (fetched once per origin, through this same gate) → per-host gate (crawl-delay,
``Retry-After``; a wait that would outlast the execution fails fast) → concurrency bound →
rate ceiling → the wire. Transient failures (connection errors, time-outs, 5xx, 429) are
retried with backoff; redirects are followed here so that every hop is checked. A refusal is
recorded once per URL and rule (``policy_refused``) and never leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx

from ..errors import FetchError, PolicyViolation, UserError
from ._decode import BadEncoding, Decoder, TooLarge
from ._http import make_client
from ._limits import HostGate, RateLimiter
from .extract import decode_body
from .policy import Policy, is_default_port, refusal

if TYPE_CHECKING:
    from ._host import WebHost

__all__ = ["DEFAULT_USER_AGENT", "Gate", "Response", "origin_of"]

DEFAULT_USER_AGENT = "Aesoperator/0.1 (+https://github.com/aesoperator/aesoperator)"
_MAX_REDIRECTS = 20
_DNS_TTL = 300.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# How long a server that refused every connection attempt of a request (retries included) is
# given one attempt per request instead of a backoff series. Documentation links to development
# servers (Django's to http://127.0.0.1:8000/): each such link held a crawl worker for the whole
# backoff (~7 s by default), robots.txt's fetch once more. A monitor still tries every check.
_DOWN_FOR = 60.0


def _is_challenge(resp: Response) -> bool:
    """A bot challenge (Cloudflare marks its own): asking again gets the same challenge."""
    return dict(resp.headers).get("cf-mitigated", "").lower() == "challenge"


class _Unreachable(FetchError):
    """No connection could be opened (refused, no route, connect time-out). Internal: it
    leaves the gate as a plain ``FetchError`` (error types cross processes by name)."""


@dataclass
class Response:
    """A final response as the gate read it: headers as sent, body decoded and bounded."""

    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def location(self) -> str | None:
        """Where this response redirects (a 3xx with a ``Location``, the last one sent)."""
        if self.status not in _REDIRECTS:
            return None
        found = None
        for key, value in self.headers:
            if key.lower() == "location":
                found = value
        return found or None


def origin_of(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].split('?', 1)[0].lower()}"


def _retry_after(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` value asks for: delay-seconds or an HTTP-date (RFC 9110).
    None for anything else (negative, fractional, garbage): the usual backoff applies. An
    absurd value is kept (even ``inf``): the host gate refuses to wait longer than time left."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    from datetime import UTC
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # an HTTP-date is always GMT
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


class Gate:
    """Policy, pinned DNS, robots.txt, host waits, concurrency, rate, retries and redirects
    for one execution (``owner``). ``send`` is the door; the browser layer and the HTTP
    fetcher both go through it."""

    def __init__(self, owner: WebHost) -> None:
        self._owner = owner
        cfg = owner.config
        self._cfg = cfg
        self.policy = Policy.from_config(cfg)
        self.user_agent = cfg.user_agent or DEFAULT_USER_AGENT
        self._rate = RateLimiter(cfg.requests_per_second)
        self._sem = asyncio.Semaphore(cfg.concurrent_requests)
        self._hosts = HostGate()
        self._robots: dict[str, Any] = {}  # origin -> protego parser, or False: allow all
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[str] | PolicyViolation]] = {}
        self._client: httpx.AsyncClient | None = None
        self._browser_client: httpx.AsyncClient | None = None
        self._refused_seen: set[tuple[str, str]] = set()
        self._url_checks: dict[tuple[str, bool], str | PolicyViolation] = {}
        self._down: dict[tuple[str, int], float] = {}  # (host, port) -> refused lately, until
        self.closed = False

    async def resolve(self, host: str, port: int) -> list[str]:
        # An answer is kept for _DNS_TTL: the check and the connections made meanwhile use the
        # same addresses, so DNS cannot change in between; a new answer is checked again.
        key = (host, port)
        now = time.monotonic()
        entry = self._dns.get(key)
        if entry is None or entry[0] < now:
            try:
                answer: list[str] | PolicyViolation = await self.policy.resolve(host, port)
            except PolicyViolation as exc:
                answer = exc  # a name that does not resolve (FetchError) is not remembered
            entry = (now + _DNS_TTL, answer)
            self._dns[key] = entry
        cached = entry[1]
        if isinstance(cached, PolicyViolation):
            raise PolicyViolation(str(cached), url=cached.url, rule=cached.rule)
        return cached

    def _http(self, browser: bool = False) -> httpx.AsyncClient:
        if self.closed:
            raise UserError("this web session is closed")
        if browser:
            if self._browser_client is None:
                self._browser_client = make_client(
                    self.resolve,
                    max_connections=max(8, self._cfg.concurrent_requests),
                    timeout=self._cfg.request_timeout_seconds,
                )
            return self._browser_client
        if self._client is None:
            self._client = make_client(
                self.resolve,
                max_connections=self._cfg.concurrent_requests,
                timeout=self._cfg.request_timeout_seconds,
            )
        return self._client

    def check_url(self, url: str, navigation: bool) -> str:
        """``policy.check_url``, remembered per URL: the policy of a session never changes, and
        a page asks for the same URLs again and again (its stylesheet on every page)."""
        key = (url, navigation)
        known = self._url_checks.get(key)
        if known is None:
            try:
                known = self.policy.check_url(url, navigation=navigation)
            except PolicyViolation as exc:
                known = exc
            if len(self._url_checks) >= 50_000:
                self._url_checks.clear()
            self._url_checks[key] = known
        if isinstance(known, PolicyViolation):
            raise PolicyViolation(str(known), url=known.url, rule=known.rule)
        return known

    def refused(self, url: str, exc: PolicyViolation, **extra: Any) -> None:
        key = (url, exc.rule or "")
        if key in self._refused_seen:
            return
        self._refused_seen.add(key)
        self._owner.emit("policy_refused", url=url, rule=exc.rule, message=str(exc), **extra)

    async def _check(self, url: str, *, navigation: bool, robots: bool) -> str:
        """Policy (scheme, domains, address) and robots.txt for one hop. Raises when refused."""
        norm = self.check_url(url, navigation)
        scheme, host, port = self.policy.host_port(norm)
        await self.resolve(host, port)
        if robots and self._cfg.respect_robots_txt:
            await self._robots_allow(scheme, host, port, norm)
        return norm

    async def _robots_allow(self, scheme: str, host: str, port: int, url: str) -> None:
        shown = f"[{host}]" if ":" in host else host
        origin = f"{scheme}://{shown}" + ("" if is_default_port(scheme, port) else f":{port}")
        parser = self._robots.get(origin)
        if parser is None:
            lock = self._robots_locks.setdefault(origin, asyncio.Lock())
            async with lock:
                parser = self._robots.get(origin)
                if parser is None:
                    parser = await self._load_robots(origin, host)
                    self._robots[origin] = parser
        if parser is False:
            return
        if not parser.can_fetch(url, self.user_agent):
            raise refusal(
                f"refused {url!r}: robots.txt of {origin} disallows it "
                "(set TaskConfig(respect_robots_txt=False) to ignore robots.txt)",
                url=url,
                rule="robots_txt",
            )

    async def _load_robots(self, origin: str, host: str) -> Any:
        from protego import Protego

        url = origin + "/robots.txt"
        try:
            resp = await self.send(url, navigation=False, robots=False, browser=False)
        except (FetchError, PolicyViolation):
            return False  # unreachable robots.txt: nothing is disallowed
        if resp.status != 200:
            return False
        text, _ = decode_body(resp.body, dict(resp.headers).get("content-type"))
        parser = Protego.parse(text)
        delay = parser.crawl_delay(self.user_agent)
        if delay:
            self._hosts.set_delay(host, float(delay))
            # Said once here; the waits it causes between requests are not each recorded.
            self._owner.emit("crawl_delay", host=host, seconds=float(delay))
        return parser

    async def _send_once(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        count: bool = True,
        browser: bool = False,
    ) -> Response:
        """One request on the wire, within concurrency and rate limits (the host gate passed)."""
        cfg = self._cfg
        async with self._sem:
            slot = await self._rate.acquire() if count else None
            self._owner.check_cancelled()

            async def trace(event: str, info: Any) -> None:
                if event.endswith("send_request_headers.started"):
                    RateLimiter.mark_sent(slot)

            hdrs = {"user-agent": self.user_agent}
            if headers:
                hdrs.update(headers)
            client = self._http(browser)
            timeout = min(cfg.request_timeout_seconds, max(0.1, self._owner.budget.time_left))
            try:
                async with asyncio.timeout(timeout):
                    # The trace hook (awaited at every step of the request) only matters
                    # when there is a rate slot to start counting.
                    ext = {"trace": trace} if slot is not None else None
                    req = client.build_request(
                        method, url, headers=hdrs, content=content, extensions=ext
                    )
                    resp = await client.send(req, stream=True)
                    try:
                        declared = resp.headers.get("content-length", "")
                        if declared.isdigit() and int(declared) > cfg.max_response_bytes:
                            raise TooLarge(url)
                        # Decoded here, not by httpx: each layer of Content-Encoding in
                        # bounded pieces, every layer counted (see _decode).
                        decoder = Decoder(
                            resp.headers.get_list("content-encoding", split_commas=True),
                            cfg.max_response_bytes,
                        )
                        chunks: list[bytes] = []
                        async for raw in resp.aiter_raw():
                            chunks.extend(decoder.feed(raw))
                        chunks.extend(decoder.finish())
                    finally:
                        await resp.aclose()
            except TimeoutError:
                raise FetchError(
                    f"{url}: no response within request_timeout_seconds={timeout:g}",
                    url=url,
                    transient=True,
                ) from None
            except TooLarge:
                raise FetchError(
                    f"{url}: response larger than max_response_bytes={cfg.max_response_bytes}; "
                    "raise TaskConfig.max_response_bytes to read it",
                    url=url,
                ) from None
            except BadEncoding as exc:
                raise FetchError(f"{url}: {exc}", url=url) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise _Unreachable(
                    f"{url}: {type(exc).__name__}: {exc}", url=url, transient=True
                ) from exc
            except httpx.TransportError as exc:
                raise FetchError(
                    f"{url}: {type(exc).__name__}: {exc}", url=url, transient=True
                ) from exc
        got = list(resp.headers.multi_items())
        return Response(str(resp.url), resp.status_code, got, b"".join(chunks))

    async def _wait_for_host(self, url: str, host: str) -> None:
        """The host gate, failing fast when the wait it asks for outlasts the execution."""

        def too_long(wait: float, why: str) -> None:
            left = self._owner.budget.time_left
            if wait >= left:
                raise FetchError(
                    f"{url}: not sent: {host} asks to wait {wait:,.0f} s more ({why}), "
                    f"but {left:,.1f} s of max_duration_seconds="
                    f"{self._cfg.max_duration_seconds:g} are left",
                    url=url,
                )
            if why.startswith("Retry-After"):  # crawl-delay waits are steady: said once
                self._owner.emit("host_wait", url=url, host=host, seconds=round(wait, 3),
                                 reason=why)  # fmt: skip

        await self._hosts.wait(host, too_long)

    def _is_down(self, host: str, port: int) -> bool:
        """Did the server refuse every attempt of a request lately? Then one attempt, no
        backoff series: a dead link costs a refused connection, a server back up answers."""
        until = self._down.get((host, port))
        if until is None:
            return False
        if until <= time.monotonic():
            del self._down[host, port]
            return False
        return True

    async def _send_retrying(
        self,
        url: str,
        *,
        navigation: bool,
        robots: bool,
        browser: bool,
        sent: list[int] | None,
        **kw: Any,
    ) -> tuple[str, Response]:
        """One hop: checked (policy, address, robots.txt), then sent; a transient failure of
        either (a name that does not resolve, a refused connection, a 5xx) is retried.
        Returns the URL as checked and the response."""
        cfg = self._cfg
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            header: str | None = None
            last: Response | None = None
            down = False
            try:
                try:
                    norm = await self._check(url, navigation=navigation, robots=robots)
                except PolicyViolation as exc:
                    self.refused(url, exc, source="browser" if browser else "http")
                    raise
                _, host, port = self.policy.host_port(norm)
                down = self._is_down(host, port)
                # Before the page counts as spent: a wait that cannot be waited out gives it back.
                await self._wait_for_host(norm, host)
                if sent is not None:
                    sent[0] += 1
                resp = await self._send_once(norm, browser=browser, **kw)
            except _Unreachable as exc:
                if down or attempt > cfg.max_retries:
                    self._down[host, port] = time.monotonic() + _DOWN_FOR
                    why = f"{exc} (refused lately: not retried)" if down else str(exc)
                    raise FetchError(why, url=exc.url, transient=True) from exc.__cause__
                error = str(exc)
            except FetchError as exc:
                if not exc.transient or attempt > cfg.max_retries:
                    raise
                error = str(exc)
            else:
                self._down.pop((host, port), None)
                if resp.status not in _RETRY_STATUSES or _is_challenge(resp):
                    return norm, resp
                header = dict(resp.headers).get("retry-after")
                retry_after = _retry_after(header)
                if retry_after is not None and resp.status in (429, 503):
                    why = f"Retry-After: {header}"[:120]
                    self._hosts.back_off(self.policy.host_port(norm)[1], retry_after, why)
                if attempt > cfg.max_retries:
                    return norm, resp
                last = resp
                error = f"HTTP {resp.status}"
            delay = cfg.retry_delay_seconds * (2 ** (attempt - 1)) * (0.8 + 0.4 * random.random())
            if retry_after is not None:
                delay = max(delay, retry_after)
            if delay > self._owner.budget.time_left:
                if last is not None:
                    return norm, last  # the server's own answer beats a time-out of ours
                raise FetchError(f"{url}: {error}; no time left to retry", url=url, transient=True)
            extra = {} if header is None else {"retry_after": header[:100]}
            self._owner.emit("retry", url=url, attempt=attempt, delay=round(delay, 3),
                             error=error, **extra)  # fmt: skip
            await self._owner.sleep(delay)

    async def send(
        self,
        url: str,
        *,
        navigation: bool,
        robots: bool,
        browser: bool,
        sent: list[int] | None = None,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        count: bool = True,
        follow: bool = True,
    ) -> Response:
        """Follow redirects ourselves so that every hop passes the policy; ``follow=False``
        returns a redirect as it is (the reading browser follows it, and its next hop comes
        back here)."""
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            current, resp = await self._send_retrying(
                current, navigation=navigation, robots=robots, browser=browser, sent=sent,
                method=method, headers=headers, content=content, count=count,
            )  # fmt: skip
            location = resp.location
            if follow and location:
                if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                    method, content = "GET", None
                following = urljoin(current, location)
                if headers and origin_of(following) != origin_of(current):
                    # The page's cookies and credentials were for the first origin only.
                    headers = {k: v for k, v in headers.items()
                               if k.lower() not in ("cookie", "authorization")}  # fmt: skip
                current = following
                continue
            return resp
        raise FetchError(f"{url}: more than {_MAX_REDIRECTS} redirects", url=url)

    async def open_websocket(
        self,
        url: str,
        protocols: list[str],
        headers: Callable[[str], Awaitable[dict[str, str]]],
    ) -> Any:
        """A WebSocket handshake through the gate: policy, the pinned address (checked for
        private ranges), the host gate, one of ``concurrent_requests`` and one request of
        ``requests_per_second``; the open connection holds no slot. ``headers(http_url)``
        gives what the page would send (its ``Origin``, its cookies for the host)."""
        from ._browser import open_pinned_websocket

        norm = self.policy.check_url(url, navigation=False)
        scheme, host, port = self.policy.host_port(norm)
        ips = await self.resolve(host, port)
        secure = scheme == "wss"
        sent_headers = await headers(("https" if secure else "http") + norm[len(scheme) :])
        await self._wait_for_host(norm, host)
        async with self._sem:
            slot = await self._rate.acquire()
            self._owner.check_cancelled()
            RateLimiter.mark_sent(slot)
            timeout = min(self._cfg.request_timeout_seconds,
                          max(0.1, self._owner.budget.time_left))  # fmt: skip
            return await open_pinned_websocket(
                norm, host, port, ips, secure=secure, timeout=timeout, protocols=protocols,
                headers=sent_headers, user_agent=self.user_agent,
                max_size=self._cfg.max_response_bytes,
            )  # fmt: skip

    async def aclose(self) -> None:
        """Close the HTTP clients; nothing is sent afterwards. Idempotent."""
        self.closed = True
        for client in (self._client, self._browser_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._client = self._browser_client = None
