"""The data skill's inputs, checked once before any file is opened.

Every mistake raises :class:`~aesoperator.errors.ValidationError` naming the input, the value
and the fix; nothing here imports polars.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import ValidationError

OutputFormat = Literal["excel", "csv", "json", "markdown", "html", "parquet"]
ROLES = ("date", "amount", "quantity", "price", "customer", "product", "region", "order_id")
ROLE_ALIASES = {
    "revenue": "amount",
    "sales": "amount",
    "total": "amount",
    "qty": "quantity",
    "units": "quantity",
    "order": "order_id",
    "orders": "order_id",
    "invoice": "order_id",
    "client": "customer",
    "item": "product",
    "sku": "product",
}
STANDARD_METRICS = (
    "revenue",
    "gross_revenue",
    "refunds",
    "growth",
    "customers",
    "orders",
    "average_order_value",
    "units",
    "top_products",
    "top_customers",
    "rows",
)
METRIC_ALIASES = {"aov": "average_order_value", "sales": "revenue", "quantity": "units"}
# What each metric needs besides the amount (always needed).
NEEDS: dict[str, tuple[str, ...]] = {
    "growth": ("date",),
    "customers": ("customer",),
    "units": ("quantity",),
    "top_products": ("product",),
    "top_customers": ("customer",),
}
DEFAULT_METRICS = ("revenue", "growth", "orders", "average_order_value", "customers", "units")
PERIODS = ("day", "week", "month", "quarter", "year")
FORMATS: tuple[OutputFormat, ...] = ("excel", "csv", "json", "markdown", "html", "parquet")
FORMAT_ALIASES: dict[str, OutputFormat] = {
    "xlsx": "excel",
    "xls": "excel",
    "md": "markdown",
    "htm": "html",
    "pq": "parquet",
}
_KNOWN_INPUTS = (
    "data_files",
    "metrics",
    "group_by",
    "period",
    "column_map",
    "output_format",
    "on_bad_rows",
    "duplicates",
    "top_n",
    "separator",
    "encoding",
    "date_format",
    "sheet",
)
_TABLE_FN = re.compile(r"(?i)\b(read_\w+|scan_\w+)\s*\(")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class SqlMetric:
    """A custom metric: SQL over the table ``data`` run by polars' SQL engine."""

    name: str
    sql: str


@dataclass(frozen=True)
class Spec:
    """The validated inputs of a data task."""

    data_files: tuple[str, ...]
    metrics: tuple[str, ...]
    sql_metrics: tuple[SqlMetric, ...]
    explicit_metrics: bool
    explicit_period: bool
    group_by: tuple[str, ...]
    period: str
    column_map: dict[str, str] = field(default_factory=dict)
    output_format: OutputFormat = "excel"
    on_bad_rows: Literal["fail", "skip"] = "fail"
    duplicates: Literal["drop", "keep"] = "drop"
    top_n: int = 10
    separator: str | None = None
    encoding: str | None = None
    date_format: str | None = None
    sheet: str | None = None

    @property
    def by_columns(self) -> tuple[str, ...]:
        """Columns named by ``revenue_by_<column>`` metrics, in order."""
        return tuple(
            m.removeprefix("revenue_by_") for m in self.metrics if m.startswith("revenue_by_")
        )


def _bad(field_name: str, value: Any, fix: str) -> ValidationError:
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return ValidationError(f"inputs.{field_name}: got {shown}; {fix}")


def _str_list(name: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise _bad(name, value, "use a string or a list of non-empty strings")
    if not value and not allow_empty:
        raise _bad(name, value, "give at least one entry")
    return tuple(value)


def _suggest(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse(inputs: dict[str, Any]) -> Spec:
    """Validate ``Task.inputs`` of a data task into a :class:`Spec`."""
    unknown = [k for k in inputs if k not in _KNOWN_INPUTS]
    if unknown:
        key = unknown[0]
        raise _bad(
            key,
            inputs[key],
            f"unknown input{_suggest(key, list(_KNOWN_INPUTS))}; "
            f"the data skill accepts {', '.join(_KNOWN_INPUTS)}",
        )
    if "data_files" not in inputs:
        raise ValidationError(
            "inputs.data_files: required field is missing; give paths, globs or URLs, "
            "e.g. {'data_files': ['sales_q1.csv', 'sales_q2.csv']}"
        )
    files = _str_list("data_files", inputs["data_files"])

    raw_metrics = inputs.get("metrics")
    explicit = raw_metrics is not None
    if raw_metrics is None:
        raw_metrics = list(DEFAULT_METRICS)
    if isinstance(raw_metrics, str | dict):
        raw_metrics = [raw_metrics]
    if not isinstance(raw_metrics, list | tuple) or not raw_metrics:
        raise _bad("metrics", raw_metrics, "use a non-empty list such as ['revenue', 'growth']")
    metrics: list[str] = []
    sql: list[SqlMetric] = []
    for i, item in enumerate(raw_metrics):
        if isinstance(item, dict):
            sql.append(_sql_metric(i, item, {m.name for m in sql}))
            continue
        if not isinstance(item, str):
            raise _bad(f"metrics[{i}]", item, "use a metric name or {'name': ..., 'sql': ...}")
        name = METRIC_ALIASES.get(item.strip().lower(), item.strip().lower())
        if name.startswith("revenue_by_") and len(name) > len("revenue_by_"):
            name = "revenue_by_" + item.strip()[len("revenue_by_") :]
        elif name not in STANDARD_METRICS:
            raise _bad(
                f"metrics[{i}]",
                item,
                f"unknown metric{_suggest(name, list(STANDARD_METRICS))}; known metrics are "
                f"{', '.join(STANDARD_METRICS)}, revenue_by_<column>, or a custom "
                "{'name': 'big_orders', 'sql': 'SELECT count(*) FROM data WHERE amount > 1000'}",
            )
        if name not in metrics:
            metrics.append(name)

    group_by = _str_list("group_by", inputs.get("group_by"), allow_empty=True)

    period = inputs.get("period", "month")
    if not isinstance(period, str) or not period.strip():
        raise _bad("period", period, f"use one of {', '.join(PERIODS)} or a column name")
    period = period.strip()
    if period.lower() in PERIODS:
        period = period.lower()

    column_map = _column_map(inputs.get("column_map"))

    fmt = inputs.get("output_format", "excel")
    if not isinstance(fmt, str) or FORMAT_ALIASES.get(fmt.lower(), fmt.lower()) not in FORMATS:
        raise _bad("output_format", fmt, f"use one of {', '.join(FORMATS)}")
    alias = FORMAT_ALIASES.get(fmt.lower())
    output_format = alias if alias is not None else next(f for f in FORMATS if f == fmt.lower())

    on_bad = inputs.get("on_bad_rows", "fail")
    if on_bad not in ("fail", "skip"):
        raise _bad(
            "on_bad_rows", on_bad, "use 'fail' (stop with the line numbers) or 'skip' (report them)"
        )
    dups = inputs.get("duplicates", "drop")
    if dups not in ("drop", "keep"):
        raise _bad("duplicates", dups, "use 'drop' (count identical rows once) or 'keep'")
    top_n = inputs.get("top_n", 10)
    if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= 10_000:
        raise _bad("top_n", top_n, "use a whole number from 1 to 10000")
    sep = inputs.get("separator")
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1 or sep in '"\r\n'):
        raise _bad("separator", sep, "use one character such as ',', ';', '\\t' or '|'")
    encoding = inputs.get("encoding")
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(str(encoding))
        except LookupError:
            raise _bad("encoding", encoding, "use a Python codec name such as 'cp1252'") from None
    date_format = inputs.get("date_format")
    if date_format is not None and (not isinstance(date_format, str) or "%" not in date_format):
        raise _bad("date_format", date_format, "use a strftime format such as '%d/%m/%Y'")
    sheet = inputs.get("sheet")
    if sheet is not None and not isinstance(sheet, str):
        raise _bad("sheet", sheet, "use the name of the Excel sheet to read")
    return Spec(
        data_files=files,
        metrics=tuple(metrics),
        sql_metrics=tuple(sql),
        explicit_metrics=explicit,
        explicit_period="period" in inputs,
        group_by=group_by,
        period=period,
        column_map=column_map,
        output_format=output_format,
        on_bad_rows=on_bad,
        duplicates=dups,
        top_n=top_n,
        separator=sep,
        encoding=encoding,
        date_format=date_format,
        sheet=sheet,
    )


def _sql_metric(i: int, item: dict[str, Any], taken: set[str]) -> SqlMetric:
    name, sql = item.get("name"), item.get("sql")
    extra = set(item) - {"name", "sql"}
    if extra or not isinstance(name, str) or not isinstance(sql, str) or not sql.strip():
        raise _bad(
            f"metrics[{i}]",
            item,
            "a custom metric is {'name': 'big_orders', 'sql': 'SELECT count(*) AS n FROM data "
            "WHERE amount > 1000'} (exactly the keys name and sql)",
        )
    if not _NAME.match(name) or name in STANDARD_METRICS or name in taken:
        raise _bad(
            f"metrics[{i}].name",
            name,
            "use a new identifier (letters, digits, underscores) that is not a built-in metric",
        )
    query = sql.strip().rstrip(";").strip()
    # polars SQL can read files and URLs with table functions (read_csv('...')); a metric may
    # only read the loaded rows, so one SELECT over 'data' and no table functions.
    if not re.match(r"(?is)^(select|with)\b", query) or ";" in query or _TABLE_FN.search(query):
        raise _bad(
            f"metrics[{i}].sql",
            sql,
            "only SELECT (or WITH ... SELECT) over the table 'data' is allowed, one statement, "
            "no table functions such as read_csv()",
        )
    return SqlMetric(name=name, sql=query)


def _column_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad("column_map", value, "use a dict such as {'amount': 'Total (EUR)'}")
    out: dict[str, str] = {}
    for key, col in value.items():
        role = ROLE_ALIASES.get(str(key).lower(), str(key).lower())
        if role not in ROLES:
            raise _bad(
                f"column_map.{key}",
                col,
                f"unknown role{_suggest(role, list(ROLES))}; roles are {', '.join(ROLES)}",
            )
        if not isinstance(col, str) or not col:
            raise _bad(f"column_map.{key}", col, "give the column's name as a string")
        out[role] = col
    return out
