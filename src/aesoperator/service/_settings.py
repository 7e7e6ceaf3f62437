"""What an operator can set on the service; every default is the safe one."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Settings of :func:`aesoperator.service.create_app`.

    Attributes:
        body_limit_bytes: request bodies over this are refused with 413 (counted as read, so
            a chunked body without ``Content-Length`` is stopped at the limit too).
        rate_per_token: ``(requests per second, burst)`` per token; over it, 429 with
            ``Retry-After``. ``None`` turns the limit off (benchmarks).
        cors_origins: origins allowed to call the API from a browser; empty: CORS off.
        webhook_url: server-wide webhook for terminal states (the webhooks part uses it).
        sse_poll_interval: seconds between two reads of the store by the one poller that
            follows a watched execution for all its event-stream subscribers.
        keepalive_seconds: a ``: ping`` comment on an idle event stream this often.
    """

    body_limit_bytes: int = MIB
    rate_per_token: tuple[float, int] | None = (100.0, 200)
    cors_origins: tuple[str, ...] = ()
    webhook_url: str | None = None
    sse_poll_interval: float = 0.02
    keepalive_seconds: float = 15.0
