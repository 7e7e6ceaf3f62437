"""Signed webhook deliveries: a JSON POST, retried with backoff, each attempt recorded.

One scheme for every webhook Aesoperator sends (the monitor's alerts, and every execution's
end through ``Task.webhook_url``). Headers:

- ``X-Aesoperator-Timestamp: <unix seconds>`` (the time of this attempt);
- ``X-Aesoperator-Signature: sha256=<hex>``, the HMAC-SHA256 under the webhook's secret of
  ``<timestamp>.<raw body>``. Verify it (and refuse an old timestamp, against replays) with::

    expected = "sha256=" + hmac.new(secret, f"{ts}.".encode() + body, "sha256").hexdigest()
    hmac.compare_digest(header, expected) and abs(time.time() - int(ts)) < 300

- ``X-Aesoperator-Delivery``: the same on every retry of one delivery (de-duplicate on it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ...results import Alert
from ._inputs import Webhook
from ._probe import PolicyLike, Target, probe

SIGNATURE_HEADER = "X-Aesoperator-Signature"
TIMESTAMP_HEADER = "X-Aesoperator-Timestamp"
DELIVERY_HEADER = "X-Aesoperator-Delivery"
_TIMEOUT_S = 10.0
_MAX_DELAY_S = 60.0


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the signature header for ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode("ascii") + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, body: bytes, timestamp: str, signature: str, *, tolerance_s: float = 300
) -> bool:
    """True if ``signature`` signs ``body`` at ``timestamp``, within ``tolerance_s`` of now."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    return hmac.compare_digest(signature, sign(secret, body, ts))


async def deliver(
    url: str,
    secret: str,
    payload: Mapping[str, Any],
    *,
    policy: PolicyLike,
    contexts: tuple[ssl.SSLContext, ssl.SSLContext] | None,
    retries: int,
    first_delay: float,
    record: Callable[..., None],
    timeout: float = _TIMEOUT_S,
    details: Mapping[str, Any] | None = None,
) -> bool:
    """POST ``payload`` (plus ``delivery_id``) to ``url``, signed; True once a 2xx answers.

    Retried on network errors, 429 and 5xx, up to ``retries`` times with exponential backoff
    from ``first_delay``; a policy refusal or another status ends it at once. Each attempt
    is passed to ``record(**info)`` (``details`` merged in). Never raises for the network.
    """
    delivery = uuid.uuid4().hex
    body = json.dumps(
        {**payload, "delivery_id": delivery}, separators=(",", ":"), default=str
    ).encode("utf-8")
    attempt = 0
    while True:
        attempt += 1
        now = int(time.time())
        headers = (
            ("Content-Type", "application/json"),
            (TIMESTAMP_HEADER, str(now)),
            (SIGNATURE_HEADER, sign(secret, body, now)),
            (DELIVERY_HEADER, delivery),
        )
        target = Target.build(url, method="POST", headers=headers, body=body)
        check = await probe(target, policy, timeout=timeout, contexts=contexts)
        status = check.status
        ok = check.ok and status is not None and 200 <= status < 300
        retryable = (
            not ok
            and not check.policy_refused
            and (not check.ok or status == 429 or (status is not None and status >= 500))
        )
        final = ok or not retryable or attempt > retries
        record(
            webhook=url,
            delivery_id=delivery,
            **(details or {}),
            attempt=attempt,
            ok=ok,
            status=status,
            error=check.reason,
            final=final,
        )
        if final:
            return ok
        delay = min(_MAX_DELAY_S, first_delay * 2 ** (attempt - 1))
        await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))


class Deliveries:
    """Sends alerts to every webhook in the background; ``stats`` counts the outcomes."""

    def __init__(
        self,
        hooks: tuple[Webhook, ...],
        policy: PolicyLike,
        contexts: tuple[ssl.SSLContext, ssl.SSLContext],
        *,
        execution_id: str,
        task_name: str,
        retries: int,
        first_delay: float,
        record: Callable[..., None],
    ) -> None:
        self._hooks = hooks
        self._policy = policy
        self._contexts = contexts
        self._execution_id = execution_id
        self._task_name = task_name
        self._retries = retries
        self._first_delay = first_delay
        self._record = record
        self._pending: set[asyncio.Task[None]] = set()
        self.stats = {"delivered": 0, "failed": 0, "attempts": 0, "abandoned": 0}

    def send(self, alert: Alert) -> None:
        for hook in self._hooks:
            task = asyncio.get_running_loop().create_task(self._deliver(hook, alert))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _count(self, **info: Any) -> None:
        self.stats["attempts"] += 1
        self._record(**info)

    async def _deliver(self, hook: Webhook, alert: Alert) -> None:
        payload = {
            "type": "alert",
            "execution_id": self._execution_id,
            "task_name": self._task_name,
            "alert": alert.model_dump(mode="json"),
        }
        ok = await deliver(
            hook.url,
            hook.secret,
            payload,
            policy=self._policy,
            contexts=self._contexts,
            retries=self._retries,
            first_delay=self._first_delay,
            record=self._count,
            details={"alert_kind": alert.kind, "incident_id": alert.incident_id},
        )
        self.stats["delivered" if ok else "failed"] += 1

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for deliveries under way; abandon (and count) the rest."""
        if not self._pending:
            return
        pending = set(self._pending)
        _, left = await asyncio.wait(pending, timeout=max(0.0, timeout))
        for task in left:
            task.cancel()
            self.stats["abandoned"] += 1
        if left:
            await asyncio.gather(*left, return_exceptions=True)
