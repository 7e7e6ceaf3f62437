"""The service: Aesoperator over HTTP (``aesop serve``). Needs the ``[service]`` extra."""

from __future__ import annotations

from ._settings import ServiceSettings
from .app import create_app

__all__ = ["ServiceSettings", "create_app"]
