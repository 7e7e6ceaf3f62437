"""MkDocs hooks: the reference pages that are generated from the code at build time, offline.

* ``reference/cli.md`` from the typer app (``aesoperator.cli.app``): every command, its
  arguments and options with their help, defaults and environment variables.
* ``reference/rest-api.md`` from the service's OpenAPI schema (``build_app(...).openapi()``):
  every endpoint with its parameters, body and responses. No Swagger UI, no CDN.
* ``<!-- aesop:config-table -->`` in a page becomes the table of every ``TaskConfig`` field
  (type, default, bounds, meaning and what enforces it) from the model's metadata, so the
  table cannot drift from the code.

The hooks run in the mkdocs process; ``mkdocs.yml`` names this file under ``hooks:``.
"""

from __future__ import annotations

import importlib
import json
import re
import tempfile
from http import HTTPStatus
from typing import Any

import typer
import typer.core
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

# ``<!-- aesop:fields aesoperator.TaskConfig -->``: the table of a pydantic model's fields.
FIELDS = re.compile(r"<!-- aesop:fields ([\w.]+) -->")


# -- CLI -----------------------------------------------------------------------------------------


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH", "bool": "BOOLEAN"}


def _kind(param: Any) -> str:
    """The value's type as ``aesop COMMAND --help`` names it: TEXT, INTEGER, PATH..."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    text = getattr(annotation, "__name__", None) or str(annotation or "str")
    text = text.replace("typing.", "").replace("pathlib.", "")
    repeatable = getattr(param, "multiple", False) or text.startswith("list")
    if text.startswith("list[") and text.endswith("]"):
        text = text[5:-1]
    elif text == "list":
        text = "str"
    name = NAMES.get(text, text.upper())
    return f"`{name}`, repeatable" if repeatable else f"`{name}`"


def _param_row(param: Any) -> str:
    if isinstance(param, typer.core.TyperOption):
        names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
        kind = "flag" if param.is_flag else _kind(param)
        help_text = param.help or ""
    else:
        names = f"`{(param.metavar or param.name or '').upper()}`"
        kind = _kind(param) + (" (required)" if param.required else "")
        help_text = getattr(param, "help", None) or ""
    default = param.default
    shown = (
        ""
        if default is None or callable(default) or default == () or default is False
        else f"`{default}`"
    )
    env = getattr(param, "envvar", None)
    extra = f" (env `{env}`)" if isinstance(env, str) else ""
    return f"| {names} | {kind} | {shown} | {_cell(help_text)}{extra} |"


def _upper(match: re.Match[str]) -> str:
    if match.group(1):
        return match.group(1).upper()
    return f"[{match.group(2).upper()}]"


def _command_md(path: str, cmd: Any, level: int, subcommands: bool = True) -> list[str]:
    lines = [f"{'#' * level} `{path}`", ""]
    if cmd.help:
        lines += [cmd.help.strip().split("\f")[0].strip(), ""]
    ctx = typer.Context(cmd, info_name=path)
    # The arguments by the names the tables use (typer's own pieces say ``{execution_id}``).
    usage = " ".join(
        re.sub(r"\{(\w+)\}|\[([a-z_]+)\]", lambda m: _upper(m), piece)
        for piece in cmd.collect_usage_pieces(ctx)
    )
    lines += ["```text", f"{path} {usage}".rstrip(), "```", ""]
    params = [p for p in cmd.params if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        lines += ["| name | kind | default | meaning |", "|---|---|---|---|"]
        lines += [_param_row(p) for p in params]
        lines.append("")
    if subcommands and hasattr(cmd, "list_commands"):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            lines += _command_md(f"{path} {name}", sub, min(level + 1, 4))
    return lines


def cli_markdown() -> str:
    from aesoperator.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the `aesop` command's own definitions when the site is built; "
        "`aesop COMMAND --help` prints the same. Every command takes `--data-dir` (default "
        "`$AESOP_DATA_DIR`, else `~/.aesoperator`); with `$AESOP_URL` set, the client commands "
        "talk to a served instance instead. A failure prints one `aesop: ...` line on stderr "
        "and exits 1, or 2 for a usage or validation mistake.",
        "",
    ]
    ctx = typer.Context(root, info_name="aesop")
    names = [n for n in root.list_commands(ctx) if not root.get_command(ctx, n).hidden]
    # The top-level options only: the commands follow, grouped by what a user does.
    lines += _command_md("aesop", root, 2, subcommands=False)
    placed = {n for _, group in CLI_GROUPS for n in group}
    groups = [*CLI_GROUPS, ("Other commands", [n for n in names if n not in placed])]
    for title, group in groups:
        present = [n for n in group if n in names]
        if present:
            lines += [f"## {title}", ""]
            for name in present:
                lines += _command_md(f"aesop {name}", root.get_command(ctx, name), 3)
    return "\n".join(lines) + "\n"


# The CLI page's sections, in a reader's order; a command in none lands in "Other commands".
CLI_GROUPS = [
    ("Running tasks", ["run", "status", "list", "events", "cancel"]),
    ("Memory", ["memory"]),
    ("Schedules", ["schedule"]),
    ("Serving and workers", ["serve", "token", "worker", "mcp"]),
]


# -- REST API ------------------------------------------------------------------------------------


def _ref_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_ref_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_ref_name(schema.get('items', {}))}"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    return f"`{schema.get('format', schema.get('type', 'any'))}`"


def openapi_schema() -> dict[str, Any]:
    from aesoperator import Aesoperator
    from aesoperator.service import ServiceSettings
    from aesoperator.service.serve import build_app

    with tempfile.TemporaryDirectory(prefix="aesop-docs-") as data:
        client = Aesoperator(data_dir=data, isolation="inline")
        try:
            return build_app(client, ServiceSettings()).openapi()
        finally:
            client.close()


# Error responses all carry a Problem document (the service's handlers turn FastAPI's own
# 422 into one too, so its HTTPValidationError schema is never sent and is left out).
NEVER_SENT = {"HTTPValidationError", "ValidationError"}


def _plain_type(schema: dict[str, Any]) -> str:
    """A parameter's type: ``X or null`` is just X there (leaving it out is the null)."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return _plain_type(options[0])
    if schema.get("format") == "date-time":
        return "`date-time`"
    return _ref_name(schema)


def _limits(schema: dict[str, Any]) -> str:
    marks = []
    if "default" in schema and schema["default"] is not None:
        marks.append(f"default `{json.dumps(schema['default'])}`")
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        marks.append(f"{low}–{high}")
    elif low is not None:
        marks.append(f"≥ {low}")
    elif high is not None:
        marks.append(f"≤ {high}")
    return ", ".join(marks)


# The reason phrases the service's problems use (RFC 9110), where Python's are older.
RFC9110 = {413: "Content Too Large", 422: "Unprocessable Content"}


def _phrase(status: str, description: str | None) -> str:
    """The status's reason phrase, with the schema's description when it says more than
    FastAPI's defaults."""
    try:
        old = HTTPStatus(int(status)).phrase
    except ValueError:
        return description or ""
    phrase = RFC9110.get(int(status), old)
    if not description or description in (phrase, old, "Successful Response", "Validation Error"):
        return phrase
    return f"{phrase}: {description}"


def _operation_md(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### `{method} {path}`", ""]
    # The summary leads, in bold; the description (the route's docstring) follows. Every
    # route sets both (tests/docs/test_rest_docs.py), so FastAPI's own summary, made from
    # the function's name ("Get Task"), never shows.
    summary = (op.get("summary") or "").strip().rstrip(".")
    text = " ".join((op.get("description") or "").split())
    if summary:
        text = f"**{summary}.** {text}".strip()
    if text:
        lines += [text, ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | meaning |", "|---|---|---|---|"]
        for p in params:
            spec = p.get("schema", {})
            notes = [
                _cell(p.get("description") or spec.get("description")),
                "required" if p.get("required") and p.get("in") != "path" else "",
                _limits(spec),
            ]
            lines.append(
                f"| `{p['name']}` | {p.get('in', '')} | {_plain_type(spec)} "
                f"| {'; '.join(n for n in notes if n)} |"
            )
        lines.append("")
    body = op.get("requestBody", {})
    for media, content in body.get("content", {}).items():
        spec = content.get("schema", {})
        about = f": {_cell(spec['description'])}" if spec.get("description") else ""
        optional = "" if body.get("required") else " (optional)"
        lines += [f"**Body** (`{media}`){optional}: {_plain_type(spec)}{about}", ""]
    answers, errors = [], []
    for status, resp in sorted(op.get("responses", {}).items()):
        kinds = {
            media: c.get("schema", {})
            for media, c in resp.get("content", {}).items()
            if media != "application/problem+json"
        }
        if status.startswith(("4", "5")) and all(
            str(k.get("$ref", "")).rsplit("/", 1)[-1] in ("Problem", *NEVER_SENT)
            for k in kinds.values()
        ):
            errors.append(f"{status} {_phrase(status, resp.get('description'))}")
            continue
        shapes = ", ".join(
            f"{_ref_name(k) if k else 'a file'} (`{m}`)"
            if len(kinds) > 1 or not k
            else _ref_name(k)
            for m, k in kinds.items()
        )
        answers.append(
            f"| {status} | {_cell(_phrase(status, resp.get('description')))} | {shapes} |"
        )
    if answers:
        lines += ["| status | meaning | body |", "|---|---|---|", *answers, ""]
    if errors:
        lines += [
            "**Errors** ([`Problem`](#schema-problem)): " + " · ".join(errors) + ".",
            "",
        ]
    return lines


def rest_markdown(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    lines = [
        "# REST API reference",
        "",
        f"{info.get('description', '')} Generated from the service's OpenAPI schema "
        f"(version {info.get('version', '?')}) when the site is built. A running `aesop serve` "
        "serves the same schema at `/openapi.json`.",
        "",
        "Every `/v1` endpoint takes `Authorization: Bearer TOKEN` (`aesop token create`): "
        "without one it answers 401, with a token whose scope is too small 403, and past the "
        "token's rate limit 429. Every error is an `application/problem+json` "
        "[`Problem`](#schema-problem) document with `type`, `title`, `status` and `detail`.",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            # untagged: grouped by the path's resource (/v1/tasks/{id} -> tasks)
            parts = [p for p in path.split("/") if p and p != "v1"]
            tag = (op.get("tags") or [parts[0] if parts else "other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, op))
    for tag, ops in by_tag.items():
        lines += [f"## {tag[:1].upper()}{tag[1:]}", ""]
        for method, path, op in ops:
            lines += _operation_md(method, path, op)
    schemas = schema.get("components", {}).get("schemas", {})
    if schemas:
        lines += [
            "## Schemas",
            "",
            "The JSON documents the endpoints take and answer with, by name.",
            "",
        ]
        for name, body in sorted(schemas.items()):
            if name in NEVER_SENT:
                continue
            lines += [f"### `{name}` {{ #schema-{name.lower()} }}", ""]
            if body.get("description"):
                lines += [_cell(body["description"]), ""]
            props = body.get("properties", {})
            if props:
                required = set(body.get("required", []))
                lines += ["| field | type | meaning |", "|---|---|---|"]
                for field, spec in props.items():
                    mark = " (required)" if field in required else ""
                    about = _cell(spec.get("description"))
                    lines.append(f"| `{field}`{mark} | {_ref_name(spec)} | {about} |")
                lines.append("")
            elif "enum" in body:
                lines += ["One of " + ", ".join(f"`{json.dumps(v)}`" for v in body["enum"]), ""]
    return "\n".join(lines) + "\n"


# -- TaskConfig's fields -------------------------------------------------------------------------


def _bounds(field: Any) -> str:
    marks = []
    for meta in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                marks.append(f"{sign} {value:,}" if isinstance(value, int) else f"{sign} {value}")
        if getattr(meta, "min_length", None):
            marks.append(f"at least {meta.min_length} character(s)")
        if getattr(meta, "max_length", None):
            marks.append(f"at most {meta.max_length:,} characters")
        if getattr(meta, "pattern", None):
            marks.append(f"matches `{meta.pattern}`")
    return ", ".join(marks)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "")
    return re.sub(r"\b(?:[a-z_]+\.)+([A-Z]\w*)", r"\1", text)


def fields_table(dotted: str) -> str:
    from pydantic_core import PydanticUndefined

    module, _, name = dotted.rpartition(".")
    model = getattr(importlib.import_module(module), name)
    rows = ["| field, type | default | bounds | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        shown = (
            "required" if default is PydanticUndefined else f"`{json.dumps(default, default=str)}`"
        )
        annotation = _cell(_type_name(field.annotation))
        rows.append(
            f"| `{name}`<br>`{annotation}` | {shown} | {_bounds(field)} "
            f"| {_cell(field.description)} |"
        )
    return "\n".join(rows)


# -- the hooks -----------------------------------------------------------------------------------


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, "reference/cli.md", content=cli_markdown()))
    files.append(
        File.generated(config, "reference/rest-api.md", content=rest_markdown(openapi_schema()))
    )
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return FIELDS.sub(lambda m: fields_table(m.group(1)), markdown)
