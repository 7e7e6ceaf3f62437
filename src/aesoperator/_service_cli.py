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
    rate_limit: Annotated[
        float,
        typer.Option(
            "--rate-limit",
            min=0,
            help="Requests per second per token (burst: twice as many); 0 turns it off.",
        ),
    ] = 100.0,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="A shared store instead of --data-dir: postgresql://... ($AESOP_STORE); "
            "executions then run on the backend $AESOP_BACKEND names (e.g. temporal://...).",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Serve the HTTP API (v1) on this data directory, with the --import'ed handlers."""
    from .cli import _client

    try:
        from .service import ServiceSettings
        from .service.serve import check_host, serve
    except ImportError as exc:
        raise typer.BadParameter(
            f"the service needs its extra: pip install 'aesoperator[service]' ({exc})"
        ) from None
    check_host(host, allow_remote)
    import os

    store = store or (None if data_dir else os.environ.get("AESOP_STORE")) or None
    client = _client(data_dir, imports, local=True, store=store)
    url = f"http://{host}:{port}"
    if as_json:  # the one line a supervisor script reads: where it is served, and from what
        typer.echo(json.dumps({"url": url, "data_dir": str(client.data_dir)}))
    else:
        typer.echo(f"aesop: serving {client._store!r} on {url}", err=True)
    try:
        rate = (rate_limit, max(1, int(rate_limit * 2))) if rate_limit > 0 else None
        settings = ServiceSettings(rate_per_token=rate)
        serve(client, host=host, port=port, allow_remote=allow_remote, settings=settings)
    finally:
        client.close()


def worker_command(
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="temporal://host:7233?namespace=default&task_queue=aesop ($AESOP_BACKEND).",
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", help="postgresql://user:pw@host/db?artifacts=/shared/dir ($AESOP_STORE)."
        ),
    ] = None,
    imports: Annotated[
        list[str] | None,
        typer.Option("--import", help="A module that registers handlers (repeatable)."),
    ] = None,
    pool_size: Annotated[
        int | None,
        typer.Option("--pool-size", min=1, help="Executions run at once ($AESOP_POOL_SIZE, 2)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Run executions of a Temporal task queue on this machine, until SIGTERM or Ctrl-C."""
    import asyncio
    import os

    from .cli import _client, _fail

    backend = backend or os.environ.get("AESOP_BACKEND") or ""
    store = store or os.environ.get("AESOP_STORE") or ""
    if not backend.startswith("temporal://"):
        _fail(f"--backend: got {backend!r}; give temporal://host:7233?task_queue=aesop", 2)
    if not store.lower().startswith(("postgresql://", "postgres://")):
        _fail(
            f"--store: got {store!r}; workers share a PostgreSQL store: give "
            "postgresql://user:pw@host/db?artifacts=/shared/dir",
            2,
        )
    try:
        from .runtime._temporal import parse_target
        from .runtime._temporal_worker import run_worker, worker_identity
    except ImportError as exc:
        _fail(f"the worker needs its extra: pip install 'aesoperator[temporal]' ({exc})", 2)
    target = parse_target(backend)
    client = _client(None, imports, local=True, store=store, backend="process")
    # Tasks' end-of-execution webhooks are signed here: a task's own key never travels.
    client.webhook_url = os.environ.get("AESOP_WEBHOOK_URL") or None
    client.webhook_secret = os.environ.get("AESOP_WEBHOOK_SECRET") or None
    size = pool_size or client.pool_size

    def ready() -> None:
        line = {"worker": worker_identity(), "task_queue": target.task_queue, "pool": size}
        if as_json:
            typer.echo(json.dumps(line))
        else:
            typer.echo(f"aesop: worker {line['worker']} on {target.address} "
                       f"queue {target.task_queue!r}, {size} at once", err=True)  # fmt: skip

    try:
        asyncio.run(
            run_worker(
                target,
                client._store,
                client.store_url,
                pool_size=size,
                handlers=client._handlers_snapshot,
                callbacks=client._callbacks,
                webhooks=client._webhook_hook,
                llm=client.llm,
                ready=ready,
            )
        )
    finally:
        client.close()


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
    app.command("serve")(serve_command)
    app.command("worker")(worker_command)
