"""API tokens of the service: made here, stored only as a salted hash.

A token is ``aesop_`` + 43 URL-safe characters (256 random bits). Its first 8 random
characters are its *lookup key*, stored in the clear so a request costs one indexed read;
what proves it is ``HMAC-SHA256(salt, token)`` with a random salt of its own, compared in
constant time. The token itself is shown once, when it is made, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from ..errors import ValidationError

Scope = Literal["read", "run", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "run", "admin")
PREFIX = "aesop_"
LOOKUP_CHARS = 8
_TOKEN = re.compile(r"^aesop_[A-Za-z0-9_-]{43}$")
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DEFAULT_PROJECT = "default"


class TokenInfo(BaseModel):
    """A token as stored and listed (never the token itself)."""

    id: str
    name: str
    scope: Scope
    project: str
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, needed: Scope) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(needed)


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)  # 32 bytes: 43 characters


def well_formed(token: str) -> bool:
    return bool(_TOKEN.match(token))


def lookup_key(token: str) -> str:
    return token[len(PREFIX) : len(PREFIX) + LOOKUP_CHARS]


def digest(salt: bytes, token: str) -> bytes:
    return hmac.new(salt, token.encode(), hashlib.sha256).digest()


def matches(salt: bytes, stored: bytes, token: str) -> bool:
    return hmac.compare_digest(digest(salt, token), stored)


def check_scope(scope: str) -> Scope:
    for known in SCOPES:
        if scope == known:
            return known
    raise ValidationError(f"token scope: got {scope!r}; use one of {list(SCOPES)}")


def check_project(project: str) -> str:
    if not isinstance(project, str) or not _PROJECT.match(project):
        raise ValidationError(
            f"project: got {project!r}; use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return project


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"token name: got {name!r}; use 1-63 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def project_namespace(project: str, namespace: str) -> str:
    """The store namespace of a project's ``namespace``: ``default`` keeps today's names."""
    return namespace if project == DEFAULT_PROJECT else f"project:{project}/{namespace}"
