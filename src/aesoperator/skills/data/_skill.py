"""The data skill's run: load → infer → compute → report, each a recorded action.

Blocking work runs in threads that call ``ctx.check_cancelled`` between chunks, files and
metric tables (lazy polars queries run in the background and are cancelled on the spot), so a
cancel or a time limit stops the work within a chunk's time and leaves no thread behind.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ...errors import FetchError, ValidationError
from ...results import Output
from . import _report
from ._compute import FileQuality, Plan, chunk_bytes, compute, load_file
from ._infer import Mapping, Profile, infer
from ._infer import check as check_roles
from ._load import Source, _unique, expand_local, is_url, prepare_text, read_sample, unpack
from ._spec import PERIODS, ROLE_ALIASES, ROLES, Spec, parse

if TYPE_CHECKING:
    from ...runtime.context import TaskContext


def _label(entry: str, path: Path, many: bool) -> str:
    if not many:
        return entry
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


async def _sources(ctx: TaskContext, spec: Spec, tmp: Path) -> list[Source]:
    check = ctx.check_cancelled
    sources: list[Source] = []
    for i, entry in enumerate(spec.data_files):
        where = f"inputs.data_files[{i}]"
        if is_url(entry):
            # The only way to the network: the web layer, behind the task's policy.
            page = await ctx.web.fetch(entry, mode="http")
            if not page.ok:
                raise FetchError(
                    f"{entry}: HTTP {page.status}", url=entry, status=page.status,
                    transient=page.status >= 500,
                )  # fmt: skip
            name = PurePosixPath(urlparse(page.url).path).name or "download"
            if "." not in name:
                ext = {"text/csv": ".csv", "application/json": ".json",
                       "application/x-ndjson": ".ndjson", "application/gzip": ".gz",
                       "application/zip": ".zip"}.get(page.content_type, ".csv")  # fmt: skip
                name += ext
            target = _unique(tmp, name)
            await asyncio.to_thread(target.write_bytes, page.body)
            sources += await asyncio.to_thread(unpack, entry, target, tmp, check, where)
            continue
        paths = await asyncio.to_thread(expand_local, i, entry)
        for path in paths:
            label = _label(entry, path, len(paths) > 1)
            sources += await asyncio.to_thread(unpack, label, path, tmp, check, where)
    for src in sources:
        if src.fmt == "csv":
            await asyncio.to_thread(prepare_text, src, tmp, spec.encoding, spec.separator, check)
        elif src.fmt == "excel":
            src.sheet = spec.sheet
    return sources


def _resolve(name: str, what: str, mapping: Mapping, extra: list[str]) -> str | None:
    """Make sure ``name`` (a column or a role) can be grouped by; note new columns in ``extra``.

    Returns the role when ``name`` is a role or the column of one.
    """
    for role, col in mapping.roles.items():
        if col == name:
            return role
    if name in mapping.columns:
        if name not in extra:
            extra.append(name)
        return None
    role = ROLE_ALIASES.get(name.lower(), name.lower())
    if role in ROLES and role in mapping.roles:
        return role
    if role in mapping.ambiguous:
        cands = mapping.ambiguous[role]
        raise ValidationError(
            f"inputs.{what}: {name!r} could be {', '.join(map(repr, cands))}; choose one with "
            f'"column_map": {{"{role}": "{cands[0]}"}} or name the column itself'
        )
    raise ValidationError(
        f"inputs.{what}: no column {name!r}; the columns are "
        f"{', '.join(map(repr, mapping.columns))}"
    )


def _describe(p: Profile | None) -> str:
    if p is None:
        return ""
    if p.kind == "date":
        if p.native:
            return "date (typed)"
        text = p.date_format or ""
        if p.date_slice:
            text += " (time of day ignored)"
        if p.date_assumed:
            text += f" — {p.date_assumed}"
        return text
    if p.kind in ("integer", "decimal"):
        style = {"plain": "number", "dot": "1,234.56", "comma": "1.234,56"}.get(
            p.style or "", "number"
        )
        return f"{style}" + (f", currency {p.currency}" if p.currency else "")
    return "text"


def _mapping_info(m: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for role in ROLES:
        if role in m.roles:
            col = m.roles[role]
            out[role] = {
                "column": col,
                "found_by": m.how[role],
                "format": _describe(m.profiles.get(col)),
            }
        elif role == "amount" and m.amount_from != "column":
            out[role] = {"column": m.amount_from.replace("*", " × "), "found_by": "computed",
                         "format": "number"}  # fmt: skip
        elif role in m.ambiguous:
            out[role] = {"column": None, "found_by": "ambiguous: " + ", ".join(m.ambiguous[role]),
                         "format": ""}  # fmt: skip
    return out


def _summary(data: dict[str, Any]) -> str:
    m = data["metrics"]
    cur = data.get("currency")
    parts = []
    if "revenue" in m:
        parts.append(f"revenue {_report._fmt_text(m['revenue'], 'money', cur)}")
    if m.get("growth") is not None:
        parts.append(f"growth {_report._fmt_text(m['growth'], 'pct', cur)} ({m['growth_basis']})")
    for key in ("orders", "customers", "units"):
        if key in m:
            parts.append(f"{key} {_report._fmt_text(m[key], 'int', cur)}")
    if m.get("average_order_value") is not None:
        parts.append(f"AOV {_report._fmt_text(m['average_order_value'], 'money', cur)}")
    q = data["quality"]
    files = len(data["files"])
    head = f"{q['rows_used']:,} rows from {files} file{'s' if files != 1 else ''}"
    return head + (": " + ", ".join(parts) if parts else "")


async def run(ctx: TaskContext) -> Output:
    spec = parse(ctx.inputs)
    check = ctx.check_cancelled
    with tempfile.TemporaryDirectory(prefix="aesop-data-") as tmp_name:
        tmp = Path(tmp_name)
        with ctx.action("load", files=list(spec.data_files)):
            sources = await _sources(ctx, spec, tmp)
            samples = []
            for i, src in enumerate(sources):
                df = await asyncio.to_thread(read_sample, src, f"inputs.data_files[{i}]")
                samples.append((src.label, df, src.separator))
        ctx.progress(5, f"{len(sources)} file(s) found")

        with ctx.action("infer"):
            mapping = infer(samples, spec)
            dropped = check_roles(spec, mapping, sources[0].label)
            metrics = [m for m in spec.metrics if m not in dropped]
            extra: list[str] = []
            # Text columns read: those the metrics and tables use, no more.
            roles = {"order_id", "customer"}
            roles |= {"product"} if "top_products" in metrics else set()
            roles |= set(ROLES) if spec.sql_metrics else set()
            for name in spec.by_columns:
                roles.add(_resolve(name, f"metrics (revenue_by_{name})", mapping, extra) or "")
            for name in spec.group_by:
                roles.add(_resolve(name, "group_by", mapping, extra) or "")
            if spec.period not in PERIODS:
                roles.add(_resolve(spec.period, "period", mapping, extra) or "")
            plan = Plan(
                mapping=mapping,
                extra=extra,
                text_roles=frozenset(roles & set(mapping.roles)),
                need_quantity="units" in metrics
                or "top_products" in metrics
                or mapping.amount_from == "price*quantity",
                need_price=mapping.amount_from != "column",
            )
            del samples
        ctx.progress(10, "columns inferred")

        with ctx.action("compute", metrics=metrics):
            frames = []
            qualities: list[FileQuality] = []
            total = sum(max(s.size, 1) for s in sources)
            chunk = chunk_bytes(ctx.config.max_memory_mb)
            done = [0, 0, 0.0]  # bytes, rows, last progress reported

            def advance(nbytes: int, nrows: int) -> None:
                done[0] += nbytes
                done[1] += nrows
                percent = 10 + 75 * min(1.0, done[0] / total)
                if percent - done[2] >= 1:  # at most a hundred progress events
                    done[2] = percent
                    ctx.progress(percent, f"{done[1]:,} rows read")

            for i, src in enumerate(sources):
                start = done[0]
                with ctx.action("read_file", file=src.label):
                    df, q = await asyncio.to_thread(
                        load_file, src, i, plan, spec, check, chunk, advance
                    )
                frames.append(df)
                qualities.append(q)
                done[0] = start + max(src.size, 1)
                read = sum(x.rows_read for x in qualities)
                ctx.progress(
                    10 + 75 * done[0] / total, f"{i + 1}/{len(sources)} files, {read:,} rows read"
                )
            labels = [s.label for s in sources]
            headline, tables, counts = await asyncio.to_thread(
                compute, frames, labels, plan, spec, metrics, check
            )
            del frames
        ctx.progress(90, "metrics computed")

        with ctx.action("report", format=spec.output_format):
            rows_read = sum(q.rows_read for q in qualities)
            skipped = sum(sum(q.skipped.values()) for q in qualities)
            used = (
                counts["rows_loaded"] - counts["duplicates_dropped"] - counts["rows_without_amount"]
            )
            notes = [f"metric {m!r} left out: its column was not found" for m in dropped]
            for role, cands in mapping.ambiguous.items():
                if role not in mapping.roles:
                    notes.append(f"{role} column ambiguous ({', '.join(cands)}); use column_map")
            data: dict[str, Any] = {
                "metrics": headline,
                "tables": tables,
                "period": spec.period,
                "currency": mapping.currency,
                "files": labels,
                "column_mapping": _mapping_info(mapping),
                "quality": {
                    "rows_read": rows_read,
                    "rows_used": used,
                    "rows_skipped": skipped,
                    **{k: v for k, v in counts.items() if k != "rows_loaded"},
                    "files": [q.as_dict() for q in qualities],
                    "notes": notes,
                },
            }
            content = _report.markdown(data)
            ext = _report.EXTENSION[spec.output_format]
            target = tmp / f"report.{ext}"
            await asyncio.to_thread(_report.write, data, spec.output_format, target)
            ctx.add_file(f"report.{ext}", target)
        ctx.progress(100, "report written")
    return Output(content=content, summary=_summary(data), data=data)
