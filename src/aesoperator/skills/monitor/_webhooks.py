"""Alert delivery to webhooks: a signed JSON POST, retried with backoff, each attempt recorded.

Signature: ``X-Aesoperator-Signature: sha256=<hex>`` where ``<hex>`` is the HMAC-SHA256 of the
raw request body under the webhook's secret. Verify it with::

    hmac.compare_digest(header, "sha256=" + hmac.new(secret, body, "sha256").hexdigest())

``X-Aesoperator-Delivery`` is the same on every retry of one delivery (de-duplicate on it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import ssl
import uuid
from collections.abc import Callable
from typing import Any

from ...results import Alert
from ._inputs import Webhook
from ._probe import PolicyLike, Target, probe

SIGNATURE_HEADER = "X-Aesoperator-Signature"
DELIVERY_HEADER = "X-Aesoperator-Delivery"
_TIMEOUT_S = 10.0
_MAX_DELAY_S = 60.0


def sign(secret: str, body: bytes) -> str:
    """The value of the signature header for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


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

    async def _deliver(self, hook: Webhook, alert: Alert) -> None:
        delivery = uuid.uuid4().hex
        body = json.dumps(
            {
                "type": "alert",
                "delivery_id": delivery,
                "execution_id": self._execution_id,
                "task_name": self._task_name,
                "alert": alert.model_dump(mode="json"),
            },
            separators=(",", ":"),
        ).encode("utf-8")
        headers = (
            ("Content-Type", "application/json"),
            (SIGNATURE_HEADER, sign(hook.secret, body)),
            (DELIVERY_HEADER, delivery),
        )
        target = Target.build(hook.url, method="POST", headers=headers, body=body)
        attempt = 0
        while True:
            attempt += 1
            self.stats["attempts"] += 1
            check = await probe(target, self._policy, timeout=_TIMEOUT_S, contexts=self._contexts)
            status = check.status
            ok = check.ok and status is not None and 200 <= status < 300
            retryable = (
                not ok
                and not check.policy_refused
                and (not check.ok or status == 429 or (status is not None and status >= 500))
            )
            final = ok or not retryable or attempt > self._retries
            info: dict[str, Any] = {
                "webhook": hook.url,
                "delivery_id": delivery,
                "alert_kind": alert.kind,
                "incident_id": alert.incident_id,
                "attempt": attempt,
                "ok": ok,
                "status": status,
                "error": check.reason,
                "final": final,
            }
            self._record(**info)
            if final:
                self.stats["delivered" if ok else "failed"] += 1
                return
            delay = min(_MAX_DELAY_S, self._first_delay * 2 ** (attempt - 1))
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))

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
