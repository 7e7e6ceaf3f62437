"""The ``aesop`` command line: run tasks, follow them, read memory.

Every command takes ``--data-dir`` (default ``$AESOP_DATA_DIR`` or ``~/.aesoperator``).
Failures print one readable line on stderr and exit non-zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from . import __version__
from ._bounds import MAX_BYTES, MAX_DEPTH
from .client import Aesoperator
from .errors import AesoperatorError, TaskCancelled, UserError
from .execution import TaskResult, TaskStatus
from .task import Task, TaskConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Aesoperator: run tasks on the web with hard limits.",
    pretty_exceptions_enable=False,
)
memory_app = typer.Typer(no_args_is_help=True, help="Read and write permanent memory.")
app.add_typer(memory_app, name="memory")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: $AESOP_DATA_DIR).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _say(line: str) -> None:
    """One line on stderr, whatever it holds (a lone surrogate from a non-UTF-8 argument...)."""
    line = " ".join(line.split())
    typer.echo(line.encode("utf-8", "backslashreplace").decode("utf-8"), err=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    _say(f"aesop: error: {message}")
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aesop {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Aesoperator: run tasks on the web with hard limits."""


def _client(
    data_dir: Path | None,
    imports: list[str] | None = None,
    *,
    local: bool = False,
    store: str | None = None,
    backend: str | None = None,
) -> Aesoperator:
    # ``local``: the commands that *are* the server (serve, mcp, worker) stay on this store
    # even when $AESOP_URL would make a plain client remote (it would call itself); a worker
    # runs executions here, whatever $AESOP_BACKEND says.
    if store is not None:
        client = Aesoperator(store=store, url="", backend=backend)
    else:
        client = Aesoperator(data_dir=data_dir, url="" if local else None)
    if imports:
        # Modules register handlers with ``aesoperator.handler``: make this client the default.
        import importlib

        import aesoperator

        aesoperator._install_default(client)
        sys.path.insert(0, str(Path.cwd()))
        for module in imports:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                client.close()
                _fail(f"--import {module!r}: {exc}", 2)
            except (Exception, SystemExit) as exc:  # the module's own code failed
                client.close()
                _fail(f"--import {module!r}: importing it raised {type(exc).__name__}: {exc}", 2)
    return client


def _parse_value(raw: str, where: str) -> Any:
    """``raw`` as JSON, or as plain text when it is not JSON."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
    except RecursionError:
        _fail(f"{where}: nested too deep; the limit is {MAX_DEPTH} levels", 2)
    except ValueError:  # an integer of more than 4300 digits: Python refuses to read it
        _fail(f"{where}: a number too long to read; quote it to pass it as text", 2)


_LIST_FIELDS = {
    name
    for name, field in TaskConfig.model_fields.items()
    if typing.get_origin(field.annotation) is list
}


def _pairs(items: list[str] | None, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"{flag} {item!r}: write it as KEY=VALUE (VALUE may be JSON)", 2)
        parsed = _parse_value(value, f"{flag} {key}")
        if flag == "--config" and key in _LIST_FIELDS and isinstance(parsed, str):
            # -c allowed_domains=a.org,b.org: a list without JSON quoting
            parsed = [part.strip() for part in parsed.split(",") if part.strip()]
        out[key] = parsed
    return out


# A task file is at most the task's inputs (bounded to MAX_BYTES as JSON) plus the rest.
MAX_TASK_FILE = MAX_BYTES + 2**20


class _TaskLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader minus implicit dates: a task file holds JSON values, and
    ``start_date: 2023-01-01`` means the text."""


_TaskLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check_events(text: str, where: str) -> None:
    """Refuse aliases and deep nesting before anything is built.

    Nested aliases make a 500-byte file expand to gigabytes (a "billion laughs"), and each
    level of nesting is a level of recursion when the document is built.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_TaskLoader):
        at = f"{where}, line {event.start_mark.line + 1}" if event.start_mark else where
        if isinstance(event, yaml.AliasEvent):
            _fail(
                f"{at}: YAML aliases (*{event.anchor}) are "
                "not allowed in task files; write the value out",
                2,
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH + 1:  # the task's mapping is the first level
                _fail(
                    f"{at}: nested more than {MAX_DEPTH} "
                    "levels deep; the limit keeps a file from exhausting the parser",
                    2,
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _read_task_file(task_file: Path) -> Any:
    where = f"task file {str(task_file)!r}"
    try:
        with task_file.open("rb") as f:
            data = f.read(MAX_TASK_FILE + 1)
    except OSError as exc:
        _fail(f"{where}: {exc.strerror or exc}", 2)
    if len(data) > MAX_TASK_FILE:
        _fail(f"{where}: larger than {MAX_TASK_FILE // 2**20} MiB; pass large data as files", 2)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _fail(
            f"{where} is not UTF-8 text (byte {data[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start}); save it as UTF-8",
            2,
        )
    try:
        if text.lstrip().startswith("{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                pass  # a YAML flow mapping, or broken JSON: the YAML parser says where
        _check_events(text, where)
        return yaml.load(text, Loader=_TaskLoader)  # a safe loader
    except yaml.YAMLError as exc:
        _fail(f"{where} is not valid YAML/JSON: {exc}", 2)
    except RecursionError:
        _fail(f"{where}: nested too deep; the limit is {MAX_DEPTH} levels", 2)
    except ValueError:  # an integer of more than 4300 digits: Python refuses to read it
        _fail(f"{where}: a number too long to read; quote it to pass it as text", 2)


def _load_task(
    task_file: Path | None,
    name: str | None,
    inputs: list[str] | None,
    config: list[str] | None,
    skill: str | None,
) -> Task:
    spec: dict[str, Any] = {}
    if task_file is not None:
        loaded = _read_task_file(task_file)
        where = f"task file {str(task_file)!r}"
        if not isinstance(loaded, dict):
            _fail(f"{where} must hold a mapping with at least 'name', not {_kind(loaded)}", 2)
        for key in ("inputs", "config"):
            if key in loaded and not isinstance(loaded[key], dict):
                _fail(
                    f"{where}: '{key}' must be a mapping of names to values, not "
                    f"{_kind(loaded[key])}; write e.g. '{key}: {{{_EXAMPLE[key]}}}' or leave "
                    "it out",
                    2,
                )
        spec = loaded
    if name:
        spec["name"] = name
    if "name" not in spec:
        _fail("no task: give a task file (YAML or JSON) or --name NAME", 2)
    spec.setdefault("inputs", {}).update(_pairs(inputs, "--input"))
    if config:
        spec.setdefault("config", {}).update(_pairs(config, "--config"))
    if skill:
        spec["skill"] = skill
    return Task.model_validate(spec)


_EXAMPLE = {"inputs": "topic: ai", "config": "max_pages: 10"}


def _kind(value: Any) -> str:
    if value is None:
        return "empty (null)"
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", bytes: "binary"}
    return names.get(type(value), f"a {type(value).__name__}")


def _print_result(result: TaskResult, as_json: bool) -> None:
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    body = result.content or result.summary
    if not body and result.data is not None:
        body = json.dumps(result.data, indent=2, ensure_ascii=False, default=str)
    typer.echo(body)
    typer.echo(
        f"\n[{result.execution_id}] {result.task_name} via {result.planner}: completed in "
        f"{result.duration_seconds:.2f}s, {result.pages_visited} pages, "
        f"{len(result.actions)} actions",
        err=True,
    )
    for art in result.files:
        typer.echo(f"file: {art.name}: {art.path}", err=True)


def _watch(client: Aesoperator, execution_id: str) -> TaskStatus:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.fields[state]:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=False,
    ) as bar:
        row = bar.add_task("", total=100, state="pending")
        while True:
            status = client.get_task_status(execution_id)
            bar.update(
                row,
                completed=status.progress,
                description=(status.current_action or "")[:80],
                state=status.state.value,
            )
            if status.state.finished:
                return status
            time.sleep(0.1)


@app.command()
def run(
    task_file: Annotated[Path | None, typer.Argument(help="Task file, YAML or JSON.")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Task name.")] = None,
    input_: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="Input KEY=VALUE (JSON value).")
    ] = None,
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="TaskConfig KEY=VALUE.")
    ] = None,
    skill: Annotated[str | None, typer.Option("--skill", help="Force a built-in skill.")] = None,
    imports: Annotated[
        list[str] | None,
        typer.Option("--import", help="Import a module that registers handlers (repeatable)."),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Show live progress.")] = False,
    run_async: Annotated[
        bool, typer.Option("--async", help="Start in the background; print the id.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Save the report here (format from the extension)."),
    ] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Run a task from a file or flags."""
    task = _load_task(task_file, name, input_, config, skill)
    if run_async:
        if out is not None:
            _fail("--out needs the result: run without --async to save the report", 2)
        execution_id = _start_detached(task, data_dir, imports or [])
        typer.echo(json.dumps({"id": execution_id}) if as_json else execution_id)
        return
    client = _client(data_dir, imports)
    try:
        execution = client.execute_task_async(task)
        if watch:
            _watch(client, execution.id)
        result = execution.result()
        _print_result(result, as_json)
        if out is not None:
            typer.echo(f"report: {result.save_report(out)}", err=True)
    finally:
        client.close()


def _start_detached(task: Task, data_dir: Path | None, imports: list[str]) -> str:
    """Run the task in a detached process that outlives this command; return its id."""
    cmd = [sys.executable, "-m", "aesoperator.cli", "_detached"]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    for module in imports:
        cmd += ["--import", module]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(task.model_dump_json())
    proc.stdin.close()
    line = proc.stdout.readline().strip()
    if not line:
        err = proc.stderr.read().strip().splitlines()
        _fail(err[-1] if err else "the background runner did not start")
    return line


@app.command("_detached", hidden=True)
def detached(
    data_dir: DataDir = None,
    imports: Annotated[list[str] | None, typer.Option("--import")] = None,
) -> None:
    task = Task.model_validate_json(sys.stdin.read())
    client = _client(data_dir, imports)
    execution = client.execute_task_async(task)
    print(execution.id, flush=True)
    sys.stdout.close()
    try:
        execution.wait()
    finally:
        client.close()


@app.command("mcp")
def mcp_(
    imports: Annotated[
        list[str] | None,
        typer.Option("--import", help="Import a module that registers handlers (repeatable)."),
    ] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Serve MCP over stdio: run tasks as an agent's tools (Claude Desktop, IDEs).

    --json changes nothing here: stdout carries the protocol's JSON-RPC."""
    try:
        from .service import _mcp
    except ImportError as exc:
        _fail(f"aesop mcp needs the service extra ({exc}); pip install 'aesoperator[service]'", 2)
    import contextlib

    import anyio

    # stdout is the protocol's: what an imported module prints goes to stderr instead.
    with contextlib.redirect_stdout(sys.stderr):
        client = _client(data_dir, imports, local=True)
    try:
        anyio.run(_mcp.serve_stdio, client)
    finally:
        client.close()


def _show_status(status: TaskStatus, as_json: bool) -> None:
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
        return
    typer.echo(f"id:        {status.id}")
    typer.echo(f"name:      {status.name}")
    typer.echo(f"state:     {status.state.value}")
    typer.echo(f"progress:  {status.progress:.1f}%")
    if status.current_action:
        typer.echo(f"action:    {status.current_action}")
    typer.echo(f"created:   {status.created_at.isoformat(timespec='seconds')}")
    if status.finished_at:
        typer.echo(f"finished:  {status.finished_at.isoformat(timespec='seconds')}")
    if status.error:
        typer.echo(f"error:     {status.error.type}: {status.error.message}")
    if status.alerts:
        typer.echo(f"alerts:    {len(status.alerts)}")
    if status.result is not None:
        head = status.result.summary or status.result.content
        typer.echo(f"result:    {head[:200]!r}")


@app.command()
def status(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Show an execution's state, progress, current action and error."""
    client = _client(data_dir)
    _show_status(client.get_task_status(execution_id), as_json)
    client.close()


@app.command("list")
def list_(
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    name: Annotated[str | None, typer.Option(help="Only this task name.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 20,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """List executions, newest first."""
    client = _client(data_dir)
    rows = client.list_tasks(state=state, name=name, limit=limit)
    client.close()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for r in rows:
        typer.echo(
            f"{r.id}  {r.state.value:<9}  {r.progress:5.1f}%  "
            f"{r.created_at.isoformat(timespec='seconds')}  {r.name}"
        )


@app.command()
def cancel(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Cancel an execution (also one started by another process)."""
    client = _client(data_dir)
    try:
        if not client.cancel_task(execution_id):
            state = client.get_task_status(execution_id).state.value
            _fail(f"execution {execution_id} already finished ({state})")
        deadline = time.monotonic() + 5
        state = "cancel requested"
        while time.monotonic() < deadline:
            st = client.get_task_status(execution_id)
            if st.state.finished:
                state = st.state.value
                break
            time.sleep(0.05)
        typer.echo(
            json.dumps({"id": execution_id, "state": state})
            if as_json
            else f"{execution_id} {state}"
        )
    finally:
        client.close()


@app.command()
def events(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Print an execution's timeline."""
    client = _client(data_dir)
    rows = client.get_events(execution_id)
    client.close()
    for e in rows:
        if as_json:
            typer.echo(e.model_dump_json())
        else:
            data = json.dumps(e.data, ensure_ascii=False, default=str)
            typer.echo(f"{e.at.isoformat(timespec='milliseconds')}  {e.kind:<12} {data}")


def _memory(data_dir: Path | None, task: str | None) -> Any:
    client = _client(data_dir)
    return client, (client._memory(f"task:{task}") if task else client.memory)


TaskOpt = Annotated[
    str | None, typer.Option("--task", help="A permanent task's memory instead of the global.")
]


@memory_app.command("get")
def memory_get(
    key: str, task: TaskOpt = None, data_dir: DataDir = None, as_json: AsJson = False
) -> None:
    """Print a value as JSON (exit 1 when missing); --json changes nothing here."""
    client, mem = _memory(data_dir, task)
    value = mem.get(key, None)
    missing = key not in mem
    client.close()
    if missing:
        _fail(f"no memory key {key!r}")
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


@memory_app.command("set")
def memory_set(
    key: str,
    value: Annotated[str, typer.Argument(help="JSON value (plain text is stored as a string).")],
    task: TaskOpt = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Store a value."""
    parsed = _parse_value(value, f"memory set {key}")
    client, mem = _memory(data_dir, task)
    try:
        mem.set(key, parsed)
    finally:
        client.close()
    if as_json:
        typer.echo(json.dumps({"key": key, "value": parsed}, ensure_ascii=False))


@memory_app.command("list")
def memory_list(task: TaskOpt = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List the keys."""
    client, mem = _memory(data_dir, task)
    keys = mem.keys()
    client.close()
    if as_json:
        typer.echo(json.dumps(keys, ensure_ascii=False))
        return
    for key in keys:
        typer.echo(key)


@memory_app.command("delete")
def memory_delete(
    key: str, task: TaskOpt = None, data_dir: DataDir = None, as_json: AsJson = False
) -> None:
    """Delete a key."""
    client, mem = _memory(data_dir, task)
    found = mem.delete(key)
    client.close()
    if not found:
        _fail(f"no memory key {key!r}")
    if as_json:
        typer.echo(json.dumps({"key": key, "deleted": True}, ensure_ascii=False))


schedule_app = typer.Typer(
    no_args_is_help=True, help="Run tasks on a cron schedule (UTC) in a served instance."
)
app.add_typer(schedule_app, name="schedule")


ScheduleStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="The schedules of a shared store instead of --data-dir's: postgresql://... "
        "($AESOP_STORE), as `aesop serve --store` serves them.",
    ),
]


def _schedules(data_dir: Path | None, store: str | None) -> Any:
    """The schedules of the store `aesop serve` with the same --data-dir/--store would run."""
    from .schedules import open_schedules
    from .store import default_data_dir

    if data_dir and store:
        raise UserError("--store and --data-dir: give one of them")
    store = store or (None if data_dir else os.environ.get("AESOP_STORE")) or None
    return open_schedules(store or data_dir or default_data_dir())


def _show_schedule(schedule: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(schedule.to_json(), ensure_ascii=False))
        return
    last = schedule.last_run_at.isoformat(timespec="seconds") if schedule.last_run_at else "-"
    flags = " overlap" if schedule.allow_overlap else ""
    typer.echo(
        f"{schedule.id}  {schedule.cron!r:<16}  next {schedule.next_run_at.isoformat()}  "
        f"last {last}  missed {schedule.missed}  skipped {schedule.skipped}{flags}  "
        f"{json.loads(schedule.task_json)['name']}"
        + (f"  error: {schedule.last_error}" if schedule.last_error else "")
    )


@schedule_app.command("add")
def schedule_add(
    cron: Annotated[str, typer.Argument(help="Five fields, UTC: '*/5 * * * *', or @daily...")],
    task_file: Annotated[Path, typer.Argument(help="Task file (YAML or JSON).")],
    allow_overlap: Annotated[
        bool, typer.Option("--allow-overlap", help="Start a run even if the last one runs.")
    ] = False,
    data_dir: DataDir = None,
    store_url: ScheduleStoreOpt = None,
    as_json: AsJson = False,
) -> None:
    """Run a task file on a cron schedule; `aesop serve` on the same data dir (or store) runs
    it."""
    from .schedules import parse_cron

    parse_cron(cron)  # the cron's error first: it is the argument given first
    task = _load_task(task_file, None, None, None, None)
    store = _schedules(data_dir, store_url)
    try:
        _show_schedule(store.add(cron, task, allow_overlap=allow_overlap), as_json)
    finally:
        store.close()


@schedule_app.command("list")
def schedule_list(
    data_dir: DataDir = None, store_url: ScheduleStoreOpt = None, as_json: AsJson = False
) -> None:
    """List schedules: next and last run, missed and skipped runs."""
    store = _schedules(data_dir, store_url)
    rows = store.all()
    store.close()
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in rows], ensure_ascii=False, indent=2))
        return
    for row in rows:
        _show_schedule(row, False)


@schedule_app.command("remove")
def schedule_remove(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id (see 'aesop schedule list').")],
    data_dir: DataDir = None,
    store_url: ScheduleStoreOpt = None,
    as_json: AsJson = False,
) -> None:
    """Delete a schedule (runs already started go on)."""
    store = _schedules(data_dir, store_url)
    found = store.remove(schedule_id)
    store.close()
    if not found:
        _fail(f"no schedule with id {schedule_id!r}; see 'aesop schedule list'")
    if as_json:
        typer.echo(json.dumps({"id": schedule_id, "removed": True}))
    else:
        typer.echo(f"{schedule_id} removed")


from ._service_cli import register as _register_service  # noqa: E402 (needs app and _client)

_register_service(app)


def main() -> None:
    """Run the CLI: a failure is one ``aesop: ...`` line on stderr and exit 1, or 2 for the
    caller's mistake (usage, validation, an unusable data directory)."""
    try:
        app()
    except TaskCancelled as exc:
        _say(f"aesop: cancelled: {exc}")
        sys.exit(1)
    except (AesoperatorError, TypeError) as exc:
        kind = "error" if isinstance(exc, UserError) else type(exc).__name__
        _say(f"aesop: {kind}: {exc}")
        sys.exit(2 if isinstance(exc, UserError) else 1)
    except KeyboardInterrupt:
        _say("aesop: interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("AESOP_DEBUG"):
            raise
        _say(f"aesop: {type(exc).__name__}: {exc} (AESOP_DEBUG=1 shows the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
