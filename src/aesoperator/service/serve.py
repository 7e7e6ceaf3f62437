"""``aesop serve``: the app of a client on uvicorn, loopback unless told otherwise."""

from __future__ import annotations

import ipaddress

import uvicorn
from fastapi import FastAPI

from ..client import Aesoperator
from ..errors import UserError
from ._settings import ServiceSettings
from .app import create_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(host):
        raise UserError(
            f"--host: got {host!r}, which other machines can reach; the API runs tasks and "
            "reads memory for whoever holds a token, so it listens on loopback by default. "
            "Put it behind TLS (a reverse proxy) and pass --allow-remote to listen there"
        )


def build_app(client: Aesoperator, settings: ServiceSettings | None = None) -> FastAPI:
    """The served app: the core API plus the routers other parts add (schedules, /mcp, UI)."""
    from . import _mcp
    from ._schedules import install as install_schedules
    from .dashboard import install as install_dashboard

    settings = settings or ServiceSettings()
    app = install_dashboard(create_app(client, settings=settings))
    install_schedules(app, client, settings)
    # last: mount wraps the app's lifespan to run MCP's session manager
    _mcp.mount(app, client)
    return app


def serve(
    client: Aesoperator,
    *,
    host: str = "127.0.0.1",
    port: int = 8750,
    settings: ServiceSettings | None = None,
    allow_remote: bool = False,
) -> None:
    check_host(host, allow_remote)
    app = build_app(client, settings)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run()
