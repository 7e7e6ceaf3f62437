"""``aesop serve`` and ``aesop token create|list|revoke`` (the service's commands).

Apart from ``cli.py`` so the service's optional dependencies load only for ``serve``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .store import Store, default_data_dir, open_store

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: $AESOP_DATA_DIR).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]

token_app = typer.Typer(no_args_is_help=True, help="API tokens of `aesop serve`.")


def _store(data_dir: Path | None) -> Store:
    return open_store(data_dir or default_data_dir())


@token_app.command("create")
def token_create(
    name: str,
    scope: Annotated[
        str, typer.Option("--scope", help="read (GET), run (read + submit), admin (run + more).")
    ] = "run",
    project: Annotated[
        str, typer.Option("--project", help="The project its tasks and memory belong to.")
    ] = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Make a token and print it, once: only a salted hash of it is kept."""
    store = _store(data_dir)
    try:
        info, token = store.token_create(name, scope=scope, project=project)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps({**info.model_dump(mode="json"), "token": token}))
        return
    typer.echo(token)
    typer.echo(
        f"token {info.name!r} ({info.id}, scope {info.scope}, project {info.project}): "
        "shown this once; keep it now",
        err=True,
    )


@token_app.command("list")
def token_list(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """The tokens (never the tokens themselves): id, name, scope, project, state."""
    store = _store(data_dir)
    try:
        infos = store.token_list()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in infos]))
        return
    for info in infos:
        state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "live"
        typer.echo(f"{info.id}  {info.name}  {info.scope}  {info.project}  {state}")


@token_app.command("revoke")
def token_revoke(name_or_id: str, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Revoke a token by name or id: requests with it get 401 from now on."""
    store = _store(data_dir)
    try:
        info = store.token_revoke(name_or_id)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(info.model_dump(mode="json")))
    else:
        typer.echo(f"revoked {info.name} ({info.id})")


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8750,
    data_dir: DataDir = None,
    imports: Annotated[
        list[str] | None,
        typer.Option("--import", help="A module that registers handlers (repeatable)."),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Listen on a non-loopback address.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Serve the HTTP API (v1) on this data directory, with the --import'ed handlers."""
    from .cli import _client

    try:
        from .service.serve import check_host, serve
    except ImportError as exc:
        raise typer.BadParameter(
            f"the service needs its extra: pip install 'aesoperator[service]' ({exc})"
        ) from None
    check_host(host, allow_remote)
    client = _client(data_dir, imports)
    url = f"http://{host}:{port}"
    if as_json:  # the one line a supervisor script reads: where it is served, and from what
        typer.echo(json.dumps({"url": url, "data_dir": str(client.data_dir)}))
    else:
        typer.echo(f"aesop: serving {client.data_dir} on {url}", err=True)
    try:
        serve(client, host=host, port=port, allow_remote=allow_remote)
    finally:
        client.close()


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
    app.command("serve")(serve_command)
