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


def _kind(param: Any) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    text = getattr(annotation, "__name__", None) or str(annotation or "text")
    text = text.replace("typing.", "").replace("pathlib.", "")
    if text.startswith("list["):
        return f"`{text[5:-1]}`, repeatable"
    return f"`{text}`"


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


def _command_md(path: str, cmd: Any, level: int) -> list[str]:
    lines = [f"{'#' * level} `{path}`", ""]
    if cmd.help:
        lines += [cmd.help.strip().split("\f")[0].strip(), ""]
    ctx = typer.Context(cmd, info_name=path)
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    lines += ["```text", f"{path} {usage}".rstrip(), "```", ""]
    params = [p for p in cmd.params if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        lines += ["| name | kind | default | meaning |", "|---|---|---|---|"]
        lines += [_param_row(p) for p in params]
        lines.append("")
    if hasattr(cmd, "list_commands"):
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
    for line in _command_md("aesop", root, 2):
        lines.append(line)
    return "\n".join(lines) + "\n"


# -- REST API ------------------------------------------------------------------------------------


def _ref_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_ref_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_ref_name(schema.get('items', {}))}"
    return f"`{schema.get('type', 'any')}`"


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


def rest_markdown(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    lines = [
        "# REST API reference",
        "",
        f"{info.get('description', '')} Generated from the service's OpenAPI schema "
        f"(version {info.get('version', '?')}) when the site is built. A running `aesop serve` "
        "serves the same schema at `/openapi.json`.",
        "",
        "Every `/v1` endpoint takes `Authorization: Bearer TOKEN` (`aesop token create`). "
        "Errors are `application/problem+json` documents with `type`, `title`, `status` and "
        "`detail`.",
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
        lines += [f"## {tag}", ""]
        for method, path, op in ops:
            lines += [f"### `{method} {path}`", ""]
            summary = op.get("summary")
            description = op.get("description")
            if description:
                lines += [description.strip(), ""]
            elif summary:
                lines += [summary, ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required | meaning |", "|---|---|---|---|---|"]
                for p in params:
                    p.setdefault("schema", {})
                    lines.append(
                        f"| `{p['name']}` | {p.get('in', '')} | {_ref_name(p.get('schema', {}))} "
                        f"| {'yes' if p.get('required') else 'no'} "
                        f"| {_cell(p.get('description') or p['schema'].get('description'))} |"
                    )
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                lines += [f"Body (`{media}`): {_ref_name(content.get('schema', {}))}", ""]
            responses = op.get("responses", {})
            if responses:
                lines += ["| status | meaning | body |", "|---|---|---|"]
                for status, resp in sorted(responses.items()):
                    kinds = resp.get("content", {})
                    shapes = ", ".join(
                        f"{_ref_name(c.get('schema', {}))} (`{m}`)" for m, c in kinds.items()
                    )
                    lines.append(f"| {status} | {_cell(resp.get('description'))} | {shapes} |")
                lines.append("")
    schemas = schema.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["## Schemas", ""]
        for name, body in sorted(schemas.items()):
            lines += [f"### `{name}` {{ #schema-{name.lower()} }}", ""]
            if body.get("description"):
                lines += [_cell(body["description"]), ""]
            props = body.get("properties", {})
            if props:
                required = set(body.get("required", []))
                lines += ["| field | type | required | meaning |", "|---|---|---|---|"]
                for field, spec in props.items():
                    lines.append(
                        f"| `{field}` | {_ref_name(spec)} | {'yes' if field in required else 'no'} "
                        f"| {_cell(spec.get('description'))} |"
                    )
                lines.append("")
            elif "enum" in body:
                lines += [", ".join(f"`{json.dumps(v)}`" for v in body["enum"]), ""]
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
