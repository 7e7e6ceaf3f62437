"""Bearer tokens, scopes, projects and the per-token rate limit.

Every route but the health checks depends on :func:`require`. A token is checked with one
indexed read of the store and a constant-time compare (``store/tokens.py``); revocation
holds at once, with no cache to expire. The rate limit is a token bucket per token, in
memory: one serving process is the unit it protects.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..store.tokens import Scope, TokenInfo
from ._problems import ProblemError

bearer = HTTPBearer(auto_error=False, description="`aesop token create NAME` makes one")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class RateLimiter:
    """``rate`` requests per second per key, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """0 if the request may go, else the seconds until it may."""
        now = time.monotonic()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate


def require(scope: Scope) -> Callable[..., Awaitable[TokenInfo]]:
    """A dependency: the caller's token, if it is live and allows ``scope``."""

    async def principal(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> TokenInfo:
        state = request.app.state.aesop
        info: TokenInfo | None
        if creds is None:
            raise ProblemError(
                401,
                "no token: send `Authorization: Bearer <token>`; "
                "create one with `aesop token create NAME`",
                headers=_CHALLENGE,
            )
        info = state.reads.token_check(creds.credentials)
        if info is None:
            raise ProblemError(
                401,
                "the token is unknown, malformed or revoked; "
                "create one with `aesop token create NAME`",
                headers=_CHALLENGE,
            )
        if state.limiter is not None:
            wait = state.limiter.take(info.id)
            if wait > 0:
                raise ProblemError(
                    429,
                    f"token {info.name!r} is over its rate limit of "
                    f"{state.limiter.rate:g} requests/s; retry after the Retry-After seconds",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        if not info.allows(scope):
            raise ProblemError(
                403,
                f"token {info.name!r} has scope {info.scope!r}; this needs {scope!r}: "
                f"create a token with `aesop token create NAME --scope {scope}`",
            )
        return info

    return principal


Reader = Annotated[TokenInfo, Depends(require("read"))]
Runner = Annotated[TokenInfo, Depends(require("run"))]
Admin = Annotated[TokenInfo, Depends(require("admin"))]
