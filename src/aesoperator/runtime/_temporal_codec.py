"""Sealed Temporal payloads: what a client and its workers exchange through Temporal (a
workflow's input, activity inputs and results) is written into Temporal's history. With
``$AESOP_TEMPORAL_KEY`` set on every client and worker, each payload is sealed with AES-GCM
under a key derived from it, so Temporal stores only ciphertext; that is what lets a task's
``secrets`` travel to the worker that runs it.

A payload that is not sealed passes through (a keyless client's); a sealed one that cannot
be opened (no key here, or another key) fails with an error that says which.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from ..errors import UserError

KEY_ENV = "AESOP_TEMPORAL_KEY"
_SEALED = b"binary/aesop-sealed"
_NONCE = 12
_MIN_KEY = 16


def key_from_env() -> bytes | None:
    """The payload key ``$AESOP_TEMPORAL_KEY`` gives (None when unset)."""
    secret = os.environ.get(KEY_ENV)
    if not secret:
        return None
    if len(secret) < _MIN_KEY:
        raise UserError(
            f"{KEY_ENV}: {len(secret)} characters; give at least {_MIN_KEY} (a random string, "
            "the same on every client and worker), e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return hashlib.sha256(b"aesoperator temporal payloads v1\0" + secret.encode()).digest()


class SealingCodec(PayloadCodec):
    """Seals every payload it encodes when it has a key; opens the sealed ones it decodes."""

    def __init__(self, key: bytes | None) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key) if key is not None else None
        # Names the key without revealing it: a worker with another key says so.
        self._key_id = hashlib.sha256(b"key id\0" + key).hexdigest()[:12].encode() if key else b""

    @property
    def sealing(self) -> bool:
        return self._aead is not None

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._aead is None:
            return list(payloads)
        out = []
        for payload in payloads:
            nonce = os.urandom(_NONCE)
            sealed = self._aead.encrypt(nonce, payload.SerializeToString(), self._key_id)
            out.append(
                Payload(metadata={"encoding": _SEALED, "key-id": self._key_id}, data=nonce + sealed)
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != _SEALED:
                out.append(payload)
                continue
            key_id = payload.metadata.get("key-id", b"")
            if self._aead is None or key_id != self._key_id:
                here = f"key {self._key_id.decode()}" if self._aead else f"no ${KEY_ENV}"
                raise ValueError(
                    f"a payload sealed with key {key_id.decode()} cannot be opened here ({here}):"
                    f" set the same ${KEY_ENV} on every client and worker"
                )
            data = self._aead.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], key_id)
            opened = Payload()
            opened.ParseFromString(data)
            out.append(opened)
        return out
